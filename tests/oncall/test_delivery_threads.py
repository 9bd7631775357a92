"""A worker's threads for each paging provider are bounded (core.slots): a page that finds its
provider's all taken by calls it is slow to answer calls nobody, stays queued and asks again a
moment later; a page of another provider goes out meanwhile."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core import slots
from oncall import delivery
from oncall.models import Page, PageStatus
from oncall.sweep import sweep_outbox
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.slots import all_slots_taken, asked_again_in, held_in_a_thread


@pytest.fixture(autouse=True)
def impatient(monkeypatch):
    """No patience for the threads' holders here: their calls are taken to hang."""
    monkeypatch.setattr(delivery, "SLOT_PATIENCE_SECONDS", 0)
    # Times far apart, so that a slow machine does not outrun the dedupe's mark below.
    monkeypatch.setattr(slots, "_ONE_ASK_SECONDS", 5)
    monkeypatch.setattr(slots, "RETRY_SECONDS", 10)


def taken(settings, provider: str = "twilio") -> AbstractContextManager[None]:
    """The provider's slots (two) held by other threads, their calls hanging."""
    settings.PAGING_THREADS = 2
    return all_slots_taken("PAGING_THREADS", 2, provider)


def queued(make_page, channel: str, address: str):
    return make_page(channel, address, status=PageStatus.QUEUED, handed_at=None)


@pytest.mark.parametrize(
    ("channel", "address", "provider"),
    [
        ("sms", "+14155550101", "twilio"),
        ("voice", "+14155550101", "twilio"),
        ("email", "bob@example.com", "mail"),
    ],
)
def test_a_page_without_a_thread_calls_nobody_and_asks_again(
    fake_twilio, make_page, settings, channel, address, provider
):
    page = queued(make_page, channel, address)
    before = datetime.now().astimezone()
    with taken(settings, provider), sent_tasks() as sent:
        assert delivery.deliver(page.pk) == "no thread free"
        # The sweep's next pass leaves it to the task asked for: it was noted as enqueued now.
        assert sweep_outbox()["enqueued"] == 0
        assert delivery.deliver(page.pk) == "no thread free"  # a duplicate task: no second ask

    assert (fake_twilio.requests, mail.outbox) == ([], [])
    page.refresh_from_db()
    assert (page.status, page.attempts, page.handed_at) == (PageStatus.QUEUED, 0, None)
    assert page.enqueued_at is not None and page.enqueued_at >= before
    [again] = named(sent, delivery.DELIVER_TASK)
    assert again.args == (page.pk,)
    assert 0 < asked_again_in(again, before) <= slots.RETRY_SECONDS + 1

    assert delivery.deliver(page.pk) == "sent"  # the threads came free: the retry sends it
    assert len(fake_twilio.requests) + len(mail.outbox) == 1


def test_a_page_not_due_yet_takes_no_thread_and_asks_nothing(fake_twilio, make_page, settings):
    page = queued(make_page, "sms", "+14155550101")
    Page.objects.filter(pk=page.pk).update(send_after=timezone.now() + timedelta(minutes=1))
    with taken(settings), sent_tasks() as sent:
        assert delivery.deliver(page.pk) == "not due or taken"
    assert sent == []
    page.refresh_from_db()
    assert page.enqueued_at is None  # the sweep enqueues it when it is due


def test_a_page_waits_for_a_thread_while_the_call_holding_it_is_young(
    fake_twilio, make_page, settings, monkeypatch
):
    # Twilio busy, answering in good time: the page waits for the thread, and is not sent
    # away for seconds.
    monkeypatch.setattr(delivery, "SLOT_PATIENCE_SECONDS", 30)
    settings.PAGING_THREADS = 1
    page = queued(make_page, "sms", "+14155550101")
    with held_in_a_thread("PAGING_THREADS", "twilio") as release, sent_tasks() as sent:
        threading.Timer(0.2, release.set).start()
        assert delivery.deliver(page.pk) == "sent"
        assert release.is_set()
    assert named(sent, delivery.DELIVER_TASK) == []
    assert [m.to for m in fake_twilio.messages] == ["+14155550101"]


def test_pages_of_other_providers_go_out_while_twilio_holds_its_threads(
    fake_twilio, make_page, settings
):
    email = queued(make_page, "email", "bob@example.com")
    console = queued(make_page, "console", "+14155550102")
    with taken(settings):
        assert delivery.deliver(email.pk) == "sent"
        assert delivery.deliver(console.pk) == "sent"
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert fake_twilio.messages == []

"""A worker's threads for each paging provider are bounded (core.slots): a page that finds its
provider's all taken by calls it is slow to answer calls nobody, stays queued and asks again a
moment later; a page of another provider goes out meanwhile."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime

import pytest
from django.core import mail

from core import slots
from oncall import delivery
from oncall.models import PageStatus
from oncall.sweep import sweep_outbox
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.slots import all_slots_taken, asked_again_in


@pytest.fixture(autouse=True)
def impatient(monkeypatch):
    """No patience for the threads' holders here: their calls are taken to hang."""
    monkeypatch.setattr(delivery, "SLOT_PATIENCE_SECONDS", 0)
    # Times far apart, so that a slow machine does not outrun the dedupe's mark below.
    monkeypatch.setattr(slots, "_ONE_ASK_SECONDS", 5)
    monkeypatch.setattr(slots, "RETRY_SECONDS", 10)


def twilio_taken(settings) -> AbstractContextManager[None]:
    """Twilio's slots (two) held by other threads, their calls hanging."""
    settings.PAGING_THREADS = 2
    return all_slots_taken("PAGING_THREADS", 2, "twilio")


def queued(make_page, channel: str, address: str):
    return make_page(channel, address, status=PageStatus.QUEUED, handed_at=None)


def test_a_page_without_a_thread_calls_nobody_and_asks_again(fake_twilio, make_page, settings):
    page = queued(make_page, "sms", "+14155550101")
    before = datetime.now().astimezone()
    with twilio_taken(settings), sent_tasks() as sent:
        assert delivery.deliver(page.pk) == "no thread free"
        # The sweep's next pass leaves it to the task asked for: it was noted as enqueued now.
        assert sweep_outbox()["enqueued"] == 0
        assert delivery.deliver(page.pk) == "no thread free"  # a duplicate task: no second ask

    assert fake_twilio.messages == []
    page.refresh_from_db()
    assert (page.status, page.attempts, page.handed_at) == (PageStatus.QUEUED, 0, None)
    assert page.enqueued_at is not None and page.enqueued_at >= before
    [again] = named(sent, delivery.DELIVER_TASK)
    assert again.args == (page.pk,)
    assert 0 < asked_again_in(again, before) <= slots.RETRY_SECONDS + 1

    assert delivery.deliver(page.pk) == "sent"  # the threads came free: the retry sends it
    assert [m.to for m in fake_twilio.messages] == ["+14155550101"]


def test_pages_of_other_providers_go_out_while_twilio_holds_its_threads(
    fake_twilio, make_page, settings
):
    email = queued(make_page, "email", "bob@example.com")
    console = queued(make_page, "console", "+14155550102")
    with twilio_taken(settings):
        assert delivery.deliver(email.pk) == "sent"
        assert delivery.deliver(console.pk) == "sent"
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert fake_twilio.messages == []

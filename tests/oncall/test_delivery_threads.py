"""A page is delivered on threads of its provider's own (core.pools), not on the worker's task
threads: a provider that is slow or hangs fills its own threads, and a page that finds them all
taken, with as many waiting, calls nobody, stays queued and asks again a moment later."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core import pools, slots
from oncall import delivery
from oncall.models import Page, PageStatus
from oncall.sweep import sweep_outbox
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.slots import asked_again_in
from tests.helpers.system import wait_for
from warroom.receivers import in_worker


@pytest.fixture(autouse=True)
def apart(monkeypatch):
    # Times far apart, so that a slow machine does not outrun the dedupe's mark below.
    monkeypatch.setattr(slots, "_ONE_ASK_SECONDS", 5)
    monkeypatch.setattr(slots, "RETRY_SECONDS", 10)


@contextmanager
def busy(settings, provider: str, threads: int = 1) -> Iterator[list[str]]:
    """The provider's pool (`threads` threads) running and queueing as much work as it takes,
    each piece waiting until the block ends; yield the names of the threads that ran them."""
    settings.PAGING_THREADS = threads
    release = threading.Event()
    ran: list[str] = []

    def hang() -> None:
        ran.append(threading.current_thread().name)
        release.wait(30)

    try:
        for _ in range(2 * threads):
            assert pools.submit("PAGING_THREADS", provider, hang)
        yield ran
    finally:
        release.set()
    wait_for(lambda: len(ran) == 2 * threads, timeout=10, what="the pool's work to begin")
    idle(provider)


def idle(provider: str = "twilio") -> None:
    wait_for(lambda: not pools.pending("PAGING_THREADS", provider), timeout=10, what="an idle pool")


def queued(make_page, channel: str, address: str) -> Page:
    return make_page(channel, address, status=PageStatus.QUEUED, handed_at=None)


def test_a_page_is_sent_on_its_providers_thread(fake_twilio, make_page, transactional_db):
    page = queued(make_page, "sms", "+14155550101")
    assert delivery.hand_over(page.pk) == "handed to the provider's threads"
    wait_for(lambda: fake_twilio.messages, timeout=10, what="the SMS at Twilio")
    wait_for(
        lambda: Page.objects.get(pk=page.pk).status == PageStatus.SENT,
        timeout=10,
        what="the page marked sent",
    )
    assert [m.to for m in fake_twilio.messages] == ["+14155550101"]
    idle()


def test_a_pools_thread_is_a_workers_for_the_war_room():
    # A page's timeline entry written on a provider's thread goes to a bot task, as one
    # written by a Celery task does (warroom.receivers).
    seen: list[bool] = []
    assert pools.submit("PAGING_THREADS", "test-worker", lambda: seen.append(in_worker()))
    wait_for(lambda: seen, timeout=10, what="the work to run")
    assert seen == [True] and not in_worker()


@pytest.mark.parametrize(
    ("channel", "address", "provider"),
    [
        ("sms", "+14155550101", "twilio"),
        ("voice", "+14155550101", "twilio"),
        ("email", "bob@example.com", "mail"),
    ],
)
def test_a_page_finding_its_providers_threads_full_calls_nobody_and_asks_again(
    fake_twilio, make_page, settings, channel, address, provider
):
    page = queued(make_page, channel, address)
    before = datetime.now().astimezone()
    with busy(settings, provider), sent_tasks() as sent:
        assert delivery.hand_over(page.pk) == "no thread free"
        # The sweep's next pass leaves it to the task asked for: it was noted as enqueued now.
        assert sweep_outbox()["enqueued"] == 0
        assert delivery.hand_over(page.pk) == "no thread free"  # a duplicate task: no second ask

    assert (fake_twilio.requests, mail.outbox) == ([], [])
    page.refresh_from_db()
    assert (page.status, page.attempts, page.handed_at) == (PageStatus.QUEUED, 0, None)
    assert page.enqueued_at is not None and page.enqueued_at >= before
    [again] = named(sent, delivery.DELIVER_TASK)
    assert again.args == (page.pk,)
    assert 0 < asked_again_in(again, before) <= slots.RETRY_SECONDS + 1

    assert delivery.hand_over(page.pk, inline=True) == "sent"  # the retry, its thread free
    assert len(fake_twilio.requests) + len(mail.outbox) == 1


def test_pages_of_other_providers_go_out_while_twilio_fills_its_threads(
    fake_twilio, make_page, settings
):
    email = queued(make_page, "email", "bob@example.com")
    console = queued(make_page, "console", "+14155550102")
    with busy(settings, "twilio"):
        assert delivery.hand_over(email.pk, inline=True) == "sent"
        assert delivery.hand_over(console.pk) == "sent"  # the console calls no one: inline
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert fake_twilio.messages == []


def test_a_page_not_due_yet_is_handed_nowhere_and_asks_nothing(fake_twilio, make_page, settings):
    page = queued(make_page, "sms", "+14155550101")
    Page.objects.filter(pk=page.pk).update(send_after=timezone.now() + timedelta(minutes=1))
    with busy(settings, "twilio"), sent_tasks() as sent:
        assert delivery.hand_over(page.pk) == "not due or taken"
    assert sent == []
    page.refresh_from_db()
    assert page.enqueued_at is None  # the sweep enqueues it when it is due


def on_a_workers_thread(work) -> None:
    """Run `work` on a thread of a worker's own (a pool's, as a page's delivery runs) and wait."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    assert pools.submit("PAGING_THREADS", "test-worker", run)
    assert done.wait(10), "the work did not finish"


def test_a_workers_thread_hands_a_few_pages_to_the_providers_threads_itself(
    fake_twilio, make_page, transactional_db
):
    pages = [queued(make_page, "sms", f"+1415555010{i}") for i in range(2)]
    with sent_tasks() as sent:
        on_a_workers_thread(lambda: delivery.enqueue([p.pk for p in pages]))
        wait_for(lambda: len(fake_twilio.messages) == 2, timeout=10, what="both SMS at Twilio")
    assert named(sent, delivery.DELIVER_TASK) == []  # no round trip through the broker
    assert sorted(m.to for m in fake_twilio.messages) == ["+14155550100", "+14155550101"]
    wait_for(
        lambda: all(Page.objects.get(pk=p.pk).status == PageStatus.SENT for p in pages),
        timeout=10,
        what="the pages marked sent",
    )
    idle()


def test_elsewhere_and_for_many_pages_a_task_each_goes_through_the_broker(
    fake_twilio, make_page, transactional_db
):
    few = [queued(make_page, "sms", "+14155550100")]
    many = [
        queued(make_page, "sms", f"+141555502{i:02d}")
        for i in range(delivery.HAND_OVER_AT_MOST + 1)
    ]
    with sent_tasks() as sent:
        delivery.enqueue([p.pk for p in few])  # this test's thread: a web request's, say
        on_a_workers_thread(lambda: delivery.enqueue([p.pk for p in many]))
    assert [t.args for t in named(sent, delivery.DELIVER_TASK)] == [(p.pk,) for p in few + many]
    assert fake_twilio.requests == []
    assert all(p.enqueued_at for p in Page.objects.filter(pk__in=[p.pk for p in few + many]))


def test_a_page_that_cannot_be_handed_over_goes_through_the_broker_with_those_after_it(
    fake_twilio, make_page, transactional_db, monkeypatch
):
    pages = [queued(make_page, "sms", f"+1415555010{i}") for i in range(3)]
    handed: list[int] = []

    def to_providers_threads(page_id: int) -> bool:
        if page_id == pages[1].pk:
            raise RuntimeError("the database went away")
        handed.append(page_id)
        return True

    monkeypatch.setattr(delivery, "_to_providers_threads", to_providers_threads)
    with sent_tasks() as sent:
        on_a_workers_thread(lambda: delivery.enqueue([p.pk for p in pages]))
    assert handed == [pages[0].pk]
    assert [t.args for t in named(sent, delivery.DELIVER_TASK)] == [(pages[1].pk,), (pages[2].pk,)]


def test_a_page_the_workers_threads_cannot_take_now_goes_through_the_broker_at_once(
    fake_twilio, make_page, settings, transactional_db
):
    # Its provider's threads here are all taken (another worker's may be free), or its
    # channel calls no one (delivered in a task of its own, not amid the escalation's work).
    sms = queued(make_page, "sms", "+14155550101")
    console = queued(make_page, "console", "+14155550102")
    with busy(settings, "twilio"), sent_tasks() as sent:
        on_a_workers_thread(lambda: delivery.enqueue([sms.pk, console.pk]))
    tasks = named(sent, delivery.DELIVER_TASK)
    assert [t.args for t in tasks] == [(sms.pk,), (console.pk,)]
    assert [t.eta for t in tasks] == [None, None]  # now, not in a moment
    assert fake_twilio.requests == []
    assert {p.status for p in Page.objects.filter(pk__in=[sms.pk, console.pk])} == {
        PageStatus.QUEUED
    }

"""Pages take turns on their provider (oncall.turns): at most PAGE_THREADS threads call one, the
others line up without holding a thread, and every page lined up is delivered, once, in order."""

from __future__ import annotations

import random
import threading
import time

import pytest

from oncall import turns


@pytest.fixture(autouse=True)
def _two_threads(settings):
    settings.PAGE_THREADS = 2
    yield
    with turns._lock:  # a failed test leaves no line behind for the next
        turns._busy.clear()
        turns._line.clear()
        turns._lined.clear()


class Provider:
    """A `deliver` whose calls can be held open, recording what it delivered and in which
    thread."""

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.threads: dict[int, int] = {}
        self.release = threading.Event()
        self.holding = threading.Semaphore(0)
        self.hold: set[int] = set()
        self._lock = threading.Lock()

    def deliver(self, page_id: int) -> str:
        if page_id in self.hold:
            self.holding.release()
            assert self.release.wait(10)
        with self._lock:
            self.delivered.append(page_id)
            self.threads[page_id] = threading.get_ident()
        return "sent"


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_under_the_limit_a_page_is_delivered_in_the_callers_thread():
    provider, handed = Provider(), []
    assert turns.take_turn(1, "twilio", provider.deliver, handed.append) == "sent"
    assert provider.threads[1] == threading.get_ident()
    assert handed == [] and turns.lined_up("twilio") == []


def test_at_the_limit_pages_line_up_and_the_busy_threads_deliver_them_in_order():
    provider, handed = Provider(), []
    provider.hold = {1, 2}
    busy = [
        in_thread(lambda n=n: turns.take_turn(n, "twilio", provider.deliver, handed.append))
        for n in (1, 2)
    ]
    for _ in busy:
        assert provider.holding.acquire(timeout=10)  # both threads are in a call

    # The third and fourth return at once, their thread free; the fourth twice is lined once.
    for page in (3, 4, 4):
        assert turns.take_turn(page, "twilio", provider.deliver, handed.append) == (
            "lined up for a thread"
        )
    assert turns.lined_up("twilio") == [3, 4]
    # Another provider's page is not held up.
    assert turns.take_turn(5, "email", provider.deliver, handed.append) == "sent"

    provider.release.set()
    for thread in busy:
        thread.join(10)
    assert sorted(provider.delivered) == [1, 2, 3, 4, 5]
    assert provider.delivered.index(3) < provider.delivered.index(4)
    assert {provider.threads[3], provider.threads[4]} <= {t.ident for t in busy}
    assert turns.lined_up("twilio") == [] and handed == []
    assert turns._busy["twilio"] == 0


def test_no_page_lined_up_is_left_without_a_thread_to_deliver_it():
    # Pages arriving while turns end: each is delivered exactly once, none left in line.
    provider, handed = Provider(), []
    pages = list(range(200))
    random.seed(7)

    def deliver(page_id: int) -> str:
        time.sleep(random.random() / 2000)
        return provider.deliver(page_id)

    threads = [
        in_thread(lambda n=n: turns.take_turn(n, "twilio", deliver, handed.append)) for n in pages
    ]
    for thread in threads:
        thread.join(10)
    assert sorted(provider.delivered) == pages
    assert turns.lined_up("twilio") == [] and handed == []
    assert turns._busy["twilio"] == 0


def test_a_thread_serves_the_line_for_a_while_then_hands_it_to_a_fresh_task(monkeypatch):
    monkeypatch.setattr(turns, "SERVE_SECONDS", -1)  # its own page, then the line goes
    provider, handed = Provider(), []
    provider.hold = {1, 2}
    busy = [
        in_thread(lambda n=n: turns.take_turn(n, "twilio", provider.deliver, handed.append))
        for n in (1, 2)
    ]
    for _ in busy:
        assert provider.holding.acquire(timeout=10)
    for page in (3, 4):
        turns.take_turn(page, "twilio", provider.deliver, handed.append)
    provider.release.set()
    for thread in busy:
        thread.join(10)
    assert sorted(provider.delivered) == [1, 2]
    assert handed and set(handed) == {3}  # the line's head, asked for again
    assert turns._busy["twilio"] == 0
    # The fresh task takes a turn and serves the line, its own page first.
    monkeypatch.setattr(turns, "SERVE_SECONDS", 30.0)
    assert turns.take_turn(3, "twilio", provider.deliver, handed.append) == "sent"
    assert provider.delivered[2:] == [3, 3, 4]  # the line's 3 again: the claim refuses it


def test_a_delivery_that_raises_lets_its_turn_go_and_hands_the_line_over(settings):
    settings.PAGE_THREADS = 1
    provider, handed, raised = Provider(), [], []
    provider.hold = {1}

    def breaks_after_the_hold(page_id: int) -> str:
        provider.deliver(page_id)
        raise RuntimeError("the database went away")

    def holder() -> None:
        try:
            turns.take_turn(1, "twilio", breaks_after_the_hold, handed.append)
        except RuntimeError as exc:
            raised.append(exc)

    thread = in_thread(holder)
    assert provider.holding.acquire(timeout=10)
    assert turns.take_turn(3, "twilio", provider.deliver, handed.append) == (
        "lined up for a thread"
    )
    provider.release.set()
    thread.join(10)

    assert raised and handed == [3]  # the error is the task's; the line goes to a fresh task
    assert turns._busy["twilio"] == 0 and turns.lined_up("twilio") == [3]
    assert turns.take_turn(3, "twilio", provider.deliver, handed.append) == "sent"
    assert turns.lined_up("twilio") == []

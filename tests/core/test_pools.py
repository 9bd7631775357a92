"""Threads of a party's own (core.pools): work runs on them in order, as much again as they
have threads waits, and more is refused; a failure is logged, and the thread goes on."""

from __future__ import annotations

import threading

from core import pools
from tests.helpers.system import wait_for


def test_a_pool_runs_its_threads_work_then_as_much_again_in_order_and_refuses_more(settings):
    settings.ACTION_THREADS = 2
    release = threading.Event()
    ran: list[int] = []
    inside: list[bool] = []

    def work(n: int) -> None:
        inside.append(pools.inside())
        ran.append(n)
        release.wait(30)

    assert all(pools.submit("ACTION_THREADS", "test-order", work, n) for n in range(4))
    wait_for(lambda: len(ran) == 2, timeout=10, what="two pieces of work running")
    assert not pools.submit("ACTION_THREADS", "test-order", work, 4)  # 2 running, 2 waiting
    assert pools.submit("ACTION_THREADS", "test-other", lambda: None)  # another party's pool
    release.set()
    wait_for(lambda: len(ran) == 4, timeout=10, what="the waiting work to run")
    assert sorted(ran[:2]) == [0, 1] and ran[2:] == [2, 3]
    assert inside == [True] * 4 and not pools.inside()
    wait_for(
        lambda: pools.submit("ACTION_THREADS", "test-order", lambda: None),
        timeout=10,
        what="room in the pool again",
    )


def test_work_that_raises_is_logged_and_its_thread_goes_on(settings, caplog):
    settings.ACTION_THREADS = 1
    done = threading.Event()

    def fails() -> None:
        raise RuntimeError("Twilio answered nonsense")

    assert pools.submit("ACTION_THREADS", "test-raise", fails)
    assert pools.submit("ACTION_THREADS", "test-raise", done.set)
    assert done.wait(10)
    assert "Twilio answered nonsense" in caplog.text


def test_work_of_a_key_waiting_or_running_is_taken_once(settings):
    # The sweep asking again for a page still waiting its turn takes no second place.
    settings.ACTION_THREADS = 1
    release = threading.Event()
    ran: list[str] = []

    def work(name: str) -> None:
        ran.append(name)
        release.wait(30)

    assert pools.submit("ACTION_THREADS", "test-keys", work, "a", key=1)
    assert pools.submit("ACTION_THREADS", "test-keys", work, "b", key=2)
    assert pools.submit("ACTION_THREADS", "test-keys", work, "a again", key=1)  # running
    assert pools.submit("ACTION_THREADS", "test-keys", work, "b again", key=2)  # waiting
    assert pools.pending("ACTION_THREADS", "test-keys") == 2
    release.set()
    wait_for(
        lambda: not pools.pending("ACTION_THREADS", "test-keys"), timeout=10, what="an idle pool"
    )
    assert ran == ["a", "b"]


def test_a_pool_shut_down_drops_the_work_not_begun_and_takes_no_more(settings, monkeypatch):
    monkeypatch.setattr(pools, "_pools", {})
    monkeypatch.setattr(pools, "_closed", False)
    settings.ACTION_THREADS = 1
    release = threading.Event()
    ran: list[int] = []

    def work(n: int) -> None:
        ran.append(n)
        release.wait(30)

    assert pools.submit("ACTION_THREADS", "test-stop", work, 1)
    assert pools.submit("ACTION_THREADS", "test-stop", work, 2)
    wait_for(lambda: ran == [1], timeout=10, what="the first work running")
    pools.shut_down()
    assert not pools.submit("ACTION_THREADS", "test-stop", work, 3)
    release.set()
    wait_for(
        lambda: not pools.pending("ACTION_THREADS", "test-stop"), timeout=10, what="an idle pool"
    )
    assert ran == [1]  # what ran ended on its own; what waited was dropped

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

"""Every slot of a kind (core.slots) held by other threads, as in a worker whose calls hang."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from core import slots
from tests.helpers.celery_tasks import SentTask


@contextmanager
def all_slots_taken(setting: str, count: int, party: str = "") -> Iterator[None]:
    """Hold all `count` slots named by `setting` (which the caller set to `count`) for `party`,
    in threads of their own, for the block."""
    release = threading.Event()
    holding = threading.Barrier(count + 1, timeout=10)
    taken: list[bool] = []

    def hold() -> None:
        with slots.slot(setting, party) as free:
            taken.append(free)
            holding.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(count)]
    for thread in threads:
        thread.start()
    holding.wait()
    try:
        assert taken == [True] * count
        yield
    finally:
        release.set()
        for thread in threads:
            thread.join()


def asked_again_in(task: SentTask, after: datetime) -> float:
    """Seconds from `after` to the ETA `task` was sent with."""
    assert task.eta is not None, f"{task.name} was sent to run at once, not later"
    return (datetime.fromisoformat(task.eta) - after).total_seconds()

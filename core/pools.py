"""Threads of their own for calls to a third party that may take long: a worker's task threads
hand the call over and go back to their queues.

A page handed to Twilio holds its thread until Twilio answers: 0.1-0.5 s when it is well, its
whole timeout (10 s) when it hangs. On the worker's four task threads, a steady flow of pages
with Twilio answering in 0.3 s was enough to keep every thread waiting on it, and the next
alert's first page waited 9-11 s under load (`python bench/paging.py --twilio-latency 0.3`,
2026-12-08); a Twilio that hangs took all four, so that email pages, the tick and the ingest
waited for its timeout. Waiting on a socket costs a thread nothing but memory, so each party
gets a pool of threads per worker process (a setting: MUSTER_PAGING_THREADS for each paging
provider, MUSTER_CHAT_THREADS for status updates' mails), and a task hands its work to the pool
and returns at once.

A pool takes as much work as it has threads, and as much again queued in order; beyond that it
refuses, and the caller leaves the work for later (a provider that hangs fills its pool, never
the worker's task threads). Work in a pool is in memory only: what it must not lose, the caller
keeps in the database until the work is done (a page stays `queued` until its delivery claims
it, and the outbox sweep enqueues it again if the process dies first). Work given a key is
taken once while it waits or runs (the sweep asking again for a page still waiting its turn).
When the worker shuts down, work not begun is dropped (the sweep hands it to another worker),
and what runs ends on its own.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pools: dict[tuple[str, str, int], _Pool] = {}
_inside = threading.local()


class _Pool:
    def __init__(self, name: str, threads: int):
        self.threads = threads
        self.pending = 0  # running and queued
        self.keys: set[Any] = set()
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix=f"pool-{name}")


_closed = False


def submit(setting: str, party: str, work: Callable[..., Any], *args: Any, key: Any = None) -> bool:
    """Run `work(*args)` on one of `party`'s threads in this process (as many as `setting`
    says, at least one); return False, running nothing, when as much work again as it has
    threads is waiting already, or the worker is shutting down. Work of a `key` that waits or
    runs already is not taken again (True)."""
    threads = max(getattr(settings, setting), 1)
    with _lock:
        if _closed:
            return False
        pool = _pools.get((setting, party, threads))
        if pool is None:
            pool = _pools[(setting, party, threads)] = _Pool(party or setting.lower(), threads)
        if key is not None and key in pool.keys:
            return True
        if pool.pending >= 2 * threads:
            return False
        pool.pending += 1
        if key is not None:
            pool.keys.add(key)
    try:
        future = pool.executor.submit(_run, pool, key, work, args)
    except BaseException:
        _done(pool, key)
        raise
    future.add_done_callback(functools.partial(_dropped, pool, key))
    return True


def _dropped(pool: _Pool, key: Any, future: Future) -> None:
    if future.cancelled():  # dropped before it began (shut_down): done with all the same
        _done(pool, key)


def pending(setting: str, party: str) -> int:
    """How much work `party`'s pools run or queue now (for tests and logs)."""
    with _lock:
        return sum(p.pending for (s, name, _), p in _pools.items() if (s, name) == (setting, party))


def inside() -> bool:
    """Whether this thread is one of a pool's: work a worker does, though no Celery task."""
    return getattr(_inside, "yes", False)


def shut_down() -> None:
    """Take no more work, and drop what has not begun (the worker is shutting down)."""
    global _closed
    with _lock:
        _closed = True
        pools = list(_pools.values())
    for pool in pools:
        pool.executor.shutdown(wait=False, cancel_futures=True)


def _run(pool: _Pool, key: Any, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # As Celery's Django fixup does around a task: a connection left broken or past its age by
    # the last piece of work is not used again, and this one's goes back to the pool after.
    _inside.yes = True
    try:
        close_old_connections()
        work(*args)
    except Exception:
        log.exception("%s%r failed on a pool's thread", getattr(work, "__qualname__", work), args)
    finally:
        try:
            close_old_connections()
        finally:
            _done(pool, key)


def _done(pool: _Pool, key: Any) -> None:
    with _lock:
        pool.pending -= 1
        pool.keys.discard(key)

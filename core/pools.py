"""Threads of their own for calls to a third party that may take long: a worker's task threads
hand the call over and go back to their queues.

A page handed to Twilio holds its thread until Twilio answers: 0.1-0.5 s when it is well, its
whole timeout (10 s) when it hangs. On the worker's four task threads, a steady flow of pages
with Twilio answering in 0.3 s was enough to keep every thread waiting on it, and the next
alert's first page waited 9-11 s under load (`python bench/paging.py --twilio-latency 0.3`,
2026-12-08); a Twilio that hangs took all four, so that email pages, the tick and the ingest
waited for its timeout. Waiting on a socket costs a thread nothing but memory, so each party
gets a pool of threads per worker process (a setting: MUSTER_PAGING_THREADS for each paging
provider), and a task hands its work to the pool and returns at once.

A pool takes as much work as it has threads, and as much again queued in order; beyond that it
refuses, and the caller leaves the work for later (a provider that hangs fills its pool, never
the worker's task threads). Work in a pool is in memory only: what it must not lose, the caller
keeps in the database until the work is done (a page stays `queued` until its delivery claims
it, and the outbox sweep enqueues it again if the process dies first).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix=f"pool-{name}")


def submit(setting: str, party: str, work: Callable[..., Any], *args: Any) -> bool:
    """Run `work(*args)` on one of `party`'s threads in this process (as many as `setting`
    says, at least one); return False, running nothing, when as much work again as it has
    threads is waiting already."""
    threads = max(getattr(settings, setting), 1)
    with _lock:
        pool = _pools.get((setting, party, threads))
        if pool is None:
            pool = _pools[(setting, party, threads)] = _Pool(party or setting.lower(), threads)
        if pool.pending >= 2 * threads:
            return False
        pool.pending += 1
    pool.executor.submit(_run, pool, work, args)
    return True


def inside() -> bool:
    """Whether this thread is one of a pool's: work a worker does, though no Celery task."""
    return getattr(_inside, "yes", False)


def _run(pool: _Pool, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # As Celery's Django fixup does around a task: a connection left broken or past its age by
    # the last piece of work is not used again, and this one's goes back to the pool after.
    _inside.yes = True
    close_old_connections()
    try:
        work(*args)
    except Exception:
        log.exception("%s failed on a pool's thread", getattr(work, "__qualname__", work))
    finally:
        close_old_connections()
        with _lock:
            pool.pending -= 1

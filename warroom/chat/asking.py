"""Asking a worker for a chat task: once while one is on its way, or later (a countdown)."""

from __future__ import annotations

import logging
from typing import Any

from celery import signature
from django.core.cache import cache

log = logging.getLogger(__name__)

ON_ITS_WAY_SECONDS = 10  # a task asked for less than this long ago is on its way
BACKOFF_SECONDS = (2, 5, 15, 30, 60, 120, 300, 600)


def backoff_seconds(failures: int) -> float:
    """How long to wait after the `failures`th failure in a row (a 429 says how long itself)."""
    return BACKOFF_SECONDS[min(max(failures, 1), len(BACKOFF_SECONDS)) - 1]


def ask(task: str, args: tuple[Any, ...], *, countdown: float = 0, again: bool = False) -> None:
    """Send `task` with `args`: now, unless the same was asked for lately and not started
    (`again`: anyway, as the sweep does, since what was asked for may have been lost); or in
    `countdown` seconds. A broker that is down is logged: the sweep asks again."""
    try:
        fresh = again or cache.add(on_its_way_key(task, args), 1, ON_ITS_WAY_SECONDS)
        if countdown <= 0 and not fresh:
            return
        signature(task, args=args).apply_async(countdown=countdown if countdown > 0 else None)
    except Exception:
        log.warning("could not ask for %s%s", task, args, exc_info=True)


def started(task: str, args: tuple[Any, ...]) -> None:
    """The task runs: what is asked for from now on needs a task of its own."""
    cache.delete(on_its_way_key(task, args))


def on_its_way_key(task: str, args: tuple[Any, ...]) -> str:
    return f"chat:asked:{task}:" + ":".join(str(a) for a in args)

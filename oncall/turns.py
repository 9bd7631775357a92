"""Pages take turns on their provider: at most PAGE_THREADS of a worker's threads call one.

A provider that answers slowly holds the thread that called it for the client's whole timeout
(Twilio's 10 s). With four SMS pages due at once against a Twilio that answered nothing, all
four threads of a worker waited on it, and an email page, the next escalation step and the
alerts' processing waited for a thread: the email 10.2 s (tests/system/test_provider_hangs.py).

So a delivery that finds its provider's threads all busy does not wait in its thread: it puts
its page in the provider's line in this process and lets the thread go. A thread done with its
own page takes the next in line before it lets its turn go, so in a storm with the provider
well a page waits for one call to end, in order, not for a poll; with the provider hanging,
the lined-up pages hold no thread at all. Taking and letting go of a turn happen under one
lock with joining the line, so no page joins a line that nobody will serve.

A page waits in memory only: its row stays `queued`, noted as enqueued, so if the process dies
the sweep enqueues it again (PAGE_REQUEUE_AFTER_SECONDS), as it does a lost task. A thread
serves the line for at most SERVE_SECONDS; then it hands the line to a fresh task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger(__name__)

# After this long serving the line a thread lets its turn go (asking a fresh task to carry on),
# so that no task runs for ever while a provider hangs, and a worker stops in good time.
SERVE_SECONDS = 30.0

_lock = threading.Lock()
_busy: Counter[str] = Counter()  # threads delivering a page of each provider now
_line: dict[str, deque[int]] = {}  # pages waiting for a provider's thread, in order
_lined: set[int] = set()


def take_turn(
    page_id: int, provider: str, deliver: Callable[[int], str], hand_over: Callable[[int], None]
) -> str:
    """Deliver `page_id` with `deliver` if fewer than PAGE_THREADS threads deliver pages of
    `provider`, then the pages lined up for it; else line the page up and return at once.
    `hand_over(page_id)` asks a fresh task for a lined-up page (when this thread stops serving
    the line with pages still in it)."""
    with _lock:
        if _busy[provider] >= max(settings.PAGE_THREADS, 1):
            if page_id not in _lined:
                _line.setdefault(provider, deque()).append(page_id)
                _lined.add(page_id)
            return "lined up for a thread"
        _busy[provider] += 1
    released = False
    try:
        outcome = deliver(page_id)
        stop_at = time.monotonic() + SERVE_SECONDS
        while True:
            with _lock:
                waiting = _line.get(provider)
                if not waiting or time.monotonic() > stop_at:
                    _busy[provider] -= 1
                    released = True
                    left = waiting[0] if waiting else None
                    break
                next_id = waiting.popleft()
                _lined.discard(next_id)
            _serve(next_id, deliver)
        if left is not None:
            hand_over(left)
        return outcome
    finally:
        if not released:  # `deliver` raised: let the turn go, and the line to a fresh task
            with _lock:
                _busy[provider] -= 1
                waiting = _line.get(provider)
                left = waiting[0] if waiting else None
            if left is not None:
                hand_over(left)


def _serve(page_id: int, deliver: Callable[[int], str]) -> None:
    """Deliver a lined-up page; a failure is its own (the sweep takes the page back)."""
    try:
        deliver(page_id)
    except Exception:
        log.exception("could not deliver lined-up page %s; the sweep will take it back", page_id)


def lined_up(provider: str) -> list[int]:
    """The pages waiting for `provider` in this process, in order (for tests and metrics)."""
    with _lock:
        return list(_line.get(provider, ()))

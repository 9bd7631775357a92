"""How many of a worker's threads may wait on one kind of third party at once.

A Slack that answers slowly holds the thread that called it for the client's whole timeout (5 s),
batch after batch; a runbook action's endpoint may take its whole timeout (up to 60 s). A worker
has four threads (the threads pool, as deployed): in a storm, with a channel each for several
services, every one of them waited on Slack, and a page waited for a thread
(tests/system/test_hanging_parties.py: the SMS went out 5.2 s late). So each third party has a
number of slots per worker process (a setting: one for each chat platform, one for runbook
actions by default, three of four threads together); a task that finds its party's slots all
taken asks for itself again a moment later and lets its thread go to pages and alerts. Only the
threads pool shares one count among its tasks (as deployed; a prefork child counts alone).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

RETRY_SECONDS = 2  # a task that found no slot asks for itself again this much later
# Tasks of one key that find no slot within this long of another's asking again are dropped: a
# sweep re-asking every few seconds during a long outage would otherwise add a chain of retries
# each time. Less than RETRY_SECONDS, so a chain's own next ask finds the mark gone.
_ONE_ASK_SECONDS = 1

_lock = threading.Lock()
_taken: Counter[tuple[str, str]] = Counter()
# The slots this thread holds: a call nested in one (a task run eagerly inside another, as
# bench/profile_incident.py runs them) is the same thread, so it takes no second slot.
_mine = threading.local()


@contextmanager
def slot(setting: str, party: str = "") -> Iterator[bool]:
    """Take one of this process's slots for calls to `party` (e.g. a chat platform), as many as
    `setting` says (at least one), for the block; yield whether one was free. If not, the
    caller asks for its task again later. A thread that holds one already has it again."""
    key = (setting, party)
    held: Counter[tuple[str, str]] = _mine.__dict__.setdefault("held", Counter())
    if held[key]:
        free = True
    else:
        with _lock:
            free = _taken[key] < max(getattr(settings, setting), 1)
            if free:
                _taken[key] += 1
    if free:
        held[key] += 1
    try:
        yield free
    finally:
        if free:
            held[key] -= 1
            if not held[key]:
                with _lock:
                    _taken[key] -= 1


def ask_again_later(key: str, ask: Callable[[float], None]) -> None:
    """Call `ask(RETRY_SECONDS)` (which sends the task with that countdown) unless a task of
    `key` did so within the last second: then that one's retry covers this one, and what
    sweeps there are cover both."""
    try:
        first = cache.add(f"slots:later:{key}", 1, _ONE_ASK_SECONDS)
    except Exception:  # no cache: ask; at worst twice
        log.warning("could not mark %s as asked again", key, exc_info=True)
        first = True
    if first:
        ask(RETRY_SECONDS)

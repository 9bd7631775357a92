"""How many of a worker's threads may wait on one kind of third party at once.

A Slack that answers slowly holds the thread that called it for the client's whole timeout (5 s),
batch after batch; a runbook action's endpoint may take its whole timeout (up to 60 s). A worker
has four threads (the threads pool, as deployed): in a storm, with a channel each for several
services, every one of them waited on Slack, and a page waited for a thread
(tests/system/test_hanging_parties.py: the SMS went out 5.2 s late). So each third party has a
number of slots per worker process (a setting: one for each chat platform and for runbook
actions, two for each paging provider by default); a task that finds its party's slots all
taken asks for itself again a moment later and lets its thread go to pages and alerts. Only the
threads pool shares one count among its tasks (as deployed; a prefork child counts alone).

A party that answers in good time but is busy (Twilio in a storm of pages) should not send
tasks away for seconds each: a caller may wait for a slot with some `patience`, while a call
holding one began less than that long ago, and no longer than that in all. One caller a party
waits at a time, so a party that hangs holds its slots and one more thread for a moment, never
every thread; once its calls are older than the patience, the tasks that come next are
refused at once rather than each waiting in turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
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

_changed = threading.Condition()  # a slot was taken or given back
# The threads holding each key's slots, and when each took it (time.monotonic()).
_holders: defaultdict[tuple[str, str], dict[int, float]] = defaultdict(dict)
_waiting: Counter[tuple[str, str]] = Counter()  # callers waiting for each key's slots
# The slots this thread holds: a call nested in one (a task run eagerly inside another, as
# bench/profile_incident.py runs them) is the same thread, so it takes no second slot.
_mine = threading.local()


@contextmanager
def slot(setting: str, party: str = "", *, patience: float = 0.0) -> Iterator[bool]:
    """Take one of this process's slots for calls to `party` (e.g. a chat platform), as many as
    `setting` says (at least one), for the block; yield whether one was free. If none is and
    nobody else waits, wait for one while the youngest call holding one began less than
    `patience` seconds ago, `patience` at most; if none comes, the caller asks for its task
    again later. A thread that holds one has it again."""
    key = (setting, party)
    held: Counter[tuple[str, str]] = _mine.__dict__.setdefault("held", Counter())
    free = bool(held[key]) or _take(key, max(getattr(settings, setting), 1), patience)
    if free:
        held[key] += 1
    try:
        yield free
    finally:
        if free:
            held[key] -= 1
            if not held[key]:
                with _changed:
                    del _holders[key][threading.get_ident()]
                    _changed.notify_all()


def _take(key: tuple[str, str], limit: int, patience: float) -> bool:
    with _changed:
        holders = _holders[key]
        if len(holders) >= limit and patience > 0 and not _waiting[key]:
            _waiting[key] += 1
            try:
                give_up = time.monotonic() + patience
                while len(holders) >= limit:
                    busy_until = max(holders.values()) + patience  # the youngest call's
                    left = min(give_up, busy_until) - time.monotonic()
                    if left <= 0:
                        break
                    _changed.wait(left)
            finally:
                _waiting[key] -= 1
        if len(holders) >= limit:
            return False
        holders[threading.get_ident()] = time.monotonic()
        return True


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

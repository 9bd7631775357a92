"""Who is in a room now, shared by every daphne process through Django's cache.

Each open websocket is one entry, "<channel name> <username>", stamped with the time it last
showed life (joined, pinged, said something). Entries older than STALE_AFTER do not count and
are swept, so the clients of a process that died without saying goodbye drop out within 90
seconds. A person with two tabs open has two entries and is listed once.

With Redis (production) a room's roster is a sorted set scored by that time, read and changed
in one MULTI transaction, so processes never overwrite each other's entries. Other caches
(locmem, in the one embedded process) keep a dict, changed under a lock taken with
`cache.add`, which is atomic on every cache backend.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

STALE_AFTER = 90.0  # seconds without a sign of life before an entry stops counting
_KEY_TTL = 24 * 3600  # a room nobody joined or left for a day forgets its roster
_LOCK_TIMEOUT = 5  # seconds; a lock left by a dead process expires after this


@dataclass(frozen=True)
class Change:
    """Who is in the room after a join, touch or leave, and whether that list changed."""

    users: list[str]
    changed: bool


def join(room_id: int, channel: str, username: str) -> Change:
    """Record that `username` is in the room on websocket `channel`."""
    return _update(room_id, _member(channel, username), present=True)


def touch(room_id: int, channel: str, username: str) -> Change:
    """Record a sign of life from `channel` (a ping, a message); it may have gone stale."""
    return _update(room_id, _member(channel, username), present=True)


def leave(room_id: int, channel: str, username: str) -> Change:
    """Record that websocket `channel` left the room."""
    return _update(room_id, _member(channel, username), present=False)


def users(room_id: int) -> list[str]:
    """Return the usernames in the room now, sorted."""
    cache, key = _cache(), _key(room_id)
    now = time.time()
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(key)
        members = cache._cache.get_client(key).zrangebyscore(key, f"({now - STALE_AFTER}", "+inf")
    else:
        roster = cache.get(key) or {}
        members = [m for m, at in roster.items() if at > now - STALE_AFTER]
    return _usernames(members)


def _member(channel: str, username: str) -> str:
    # Channel names and usernames hold no spaces (Django's username validator forbids them).
    return f"{channel} {username}"


def _usernames(members: Iterable[str | bytes]) -> list[str]:
    names = set()
    for member in members:
        text = member.decode() if isinstance(member, bytes) else member
        names.add(text.split(" ", 1)[1])
    return sorted(names)


def _key(room_id: int) -> str:
    return f"warroom:presence:{room_id}"


def _cache():
    return caches["default"]


def _update(room_id: int, member: str, *, present: bool) -> Change:
    cache, key = _cache(), _key(room_id)
    now = time.time()
    stale = now - STALE_AFTER
    if isinstance(cache, RedisCache):
        # The raw client, for a sorted set; the key is made as the cache makes its own.
        key = cache.make_and_validate_key(key)
        client = cache._cache.get_client(key, write=True)
        with client.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(key, f"({stale}", "+inf")
            if present:
                pipe.zadd(key, {member: now})
            else:
                pipe.zrem(key, member)
            pipe.zremrangebyscore(key, "-inf", stale)
            pipe.expire(key, _KEY_TTL)
            pipe.zrangebyscore(key, f"({stale}", "+inf")
            results = pipe.execute()
        before, after = _usernames(results[0]), _usernames(results[-1])
    else:
        with _locked(cache, key):
            roster = {m: at for m, at in (cache.get(key) or {}).items() if at > stale}
            before = _usernames(roster)
            if present:
                roster[member] = now
            else:
                roster.pop(member, None)
            cache.set(key, roster, _KEY_TTL)
        after = _usernames(roster)
    return Change(users=after, changed=before != after)


@contextlib.contextmanager
def _locked(cache, key: str) -> Iterator[None]:
    lock = f"{key}:lock"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + _LOCK_TIMEOUT + 1
    while not cache.add(lock, token, _LOCK_TIMEOUT):
        if time.monotonic() > deadline:  # cannot happen while the lock expires on its own
            break
        time.sleep(0.005)
    try:
        yield
    finally:
        if cache.get(lock) == token:
            cache.delete(lock)

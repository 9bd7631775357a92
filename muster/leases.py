"""Leases: a named right held by one process at a time, kept in a database row.

One conditional UPDATE takes or renews a lease:

    UPDATE muster_lease SET holder = me, expires_at = now + ttl, renewed_at = now
    WHERE name = 'beat' AND (holder = me OR expires_at < now OR expires_at IS NULL)

It works the same on PostgreSQL and SQLite (no advisory lock, which SQLite has not): the row's
lock makes two UPDATEs wait for each other, and the second sees the first's holder.

Clocks. `now` is the database's clock (`Now()`: STATEMENT_TIMESTAMP() on PostgreSQL,
STRFTIME('now') on SQLite), so every holder on every machine compares expiries with one clock
and skew between machines does not matter. A holder counts its own lease's end on its own
monotonic clock, from the moment before it sent the UPDATE: the database set the expiry later
than that, so the holder stops believing it holds no later than the database lets another take
over. Only a difference in clock *rates* over one TTL (a few seconds) could matter.

Tests pass `now` explicitly: a controlled clock instead of the database's.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.db import DatabaseError, connection
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Now

from muster.models import Lease


def hold_lease(name: str, holder: str, *, ttl: float, now: datetime | None = None) -> bool:
    """Take or renew the lease `name` for `holder` for `ttl` seconds; return whether it holds.

    It holds when it held the lease already, or when the lease was free or had expired.
    `now`: the database's clock when None (always, outside tests).
    """
    at = Now() if now is None else Value(now, output_field=DateTimeField())
    taken = _update(name, holder, at, ttl)
    if taken is None:  # no row yet (a new database, or a test that emptied the table)
        Lease.objects.bulk_create([Lease(name=name)], ignore_conflicts=True)
        taken = _update(name, holder, at, ttl)
    return bool(taken)


def _update(name: str, holder: str, at, ttl: float) -> int | None:
    updated = (
        Lease.objects.filter(name=name)
        .filter(Q(holder=holder) | Q(expires_at__lt=at) | Q(expires_at__isnull=True))
        .update(holder=holder, expires_at=at + timedelta(seconds=ttl), renewed_at=at)
    )
    if updated == 0 and not Lease.objects.filter(name=name).exists():
        return None
    return updated


def release_lease(name: str, holder: str) -> bool:
    """Give the lease up at once if `holder` holds it, so another takes over without waiting."""
    return bool(Lease.objects.filter(name=name, holder=holder).update(holder="", expires_at=None))


def lease_holder(name: str) -> Lease | None:
    """Return the lease's row (holder and expiry), or None if it was never taken."""
    return Lease.objects.filter(name=name).first()


class HeldLease:
    """A lease one process keeps renewing, and whether it may act on it right now.

    `holds()` renews at most every `renew` seconds and answers from the monotonic clock in
    between. Any failure to renew (an error, a lost connection, another holder) means "not
    held" at once: a holder in doubt stops acting. Between renewals the lease counts as held
    only until `ttl` seconds after the last successful renewal was *sent*.
    """

    def __init__(self, name: str, holder: str, *, ttl: float, renew: float) -> None:
        if not 0 < renew < ttl:
            raise ValueError(f"renew ({renew}s) must be shorter than the TTL ({ttl}s)")
        self.name, self.holder, self.ttl, self.renew = name, holder, ttl, renew
        self._valid_until = 0.0  # monotonic
        self._next_renewal = 0.0  # monotonic

    def holds(self) -> bool:
        """Return whether this process holds the lease now, renewing it when due."""
        now = time.monotonic()
        if now >= self._next_renewal:
            self._renew(now)
        return time.monotonic() < self._valid_until

    def seconds_to_next_renewal(self) -> float:
        return max(0.0, self._next_renewal - time.monotonic())

    def _renew(self, sent: float) -> None:
        self._next_renewal = sent + self.renew
        try:
            held = hold_lease(self.name, self.holder, ttl=self.ttl)
        except DatabaseError:
            held = False
            # A broken connection stays broken in a long-lived thread: the next try opens one.
            connection.close()
        self._valid_until = sent + self.ttl if held else 0.0

    def release(self) -> None:
        """Give the lease up (at shutdown); a failure here only means a peer waits the TTL."""
        self._valid_until = 0.0
        try:
            release_lease(self.name, self.holder)
        except DatabaseError:
            connection.close()

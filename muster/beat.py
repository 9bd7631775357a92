"""`LeasedScheduler`: Celery beat that publishes only while it holds the "beat" lease.

Run as many beats as you like (`celery beat` twice, or `celery worker -B` in every worker):
the one holding the lease publishes, the others wait. If the holder dies, its lease expires
(MUSTER_BEAT_LEASE_TTL_SECONDS, 6 s) and the next beat to renew (every
MUSTER_BEAT_LEASE_RENEW_SECONDS, 1 s) takes over: the tick stops for at most TTL + renew.

The schedule itself is kept in memory (Celery's `Scheduler`, no `--schedule` file): what must
happen is in the database, and the periodic tasks are safe to run again after a takeover.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from celery import beat
from django.conf import settings

from muster.leases import HeldLease

log = logging.getLogger(__name__)

BEAT_LEASE = "beat"


def holder_name() -> str:
    """Return a name for this process that no other process, here or elsewhere, shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeasedScheduler(beat.Scheduler):
    """Celery's scheduler, publishing due tasks only while this process holds the lease."""

    def __init__(self, *args, **kwargs) -> None:
        self.lease = HeldLease(
            BEAT_LEASE,
            holder_name(),
            ttl=settings.BEAT_LEASE_TTL_SECONDS,
            renew=settings.BEAT_LEASE_RENEW_SECONDS,
        )
        self._held = False
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        held = self.lease.holds()
        if held != self._held:
            self._held = held
            if held:
                log.info("beat lease taken by %s: publishing", self.lease.holder)
            else:
                log.warning("beat lease not held by %s: not publishing", self.lease.holder)
        if not held:
            # Due entries stay due: the first tick after a takeover publishes them.
            return self.lease.seconds_to_next_renewal()
        return min(super().tick(*args, **kwargs), self.lease.seconds_to_next_renewal())

    def apply_entry(self, entry, producer=None):
        # A renewal may have been slow: never publish on a lease that may have run out.
        if not self.lease.holds():
            log.warning("beat lease lost before sending %s: not sent", entry.name)
            return None
        return super().apply_entry(entry, producer=producer)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.lease.release()

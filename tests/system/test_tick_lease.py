"""The beat lease (muster/leases.py, muster/beat.py) on the real PostgreSQL of `./musterctl test`.

- Its rules over random sequences: holders try, renew and die (stop trying) while a controlled
  clock moves on; at most one holder believes it holds at any instant, a renewal by the holder
  always succeeds, and an expired lease goes to the first other holder who asks.
- A holder that cannot renew (the lease taken, its connection lost) stops at once.
- Three real `celery beat` processes on PostgreSQL and Redis: exactly one publishes the tick;
  SIGKILL it and another publishes within 10 s; SIGTERM that one and it gives the lease up.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from hypothesis import HealthCheck, example, given
from hypothesis import strategies as st

from muster.beat import BEAT_LEASE
from muster.celery import app as celery_app
from muster.leases import HeldLease, hold_lease, lease_holder, release_lease
from muster.models import Lease
from tests.helpers.fuzz import fuzz_settings
from tests.helpers.system import database_url_of_tests, require_postgresql, start_logged, wait_for

TTL = 6.0
HOLDERS = ("a", "b", "c")
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _postgresql():
    require_postgresql()


# --- the rules, over random sequences --------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("try"), st.sampled_from(HOLDERS)),
        st.tuples(st.just("release"), st.sampled_from(HOLDERS)),
        # Whole and fractional seconds, landing on expiries exactly now and then.
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.999, 6.0, 6.001, 9.0])),
    ),
    max_size=40,
)


@given(steps=steps)
@example(steps=[("try", "a"), ("wait", 6.0), ("try", "b"), ("wait", 0.001), ("try", "b")])
@example(steps=[("try", "a"), ("wait", 5.999), ("try", "a"), ("wait", 5.999), ("try", "b")])
@example(steps=[("try", "a"), ("release", "a"), ("try", "b"), ("try", "a")])
@fuzz_settings(200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_at_most_one_holder_and_an_expired_lease_is_taken_over(db, steps):
    Lease.objects.all().delete()
    now = START
    # What each holder believes: it holds until `ttl` after the instant it last succeeded.
    believes_until: dict[str, datetime] = {}
    # The model: who holds the lease and until when, by the (controlled) database clock.
    holder, expires = None, None
    for action, arg in steps:
        if action == "wait":
            now += timedelta(seconds=arg)
        elif action == "release":
            released = release_lease(BEAT_LEASE, arg)
            assert released == (holder == arg)
            if released:
                holder, expires = None, None
            believes_until.pop(arg, None)
        else:
            free = holder is None or holder == arg or expires < now
            assert hold_lease(BEAT_LEASE, arg, ttl=TTL, now=now) == free, (holder, expires, now)
            if free:
                holder, expires = arg, now + timedelta(seconds=TTL)
                believes_until[arg] = expires
        believers = [h for h, until in believes_until.items() if now < until]
        assert len(believers) <= 1, (now, believes_until)
        row = lease_holder(BEAT_LEASE)
        if holder is not None:
            assert (row.holder, row.expires_at) == (holder, expires)


@pytest.mark.django_db
def test_the_database_clock_decides_when_no_clock_is_given():
    assert hold_lease(BEAT_LEASE, "a", ttl=TTL)
    assert not hold_lease(BEAT_LEASE, "b", ttl=TTL)
    assert hold_lease(BEAT_LEASE, "a", ttl=TTL)  # a renewal
    # An expiry in the past by the database's clock: the next to ask takes over.
    Lease.objects.filter(name=BEAT_LEASE).update(expires_at=START)
    assert hold_lease(BEAT_LEASE, "b", ttl=TTL)
    assert not hold_lease(BEAT_LEASE, "a", ttl=TTL)
    assert lease_holder(BEAT_LEASE).holder == "b"


def test_a_holder_whose_lease_was_taken_stops_at_once(db):
    first = HeldLease(BEAT_LEASE, "first", ttl=TTL, renew=0.001)
    second = HeldLease(BEAT_LEASE, "second", ttl=TTL, renew=0.001)
    assert first.holds()
    time.sleep(0.002)
    assert not second.holds()
    # The first holder's renewals stopped reaching the database (say its connection hung) and
    # the lease expired there: the second takes it, and the first knows at its next renewal.
    Lease.objects.filter(name=BEAT_LEASE).update(expires_at=START)
    assert second.holds()
    time.sleep(0.002)
    assert not first.holds()
    assert second.holds()


@pytest.mark.django_db(transaction=True)
def test_a_holder_that_loses_its_database_connection_stops_then_renews():
    held = HeldLease(BEAT_LEASE, "alone", ttl=TTL, renew=0.001)
    assert held.holds()
    # The server ends this thread's connection, as a failover or a restart would.
    pid = connection.connection.info.backend_pid
    with psycopg.connect(database_url_of_tests(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.002)
    assert not held.holds()  # the renewal failed: in doubt, it stops at once
    time.sleep(0.002)
    assert held.holds()  # a new connection; the lease is still its own
    assert lease_holder(BEAT_LEASE).holder == "alone"


# --- two real beats -----------------------------------------------------------------------------

SENT = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/MainProcess\] "
    r"Scheduler: Sending due task tick \(muster\.tick\)",
    re.M,
)
TAKEOVER_BOUND = 10.0  # issue 15: another takes over within 10 s


def _start_beat(log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env.update(
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=settings.REDIS_URL,
        DATABASE_POOL_MIN="1",
        DATABASE_POOL_MAX="2",
        PYTHONUNBUFFERED="1",
    )
    return start_logged(
        [sys.executable, "-m", "celery", "-A", "muster", "beat", "--loglevel", "INFO"],
        env,
        log_path,
    )


def _sent(log_path: Path) -> list[datetime]:
    """The instants (by the beat's own log) at which a beat sent `muster.tick`."""
    return [
        datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        for m in SENT.finditer(log_path.read_text(errors="replace"))
    ]


def _holder_pid() -> int | None:
    lease = lease_holder(BEAT_LEASE)
    return int(lease.holder.split(":")[1]) if lease and lease.holder else None


@pytest.mark.django_db(transaction=True)
def test_of_three_beats_one_publishes_and_another_takes_over_when_it_dies(tmp_path):
    logs = [tmp_path / f"beat-{i}.log" for i in range(3)]
    beats = [_start_beat(path) for path in logs]

    def counts() -> list[int]:
        return [len(_sent(p)) for p in logs]

    def publishing() -> list[int]:
        return [i for i, n in enumerate(counts()) if n > 0]

    try:
        # All run; ticks are sent twice a second, by one of them only.
        wait_for(lambda: sum(counts()) >= 6, timeout=30, interval=0.2, what="six ticks sent")
        assert all(b.poll() is None for b in beats), [p.read_text() for p in logs]
        [first] = publishing()
        assert _holder_pid() == beats[first].pid

        # SIGKILL: no clean-up, the lease stays taken until it expires.
        os.killpg(beats[first].pid, signal.SIGKILL)
        killed = time.monotonic()
        beats[first].wait(10)
        sent_by_first = counts()[first]
        [second] = wait_for(
            lambda: [i for i in publishing() if i != first],
            timeout=TAKEOVER_BOUND,
            interval=0.1,
            what="another beat to send the tick",
        )
        took = time.monotonic() - killed
        print(f"takeover: the next beat sent its first tick {took:.1f}s after the SIGKILL")
        wait_for(lambda: counts()[second] >= 3, timeout=10, interval=0.2, what="3 ticks")
        assert counts()[first] == sent_by_first  # the dead one sent nothing more
        assert _holder_pid() == beats[second].pid
        [third] = {0, 1, 2} - {first, second}
        assert counts()[third] == 0  # still waiting: one publisher at a time

        # SIGTERM: a clean stop gives the lease up as it exits.
        beats[second].terminate()
        beats[second].wait(15)
        assert _holder_pid() != beats[second].pid
        wait_for(lambda: counts()[third] > 0, timeout=TAKEOVER_BOUND, what="the last beat")
        assert _holder_pid() == beats[third].pid
    finally:
        for beat in beats:
            if beat.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(beat.pid, signal.SIGKILL)
                beat.wait(10)
        celery_app.control.purge()  # the ticks no worker took, so no later test's worker runs them

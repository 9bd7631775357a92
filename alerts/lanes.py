"""Processing lanes: several processors at once, each sender's order kept.

Every accepted request belongs to one lane, by its order key (alerts.ordering; a request
without one, by its integration): `lane_of`. A processor works on one lane at a time under that
lane's lock (a PostgreSQL advisory lock for the transaction), so processors on other lanes go
on in parallel, and within a lane requests go in arrival order as before. What must stay in
order shares its key, hence its lane. The one thing that crosses lanes is a request without a
key (a generic list of several alerts): it is taken only when no older request of its
integration waits in another lane, and no newer one is taken in another lane before it.

On SQLite (the embedded default, one process) there is one lane, under a process lock.

The claims are SQL of their own, like the accept's (alerts.pending): built once per lane count,
not compiled by the ORM on every batch (`bench/profile_incident.py`, 2026-12-07: the ORM's
compilation of the two claims was half the CPU of processing one alert when idle).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from alerts.models import IngestRequest, Outcome
from alerts.ordering import lane_of

__all__ = ["Candidates", "busy", "candidates", "count", "hold", "lane_of"]

# How many of a lane's oldest urgent requests a claim considers for going ahead (alerts.processor).
# An urgent request behind more urgent ones than this (a storm of new alerts) waits until
# they are fewer: a bound on the claim's cost, which otherwise grew with the backlog.
URGENT_SCAN = 500
LOCK_CLASS = 0x6D75  # "mu": a lane's lock is the advisory lock (LOCK_CLASS, lane)
# Before lanes, one processor ran at a time under this lock. Each lane's holder also holds it
# shared, so a processor of an older release (it takes it alone) never runs beside lanes
# during a rolling upgrade.
ONE_PROCESSOR_LOCK = 0x6D757374
_local_lock = threading.Lock()  # SQLite: one process, one lane


def count() -> int:
    """How many lanes: MUSTER_INGEST_LANES on PostgreSQL; one on SQLite."""
    if connection.vendor != "postgresql":
        return 1
    return max(1, settings.INGEST_LANES)


@contextmanager
def hold(lane: int, *, wait: bool) -> Iterator[bool]:
    """Open a transaction holding `lane`'s lock; yield whether it is ours (with `wait`, it
    always is, once its holder lets go)."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                if wait:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock_shared(%s), pg_advisory_xact_lock(%s, %s)",
                        [ONE_PROCESSOR_LOCK, LOCK_CLASS, lane],
                    )
                    free = True
                else:
                    cursor.execute(
                        "SELECT pg_try_advisory_xact_lock_shared(%s) "
                        "AND pg_try_advisory_xact_lock(%s, %s)",
                        [ONE_PROCESSOR_LOCK, LOCK_CLASS, lane],
                    )
                    (free,) = cursor.fetchone()
            yield free
        return
    free = _local_lock.acquire(blocking=wait)
    try:
        with transaction.atomic():
            yield free
    finally:
        if free:
            _local_lock.release()


@dataclass(frozen=True)
class Candidates:
    """A lane's next requests, (id, alert count) each, oldest first."""

    ahead: list[tuple[int, int]]  # urgent requests that may go ahead
    oldest: list[tuple[int, int]]  # the oldest pending, up to the first that must wait
    blocked: bool  # `oldest` stopped at a request waiting for another lane


def candidates(lane: int, lanes: int, *, urgent: int, oldest: int) -> Candidates:
    """The lane's next requests, in one statement: up to `urgent` urgent requests that may go
    ahead, and up to `oldest` of its oldest pending ones, up to the first that must wait for
    another lane.

    A request may go ahead when no older pending request of its integration has its order key,
    or has none (alerts.ordering); one without a key never goes ahead. One statement for both,
    where a batch asked twice (a storm's batches find no urgent request, then ask again).
    """
    params = [*_in_lane(lane, lanes), urgent, *_in_lane(lane, lanes) * 3, oldest]
    ahead: list[tuple[int, int]] = []
    taken: list[tuple[int, int]] = []
    blocked_seen = False
    for pk, alerts, is_urgent, blocked in _rows(_candidates_sql(lanes), params):
        if is_urgent:
            ahead.append((pk, alerts))
        elif not blocked_seen and not blocked:
            taken.append((pk, alerts))
        else:
            blocked_seen = True
    return Candidates(ahead, taken, blocked_seen)


def busy(lanes: int) -> set[int]:
    """The lanes in which requests wait."""
    if lanes == 1:
        return {0} if _rows(_busy_sql(1), []) else set()
    return {value % lanes for (value,) in _rows(_busy_sql(lanes), [])}


def _rows(sql: str, params: list[int]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _in_lane(lane: int, lanes: int) -> list[int]:
    # SQL's MOD keeps the dividend's sign: a negative key's lane L is MOD = L - lanes.
    return [lane, lane - lanes] if lanes > 1 else []


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _pending(alias: str) -> str:
    """The condition of the partial indexes on pending requests (alerts.models), verbatim, so
    that the planner uses them."""
    return (
        f"{alias}.{_qn('outcome')} = '{Outcome.ACCEPTED}' AND {alias}.{_qn('processed_at')} IS NULL"
    )


def _lane_test(alias: str, lanes: int, *, inside: bool = True) -> str:
    """Whether `alias` is in the lane given as two parameters (see _in_lane)."""
    if lanes == 1:
        return "TRUE" if inside else "FALSE"
    key = f"COALESCE({alias}.{_qn('order_key')}, {alias}.{_qn('integration_id')})"
    test = f"MOD({key}, {int(lanes)}) IN (%s, %s)"
    return test if inside else f"NOT ({test})"


def _table() -> str:
    return _qn(IngestRequest._meta.db_table)


def _none(probe: str) -> str:
    """That `probe` (a SELECT 1 ...) finds nothing, as a probe run for each candidate.

    Not NOT EXISTS: PostgreSQL turns that into an anti-join, planned from the table's
    statistics, which a storm outruns: with 3,000 requests pending and statistics from when
    there were few, it scanned every pending request of the index for each candidate (93 ms a
    claim, up to 118 ms in bench/ingest.py, instead of a probe each). A scalar subquery with
    a LIMIT is never made a join: it stays a probe of the index with the candidate's values.
    """
    return f"({probe} LIMIT 1) IS NULL"


def _older(alias: str) -> str:
    """Pending requests `o` of the integration of `alias`, received before it."""
    return (
        f"SELECT 1 FROM {_table()} o WHERE {_pending('o')} "  # noqa: S608
        f"AND o.{_qn('integration_id')} = {alias}.{_qn('integration_id')} "
        f"AND o.{_qn('id')} < {alias}.{_qn('id')}"
    )


def _older_with_key(alias: str) -> str:
    """Pending requests `o` of the integration of `alias`, with its key, received before it.

    "Before" as a row comparison in the columns of ingest_pending_by_key: only that index
    can take it as its bound, so the planner never walks every older pending request in
    ingest_pending instead (it did, with an empty table's statistics).
    """
    integration, key, pk = _qn("integration_id"), _qn("order_key"), _qn("id")
    return (
        f"SELECT 1 FROM {_table()} o WHERE {_pending('o')} "  # noqa: S608
        f"AND o.{integration} = {alias}.{integration} AND o.{key} = {alias}.{key} "
        f"AND (o.{integration}, o.{key}, o.{pk}) < ({alias}.{integration}, {alias}.{key}, "
        f"{alias}.{pk})"
    )


def _older_keyless(alias: str) -> str:
    """Pending requests `o` without a key, of the integration of `alias`, received before it
    (in ingest_pending_keyless's columns, as above)."""
    integration, pk = _qn("integration_id"), _qn("id")
    return (
        f"SELECT 1 FROM {_table()} o WHERE {_pending('o')} "  # noqa: S608
        f"AND o.{_qn('order_key')} IS NULL AND o.{integration} = {alias}.{integration} "
        f"AND (o.{integration}, o.{pk}) < ({alias}.{integration}, {alias}.{pk})"
    )


@functools.cache
def _candidates_sql(lanes: int) -> str:
    """Urgent requests that may go ahead, then the oldest: (id, alert count, urgent, blocked).
    Its parameters: the lane (twice, see _in_lane), the urgent limit, the lane three times,
    the oldest limit (with one lane, no lane parameters)."""
    # Each part a subquery of its own: SQLite takes no parentheses, ORDER BY or LIMIT on the
    # parts of a UNION themselves.
    return (
        f"SELECT c.* FROM (SELECT * FROM ({_urgent_sql(lanes)}) urgent_part "  # noqa: S608
        f"UNION ALL SELECT * FROM ({_oldest_sql(lanes)}) oldest_part"
        f") c ORDER BY c.urgent DESC, c.{_qn('id')}"
    )


def _urgent_sql(lanes: int) -> str:
    key = _qn("order_key")
    columns = ", ".join(f"r.{_qn(c)}" for c in ("id", "alert_count", "integration_id", "order_key"))
    # Of the lane's oldest URGENT_SCAN urgent requests with a key (one without never goes
    # ahead), those that may go ahead. Each costs two probes, and in a storm of new alerts (all
    # urgent) nearly none may go ahead: without the bound, every claim probed the whole backlog.
    scanned = (
        f"SELECT {columns} FROM {_table()} r "  # noqa: S608
        f"WHERE {_pending('r')} AND r.{_qn('urgent')} AND r.{key} IS NOT NULL "
        f"AND {_lane_test('r', lanes)} ORDER BY r.{_qn('id')} LIMIT {int(URGENT_SCAN)}"
    )
    return (
        f"SELECT r.{_qn('id')}, r.{_qn('alert_count')}, TRUE AS urgent, FALSE AS blocked "  # noqa: S608
        f"FROM ({scanned}) r "
        # Two probes, not one with OR: one on (integration, key, id), one on the keyless.
        f"WHERE {_none(_older_with_key('r'))} AND {_none(_older_keyless('r'))} "
        f"ORDER BY r.{_qn('id')} LIMIT %s"
    )


def _oldest_sql(lanes: int) -> str:
    columns = f"r.{_qn('id')}, r.{_qn('alert_count')}, FALSE AS urgent"
    order = f"ORDER BY r.{_qn('id')} LIMIT %s"
    if lanes == 1:
        return f"SELECT {columns}, FALSE AS blocked FROM {_table()} r WHERE {_pending('r')} {order}"  # noqa: S608
    key = _qn("order_key")
    elsewhere = _lane_test("o", lanes, inside=False)
    # Blocked: a request without a key while an older one of its integration waits in another
    # lane; or one with a key while an older one without waits in another lane.
    blocked = (
        f"CASE WHEN r.{key} IS NULL THEN EXISTS ({_older('r')} AND {elsewhere}) "
        f"ELSE EXISTS ({_older_keyless('r')} AND {elsewhere}) END AS blocked"
    )
    return (
        f"SELECT {columns}, {blocked} FROM {_table()} r "  # noqa: S608
        f"WHERE {_pending('r')} AND {_lane_test('r', lanes)} {order}"
    )


@functools.cache
def _busy_sql(lanes: int) -> str:
    if lanes == 1:
        return f"SELECT 1 FROM {_table()} r WHERE {_pending('r')} LIMIT 1"  # noqa: S608
    key = f"COALESCE(r.{_qn('order_key')}, r.{_qn('integration_id')})"
    return f"SELECT DISTINCT MOD({key}, {int(lanes)}) FROM {_table()} r WHERE {_pending('r')}"  # noqa: S608

"""Accepted requests wait here, durably, until the processor (alerts.processor) runs them.

The ingest views store a request and answer at once: a 2xx means "durably stored", not
"processed" (DESIGN.md allows processing just after the response). A view kicks the processor
through Celery; the kick is debounced with a cache key, and the processor drains everything
pending before it lets go of the key. The beat tick re-kicks when a request has waited too long
(a lost kick, a worker killed mid-batch: the batch rolled back and is simply done again).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection
from django.db.models import QuerySet
from django.utils import timezone

from alerts import lanes, ordering
from alerts.decoding import Request
from alerts.models import Alert, AlertStatus, IngestRequest, Integration, Outcome
from alerts.sources.base import NormalizedAlert
from alerts.upsert import stored_fingerprint
from core.compiled import Lookup

log = logging.getLogger(__name__)

KICK_KEY = "muster:ingest-kick"  # per lane: kick_key
# Set, per lane (alerts.lanes), when an urgent request is stored: a processor in the middle of
# a batch of the lane's oldest requests ends it early, so the urgent one goes next
# (alerts.processor). Only a hint: without it the urgent request waits for the batch to end.
URGENT_KEY = "muster:ingest-urgent"
KICK_TIMEOUT = 30  # seconds; a kick whose task was lost expires, and the tick re-kicks sooner
# A process that saw the kick key set less than settings.INGEST_KICK_MEMO_SECONDS ago does not
# look again (in a burst, the look was a sixth of a request's CPU). Safe because a processor,
# having cleared the key, waits twice that before its last look for requests (alerts.processor).
STUCK_AFTER = timedelta(seconds=2)
# How soon a lane is looked at again when its oldest request waits for another lane, or when
# the processor kicked for it found another holding it.
BLOCKED_RETRY_SECONDS = 0.2


def accept(
    integration: Integration,
    *,
    body: bytes,
    content_type: str,
    alert_count: int,
    warnings: list[str],
    params: dict[str, Any] | None = None,
    status_code: int = 200,
    alerts: Sequence[NormalizedAlert] = (),
) -> IngestRequest:
    """Store an accepted request, to be processed just after the response; `alerts`, as
    parsed, set its place in the processor's order (alerts.ordering)."""
    request = IngestRequest.accepted(
        body=body,
        content_type=content_type,
        alert_count=alert_count,
        warnings=warnings,
        params=params,
        status_code=status_code,
        order_key=ordering.order_key(integration.kind, alerts),
    )
    request.integration = integration
    if not _insert(request, alerts, f"{_qn('id')} = %s", [integration.pk]):
        # Deleted since it was read: as the foreign key would have refused it (a 503, and the
        # sender's retry finds the token gone).
        raise IntegrityError(f"integration {integration.pk} no longer exists")
    return request


def accept_by_token(token: str, kind: str, req: Request, alerts: list) -> IngestRequest | None:
    """Store a request for the integration of `kind` with this token, checking the token in the
    same statement: one round trip where looking the integration up first takes two.

    None when no enabled integration of `kind` has this token, or it verifies signatures (the
    caller then looks the integration up, to say why, or to check the signature first).
    """
    request = IngestRequest.accepted(
        body=req.body,
        content_type=req.content_type,
        alert_count=len(alerts),
        warnings=_warnings_of(alerts),
        order_key=ordering.order_key(kind, alerts),
    )
    where = (
        f"{_qn('token')} = %s AND {_qn('kind')} = %s AND {_qn('enabled')} "
        f"AND {_qn('hmac_secret')} = ''"
    )
    return request if _insert(request, alerts, where, [token, kind]) else None


def _warnings_of(alerts: list) -> list[str]:
    return [w for a in alerts for w in a.warnings]


def _insert(
    request: IngestRequest, alerts: Sequence[NormalizedAlert], where: str, where_params: list[Any]
) -> bool:
    """INSERT the request for the integration matching `where`; False if none matched.

    In plain SQL, one statement that also checks the token (`accept` uses it too, so that
    accepted requests are stored one way) and tells whether the request is urgent: a firing
    alert of severity 1-2, or one whose fingerprint has no firing alert yet (it opens something
    new). `bench/profile_ingest.py --scenarios single`, 2026-12-06, three runs of each back to
    back, before the urgency lookup was added: this accept step 0.76–0.83 ms CPU a request, the
    ORM's lookup then create 2.25–2.62 ms (two round trips); the whole request 1.9–2.1 against
    3.6–4.2 ms.
    """
    values = [
        field.get_db_prep_save(getattr(request, field.attname), connection)
        for field in _STORED_FIELDS
    ]
    urgent = ordering.urgent_by_severity(alerts)
    lookups = (
        [] if urgent else [stored_fingerprint(f) for f in ordering.firing_fingerprints(alerts)]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _insert_sql(where, len(lookups)),
            [*values, urgent, *lookups, len(lookups), *where_params],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    request.pk, request.integration_id, urgent_stored = row
    request.urgent = bool(urgent_stored)
    return True


# Every column but the key, the integration, which the INSERT takes from its SELECT, and
# urgency, which it works out.
_STORED_FIELDS = [
    f
    for f in IngestRequest._meta.concrete_fields
    if not f.primary_key and f.name not in {"integration", "urgent"}
]


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


@functools.cache
def _insert_sql(where: str, lookups: int) -> str:
    quoted = []
    for field in _STORED_FIELDS:
        assert field.column is not None  # a concrete field has its column
        quoted.append(_qn(field.column))
    columns = ", ".join(quoted)
    placeholders = ", ".join(["%s"] * len(_STORED_FIELDS))
    integrations = _qn(Integration._meta.db_table)
    # Urgent if said so, or if fewer of its firing fingerprints than it has are firing already
    # (unique per integration and fingerprint while firing: one index probe each).
    urgent = f"(%s OR {_firing_sql(integrations, lookups)} < %s)" if lookups else "(%s OR 0 < %s)"
    return (
        f"INSERT INTO {_qn(IngestRequest._meta.db_table)} "  # noqa: S608
        f"({_qn('integration_id')}, {columns}, {_qn('urgent')}) "
        f"SELECT {_qn('id')}, {placeholders}, {urgent} FROM {integrations} "
        f"WHERE {where} RETURNING {_qn('id')}, {_qn('integration_id')}, {_qn('urgent')}"
    )


def _firing_sql(integrations: str, lookups: int) -> str:
    """How many of `lookups` fingerprints have a firing alert of the integration.

    On PostgreSQL, one probe a fingerprint, on both columns of the unique index of firing
    alerts (a LATERAL lookup by equality). Asked as `fingerprint IN (…)`, the planner may use the
    index on the integration alone and filter the fingerprints, which its statistics cost as
    nothing while the table is young: during a new install's first storm (the table analyzed at
    84 rows, 300,000 since) each request of 100 alerts read every firing alert of its
    integration, and the accept stalled for 15 s (`bench/ingest.py --scenarios batch`, at half
    the accept after the storm, 2026-12-07). SQLite probes the index for an IN list.
    """
    alerts = _qn(Alert._meta.db_table)
    same = (
        f"{_qn('integration_id')} = {integrations}.{_qn('id')} "
        f"AND {_qn('status')} = '{AlertStatus.FIRING}'"
    )
    listed = ", ".join(["%s"] * lookups)
    if connection.vendor != "postgresql":
        return (
            f"(SELECT COUNT(*) FROM {alerts} WHERE {same} "  # noqa: S608
            f"AND {_qn('fingerprint')} IN ({listed}))"
        )
    return (
        f"(SELECT COUNT(*) FROM unnest(ARRAY[{listed}]::text[]) AS f(fp) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT 1 FROM {alerts} WHERE {same} "
        f"AND {_qn('fingerprint')} = f.fp LIMIT 1) AS hit)"
    )


def accept_request(
    integration: Integration,
    req: Request,
    alerts: list,
    *,
    params: dict[str, Any] | None = None,
    status_code: int = 200,
) -> IngestRequest:
    """Store a parsed request durably, then kick its processing; the answer may leave after."""
    stored = accept(
        integration,
        body=req.body,
        content_type=req.content_type,
        alert_count=len(alerts),
        warnings=_warnings_of(alerts),
        params=params,
        status_code=status_code,
        alerts=alerts,
    )
    kick_for(stored)
    return stored


# When this process last saw each lane's kick key set (monotonic), by lane.
_kick_seen_at: dict[int, float] = {}


def kick_for(request: IngestRequest) -> None:
    """Kick the processor of a request just stored (see kick)."""
    lane = lanes.lane_of(request.order_key, request.integration_id, lanes.count())
    kick(urgent=request.urgent, lane=lane)


def kick_key(lane: int) -> str:
    return f"{KICK_KEY}:{lane}"


def urgent_key(lane: int) -> str:
    return f"{URGENT_KEY}:{lane}"


def kick(*, urgent: bool = False, lane: int = 0) -> None:
    """Make sure a processor works on `lane` soon: enqueue one unless one is already on its
    way; for an `urgent` request, also tell it to take it next (urgent_key).

    Called after the request's commit. The lane's key, once set, stays set until its processor
    has drained the lane; so if this process saw it set within the memo's time, either it is
    still set (the processor will see this request) or the processor cleared it since and,
    twice the memo's time later, which is after now, looks for pending requests once more and
    sees this one, committed before now.
    """
    if urgent:
        try:
            cache.set(urgent_key(lane), 1, timeout=KICK_TIMEOUT)
        except Exception:  # a hint: the request waits for the batch in progress, no longer
            log.warning("could not flag an urgent ingest request", exc_info=True)
    looked_at = time.monotonic()  # before the look: the memo may only end early, never late
    if looked_at - _kick_seen_at.get(lane, float("-inf")) < settings.INGEST_KICK_MEMO_SECONDS:
        return
    try:
        if cache.add(kick_key(lane), 1, timeout=KICK_TIMEOUT):
            _enqueue_processor(lane)
        _kick_seen_at[lane] = looked_at
    except Exception:  # the request is stored; the tick's re-kick will process it
        log.warning("could not kick the ingest processor", exc_info=True)


def kick_if_stuck(now: datetime | None = None) -> bool:
    """From the tick: enqueue a processor for every lane that is free if a request has waited
    longer than STUCK_AFTER (a lost kick, a processor killed mid-batch)."""
    cutoff = (now or timezone.now()) - STUCK_AFTER
    stuck = _ANY_WAITING.exists(cutoff)
    if stuck:
        _enqueue_processor(None)
    return stuck


def look_again_later(lane: int) -> None:
    """Have a processor look at `lane` again in BLOCKED_RETRY_SECONDS: its oldest request waits
    for older ones of its integration in other lanes, and nothing kicks the lane when those
    are done; or another processor held the lane, maybe on its last look already. The lane's
    kick key is renewed meanwhile, so its new requests start no other processor: one chain of
    looks per lane, however long the wait."""
    try:
        cache.set(kick_key(lane), 1, timeout=KICK_TIMEOUT)
        _enqueue_processor(lane, countdown=BLOCKED_RETRY_SECONDS)
    except Exception:  # the key expires and the tick re-kicks: later, not lost
        log.warning("could not ask for another look at lane %s", lane, exc_info=True)


def _enqueue_processor(lane: int | None, countdown: float | None = None) -> None:
    # By the task's name: alerts.tasks imports the processor, which imports this module.
    current_app.send_task("alerts.process_ingest_requests", args=(lane,), countdown=countdown)


def pending_requests() -> QuerySet[IngestRequest]:
    """Return the accepted requests not processed yet."""
    return IngestRequest.objects.filter(outcome=Outcome.ACCEPTED, processed_at__isnull=True)


# The tick's lookup, compiled once (core.compiled): twice a second, and it mostly finds nothing.
_ANY_WAITING = Lookup(
    lambda cutoff: pending_requests().filter(received_at__lt=cutoff).values_list("pk")[:1]
)

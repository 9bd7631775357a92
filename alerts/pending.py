"""Accepted requests wait here, durably, until a processor runs their alerts through the pipeline.

The ingest views store a request and answer at once: a 2xx means "durably stored", not
"processed" (DESIGN.md allows processing just after the response). Processing then happens in
batches of many requests, each batch one transaction sharing what it reads (routing rules,
silences, open incidents), which is what lets one box take thousands of alerts a second.

One processor at a time (a PostgreSQL advisory lock; a process lock on SQLite), in arrival
order, so a resolve never overtakes the trigger its sender sent first. A view kicks a processor
through Celery; the kick is debounced with a cache key, and the processor drains everything
pending before it lets go of the key. The beat tick re-kicks when a request has waited too long
(a lost kick, a worker killed mid-batch: the batch rolled back and is simply done again).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from alerts import metrics, pipeline
from alerts.decoding import Request, parse
from alerts.models import IngestRequest, Integration, Outcome
from incidents.timeline import batched_timeline
from muster import faults

log = logging.getLogger(__name__)

KICK_KEY = "muster:ingest-kick"
KICK_TIMEOUT = 30  # seconds; a kick whose task was lost expires, and the tick re-kicks sooner
# A process that saw the kick key set less than settings.INGEST_KICK_MEMO_SECONDS ago does not
# look again (in a burst, the look was a sixth of a request's CPU). Safe because a processor,
# having cleared the key, waits twice that before its last look for requests: process_pending.
BATCH_REQUESTS = 200
BATCH_ALERTS = 1000
MAX_ATTEMPTS = 3
STUCK_AFTER = timedelta(seconds=2)
_ADVISORY_LOCK = 0x6D757374  # "must": the one processor's lock
_local_lock = threading.Lock()  # SQLite (the embedded default) has one process


def accept(
    integration: Integration,
    *,
    body: bytes,
    content_type: str,
    alert_count: int,
    warnings: list[str],
    params: dict[str, Any] | None = None,
    status_code: int = 200,
) -> IngestRequest:
    """Store an accepted request, to be processed just after the response."""
    request = _accepted(body, content_type, alert_count, warnings, params, status_code)
    request.integration = integration
    if not _insert(request, f"{_qn('id')} = %s", [integration.pk]):
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
    request = _accepted(req.body, req.content_type, len(alerts), _warnings_of(alerts), None, 200)
    where = (
        f"{_qn('token')} = %s AND {_qn('kind')} = %s AND {_qn('enabled')} "
        f"AND {_qn('hmac_secret')} = ''"
    )
    return request if _insert(request, where, [token, kind]) else None


def _accepted(
    body: bytes,
    content_type: str,
    alert_count: int,
    warnings: list[str],
    params: dict[str, Any] | None,
    status_code: int,
) -> IngestRequest:
    return IngestRequest(
        received_at=timezone.now(),
        outcome=Outcome.ACCEPTED,
        status_code=status_code,
        content_type=content_type[:200],
        body=body,
        alert_count=alert_count,
        warnings=warnings[:100],
        params=params or {},
    )


def _warnings_of(alerts: list) -> list[str]:
    return [w for a in alerts for w in a.warnings]


def _insert(request: IngestRequest, where: str, where_params: list[Any]) -> bool:
    """INSERT the request for the integration matching `where`; False if none matched.

    In plain SQL: the ORM's create costs more CPU than the rest of the request.
    """
    values = [
        field.get_db_prep_save(getattr(request, field.attname), connection)
        for field in _STORED_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(where), [*values, *where_params])
        row = cursor.fetchone()
    if row is None:
        return False
    request.pk, request.integration_id = row
    return True


# Every column but the key and the integration, which the INSERT takes from its SELECT.
_STORED_FIELDS = [
    f for f in IngestRequest._meta.concrete_fields if not f.primary_key and f.name != "integration"
]


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


@functools.cache
def _insert_sql(where: str) -> str:
    columns = ", ".join(_qn(f.column) for f in _STORED_FIELDS)
    placeholders = ", ".join(["%s"] * len(_STORED_FIELDS))
    return (
        f"INSERT INTO {_qn(IngestRequest._meta.db_table)} ({_qn('integration_id')}, {columns}) "  # noqa: S608
        f"SELECT {_qn('id')}, {placeholders} FROM {_qn(Integration._meta.db_table)} "
        f"WHERE {where} RETURNING {_qn('id')}, {_qn('integration_id')}"
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
    )
    kick()
    return stored


_kick_seen_at = float("-inf")  # when this process last saw the kick key set (monotonic)


def kick() -> None:
    """Make sure a processor runs soon: enqueue one unless one is already on its way.

    Called after the request's commit. The key, once set, stays set until a processor has
    drained every pending request; so if this process saw it set within the memo's time,
    either it is still set (a processor will see this request) or a processor cleared it since
    and, twice the memo's time later, which is after now, looks for pending requests once more
    and sees this one, committed before now.
    """
    global _kick_seen_at
    from django.core.cache import cache

    from alerts.tasks import process_ingest_requests

    looked_at = time.monotonic()  # before the look: the memo may only end early, never late
    if looked_at - _kick_seen_at < settings.INGEST_KICK_MEMO_SECONDS:
        return
    try:
        if cache.add(KICK_KEY, 1, timeout=KICK_TIMEOUT):
            process_ingest_requests.delay()
        _kick_seen_at = looked_at
    except Exception:  # the request is stored; the tick's re-kick will process it
        log.warning("could not kick the ingest processor", exc_info=True)


def kick_if_stuck(now: datetime | None = None) -> bool:
    """From the tick: enqueue a processor if a request has waited longer than STUCK_AFTER."""
    from alerts.tasks import process_ingest_requests

    cutoff = (now or timezone.now()) - STUCK_AFTER
    stuck = pending_requests().filter(received_at__lt=cutoff).exists()
    if stuck:
        process_ingest_requests.delay()
    return stuck


def pending_requests():
    return IngestRequest.objects.filter(outcome=Outcome.ACCEPTED, processed_at__isnull=True)


def process_pending() -> int:
    """Process accepted requests in arrival order until none is left; return how many.

    Returns early, having done nothing, when another processor holds the lock: that one
    drains whatever is pending, including what arrived while it worked.
    """
    from django.core.cache import cache

    total = 0
    while True:
        done = _process_batch()
        if done is None:
            return total
        if done:
            total += done
            continue
        # Let the next request kick again, then look once more: a request stored before this
        # delete found the key set (or remembered it so, for up to the memo's time) and did
        # not kick, so it must be seen here.
        try:
            cache.delete(KICK_KEY)
        except Exception:  # the key expires by itself; the tick re-kicks meanwhile
            log.warning("could not clear the ingest kick", exc_info=True)
        if settings.INGEST_KICK_MEMO_SECONDS:
            _sleep(2 * settings.INGEST_KICK_MEMO_SECONDS)
        if not pending_requests().exists():
            return total


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@contextmanager
def _processor_lock() -> Iterator[bool]:
    """Hold the one processor's lock for a transaction; yield whether it was free."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_ADVISORY_LOCK])
                (free,) = cursor.fetchone()
            yield free
        return
    free = _local_lock.acquire(blocking=False)
    try:
        with transaction.atomic():
            yield free
    finally:
        if free:
            _local_lock.release()


def _claim() -> list[IngestRequest]:
    """Return the oldest pending requests, up to BATCH_REQUESTS and about BATCH_ALERTS alerts."""
    heads = list(
        pending_requests().order_by("id").values_list("id", "alert_count")[:BATCH_REQUESTS]
    )
    ids, alerts = [], 0
    for pk, count in heads:
        if ids and alerts + count > BATCH_ALERTS:
            break
        ids.append(pk)
        alerts += count
    if not ids:
        return []
    return list(
        IngestRequest.objects.filter(pk__in=ids)
        .select_related("integration__service")
        .order_by("id")
    )


def _process_batch() -> int | None:
    """Process one batch in one transaction; None if another processor holds the lock."""
    counted: list[tuple[Integration, list[pipeline.AlertResult]]] = []
    with _processor_lock() as free:
        if not free:
            return None
        requests = _claim()
        if not requests:
            return 0
        try:
            with transaction.atomic():
                counted = _process(requests, isolate=False)
                faults.point("ingest_before_commit")
        except (OperationalError, InterfaceError):
            raise  # the database is in trouble: everything stays pending for the next try
        except Exception:
            # Something in the batch cannot be processed: do each request on its own, so one
            # bad request holds up no other.
            log.exception(
                "ingest batch failed; processing its %d requests one by one", len(requests)
            )
            counted = _process(requests, isolate=True)
    for integration, results in counted:
        metrics.count_ingested(integration, results)
    return len(requests)


def _process(
    requests: list[IngestRequest], *, isolate: bool
) -> list[tuple[Integration, list[pipeline.AlertResult]]]:
    contexts: dict[int, pipeline.Context] = {}
    counted = []
    done = []
    done_at = timezone.now()
    # A whole batch writes its alerts' links (one UPDATE per incident) and their timeline
    # entries (one INSERT) together; a request on its own (isolate) does so in its savepoint.
    with _nothing() if isolate else batched_timeline():
        for request in requests:
            integration = request.integration
            try:
                with _request_scope(isolate):
                    alerts = parse(
                        integration.kind,
                        Request(bytes(request.body), request.content_type),
                        request.params,
                    )
                    context = contexts.get(integration.pk)
                    if context is None:
                        context = contexts[integration.pk] = pipeline.Context(
                            integration, since=requests[0].received_at
                        )
                    results = pipeline.process_alerts(
                        context, alerts, at=request.received_at, link=isolate
                    )
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                if not isolate:
                    raise
                contexts.pop(integration.pk, None)  # its caches may hold what was rolled back
                results = _fail(request, exc)
                if results is None:
                    continue
            else:
                request.error = ""
            request.processed_at = done_at
            request.results = [r.as_dict() for r in results]
            done.append(request)
            counted.append((integration, results))
        for context in contexts.values():
            context.link_alerts()
    _mark_processed(done, done_at)
    return counted


@contextmanager
def _request_scope(isolate: bool) -> Iterator[None]:
    """Nothing in a batch; alone, a savepoint with its own timeline batch."""
    if not isolate:
        yield
        return
    with transaction.atomic(), batched_timeline():
        yield


def _mark_processed(requests: list[IngestRequest], at: datetime) -> None:
    """Store each request's results, one prepared statement for all (bulk_update's CASE
    expressions cost more than the processing of a request of one alert)."""
    if not requests:
        return
    qn = connection.ops.quote_name
    results = IngestRequest._meta.get_field("results")
    processed_at = IngestRequest._meta.get_field("processed_at")
    sql = (
        f"UPDATE {qn(IngestRequest._meta.db_table)} SET {qn('processed_at')} = %s, "  # noqa: S608
        f"{qn('results')} = %s, {qn('error')} = %s WHERE {qn('id')} = %s"
    )
    at_value = processed_at.get_db_prep_save(at, connection)
    with connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                (at_value, results.get_db_prep_save(r.results, connection), r.error, r.pk)
                for r in requests
            ],
        )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _fail(request: IngestRequest, exc: Exception) -> list[pipeline.AlertResult] | None:
    """Count a failed attempt; after MAX_ATTEMPTS, process its alerts one by one, so that one
    bad alert fails on its own, and return what became of each (None while it is retried, or
    when even its body cannot be read: then it is given up, shown as failed).

    A failed request keeps its raw body and its error, listed by the integration's API.
    """
    log.exception("could not process ingest request %s", request.pk)
    request.attempts += 1
    request.error = f"{type(exc).__name__}: {exc}"[:4000]
    fields = ["attempts", "error"]
    if request.attempts >= MAX_ATTEMPTS:
        results = _each_alert_alone(request)
        if results is not None:
            request.save(update_fields=["attempts"])
            return results
        request.processed_at = timezone.now()
        fields.append("processed_at")
    request.save(update_fields=fields)
    return None


def _each_alert_alone(request: IngestRequest) -> list[pipeline.AlertResult] | None:
    """Process a request's alerts each in its own savepoint; a failing one is reported
    `failed` with its error and the others go on. None if the body cannot be parsed at all."""
    integration = request.integration
    try:
        alerts = parse(
            integration.kind, Request(bytes(request.body), request.content_type), request.params
        )
    except Exception:
        return None
    results: list[pipeline.AlertResult] = []
    failed: list[str] = []
    for alert in alerts:
        try:
            with transaction.atomic(), batched_timeline():
                context = pipeline.Context(integration, since=request.received_at)
                results += pipeline.process_alerts(context, [alert], at=request.received_at)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            log.exception("alert %s of ingest request %s failed", alert.fingerprint, request.pk)
            failed.append(f"{alert.fingerprint}: {type(exc).__name__}: {exc}")
            results.append(pipeline.AlertResult(alert.fingerprint, pipeline.FAILED))
    if failed:
        request.error = (f"{len(failed)} of {len(alerts)} alerts failed: " + "; ".join(failed))[
            :4000
        ]
    return results

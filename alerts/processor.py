"""The processors: accepted requests (alerts.pending) run through the pipeline in batches.

Processing happens in batches of many requests, each batch one transaction sharing what it reads
(routing rules, silences, open incidents), which is what lets one box take thousands of alerts
a second. Requests are in lanes (alerts.lanes): one processor at a time per lane, in arrival
order within it, and the lanes side by side, so a resolve never overtakes the trigger its
sender sent first while several processors work at once.

Urgent requests go first (alerts.ordering: a new alert, or one of severity 1-2): each batch
looks for them before anything else, and takes them alone, in a small batch of their own, when
no older pending request of their integration has their order key (or has none). Batches of the
rest are in arrival order and take turns with urgent ones, so a storm of new alerts starves no
resolve. A new SEV1 behind a storm of repeats waits for the batch in progress, not the storm.

A batch goes in slices of a few requests (SLICE_REQUESTS, SLICE_ALERTS): each slice's firing
alerts are upserted together, one statement per integration, new ones straight into their
groups' open incidents (alerts.upsert.upsert_ahead), then its requests are processed one by one;
between slices, the batch looks for an urgent request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from alerts import lanes, metrics, pipeline, upsert
from alerts.context import Context
from alerts.decoding import Request, parse
from alerts.models import IngestRequest, Integration
from alerts.pending import kick_key, look_again_later, urgent_key
from core import faults, json_rows
from core.compiled import Ids, Lookup
from incidents.timeline import batched_timeline

log = logging.getLogger(__name__)

BATCH_REQUESTS = 200
BATCH_ALERTS = 1000
URGENT_BATCH_REQUESTS = 50  # small: what follows an urgent request (its page) waits for commit
URGENT_LOOK_SECONDS = 0.05  # how often a batch of the oldest looks for an urgent request
# Requests upserted ahead together: `bench/profile_ingest.py --process`, single alerts, one
# statement for 20 where each was one; small, so an urgent request still waits for little.
SLICE_REQUESTS = 20
SLICE_ALERTS = 100
MAX_ATTEMPTS = 3


def process_pending(lane: int | None = None) -> int:
    """Process accepted requests until none is left in `lane` (or, without one, in any lane
    free of another processor); return how many.

    A processor kicked for its lane (alerts.pending.kick) that finds another holding it asks
    for another look shortly (`look_again_later`): that holder may be on its last look, begun
    before the requests that kicked this processor were committed. It does not wait for the
    lock: waiting, kicked processors held three of a worker's four threads under a steady load
    of repeats, and the pages of new incidents waited seconds for a thread (`python
    bench/paging.py`, alert to first page under load p50 8.8 s). One started by the tick, or
    without a lane, takes free lanes only, and leaves a busy one to its processor.
    """
    count = lanes.count()
    if lane is not None:
        return _process_lane(lane % count, count, kicked=True)
    total = 0
    while True:
        # Again while it gets anywhere: a request without a key may have waited for one in a
        # lane processed after its own.
        done = sum(_process_lane(busy, count, kicked=False) for busy in sorted(lanes.busy(count)))
        if not done:
            return total
        total += done


def _process_lane(lane: int, count: int, *, kicked: bool) -> int:
    total = 0
    urgent_first = True
    last_look = False
    while True:
        began = time.monotonic()
        batch = _process_batch(lane, count, urgent_first=urgent_first)
        if batch.taken is None:
            # Another processor holds the lane: it drains it, but may be on its last look,
            # begun before a request that found this processor's kick set was committed (so
            # kicked no other). Kicked, look again after it, whatever this one did before.
            if kicked:
                look_again_later(lane)
            return total
        # After an urgent batch the next takes the oldest requests, whatever comes in.
        urgent_first = not batch.urgent
        if batch.taken:
            total += batch.taken
            last_look = False
            if batch.drained and batch.taken < SLICE_REQUESTS:
                _gather(began)
            continue
        if batch.blocked:
            # The lane's oldest request waits for another lane's processor, which will not
            # kick this lane when it is done: without this, the tick's re-kick would (seconds).
            # Only a processor started for this lane asks (one chain of looks per lane, which
            # keeps the lane's kick); the tick's leaves the lane to it.
            if kicked:
                look_again_later(lane)
            return total
        if last_look:
            return total
        # Let the next request kick again, then look once more: a request stored before this
        # delete found the key set (or remembered it so, for up to the memo's time) and did
        # not kick, so it must be seen here.
        try:
            cache.delete(kick_key(lane))
        except Exception:  # the key expires by itself; the tick re-kicks meanwhile
            log.warning("could not clear the ingest kick", exc_info=True)
        if settings.INGEST_KICK_MEMO_SECONDS:
            _sleep(2 * settings.INGEST_KICK_MEMO_SECONDS)
        last_look = True


def _gather(began: float) -> None:
    """After a small batch that took all the lane had, let requests gather until
    INGEST_GATHER_SECONDS after it began.

    A batch costs much the same whatever it takes (claiming, reading, the upsert, marking, the
    commit). At a steady 345 requests/s a processor that claimed again at once took 4.7
    requests a batch (`bench/ingest.py --pg-statements`: 741 claims for 3,446 requests); with
    the gather, 17 (168 claims for 2,853), and the worker's CPU a request fell by a fifth.
    Nothing waits behind a batch that left requests (an urgent batch, one cut short for an
    urgent request, a full one): the next is taken at once.
    """
    wait = settings.INGEST_GATHER_SECONDS - (time.monotonic() - began)
    if wait > 0:
        _sleep(wait)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class Claim(NamedTuple):
    """A lane's next batch: its requests, whether they are urgent ones, whether the lane's
    oldest requests stop at one that waits for another lane, and whether they are all the lane
    had (nothing left behind)."""

    requests: list[IngestRequest]
    urgent: bool = False
    blocked: bool = False
    drained: bool = False


def _claim(lane: int, count: int, *, urgent_first: bool) -> Claim:
    """Return the lane's next batch: the urgent requests that may go ahead (with
    `urgent_first`), else the oldest pending ones, up to BATCH_REQUESTS and about BATCH_ALERTS
    alerts."""
    look_urgent = urgent_first and settings.INGEST_URGENT_FIRST
    if look_urgent:
        _forget_urgent_hint(lane)  # before looking: a request stored after it sets it again
    found = lanes.candidates(
        lane, count, urgent=URGENT_BATCH_REQUESTS if look_urgent else 0, oldest=BATCH_REQUESTS
    )
    if found.ahead:
        return Claim(_requests(_heads(found.ahead)), urgent=True)
    ids = _heads(found.oldest)
    drained = not found.blocked and len(ids) == len(found.oldest) < BATCH_REQUESTS
    return Claim(_requests(ids), blocked=found.blocked, drained=drained)


def _heads(candidates: list[tuple[int, int]]) -> list[int]:
    """The ids of `candidates` (id, alert count), from the first, up to about BATCH_ALERTS
    alerts."""
    ids: list[int] = []
    alerts = 0
    for pk, count in candidates:
        if ids and alerts + count > BATCH_ALERTS:
            break
        ids.append(pk)
        alerts += count
    return ids


def _requests(ids: list[int]) -> list[IngestRequest]:
    """The requests, in order, each with its integration and service, read once a batch (not
    joined onto every request: a batch's requests come from a few integrations)."""
    if not ids:
        return []
    requests = _REQUESTS.instances(json.dumps(ids))
    integrations = {
        integration.pk: integration
        for integration in _INTEGRATIONS.instances(
            json.dumps(sorted({request.integration_id for request in requests}))
        )
    }
    # An integration deleted since the requests were read took its requests with it (CASCADE).
    requests = [r for r in requests if r.integration_id in integrations]
    for request in requests:
        request.integration = integrations[request.integration_id]
    return requests


# Compiled once (core.compiled): through the ORM, compiling these two reads was a sixth of the
# worker's CPU in a storm of single alerts, which runs many small batches (`py-spy --gil`,
# 2026-12-08). What processing does not read stays behind: its JSON is not decoded for nothing.
_REQUESTS = Lookup(
    lambda ids: (
        IngestRequest.objects.filter(Ids("pk", ids))
        .defer("warnings", "reason", "results")
        .order_by("id")
    ),
    takes=(str,),
)
_INTEGRATIONS = Lookup(
    lambda ids: Integration.objects.select_related("service").filter(Ids("pk", ids)),
    takes=(str,),
)


class Batch(NamedTuple):
    """What a batch did: how many requests it took (None: another processor holds the lane),
    whether they were urgent ones, and whether it took none because the lane's oldest request
    waits for another lane."""

    taken: int | None
    urgent: bool = False
    blocked: bool = False
    drained: bool = False  # it took everything the lane had, to its end


def _process_batch(lane: int = 0, count: int = 1, *, urgent_first: bool) -> Batch:
    """Process one batch of the lane (of `count`) in one transaction, unless another
    processor holds the lane."""
    counted: list[tuple[Integration, list[pipeline.AlertResult]]] = []
    with lanes.hold(lane, wait=False) as free:
        if not free:
            return Batch(None)
        claim = _claim(lane, count, urgent_first=urgent_first)
        requests, urgent = claim.requests, claim.urgent
        if not requests:
            return Batch(0, blocked=claim.blocked)
        until_urgent = not urgent and settings.INGEST_URGENT_FIRST
        try:
            with transaction.atomic():
                counted, taken = _process(
                    requests, isolate=False, until_urgent=until_urgent, lane=lane
                )
                faults.point("ingest_before_commit")
        except (OperationalError, InterfaceError):
            raise  # the database is in trouble: everything stays pending for the next try
        except Exception:
            # Something in the batch cannot be processed: do each request on its own, so one
            # bad request holds up no other.
            log.exception(
                "ingest batch failed; processing its %d requests one by one", len(requests)
            )
            counted, taken = _process(requests, isolate=True)
    for integration, results in counted:
        metrics.count_ingested(integration, results)
    return Batch(taken, urgent, drained=claim.drained and taken == len(requests))


def _process(
    requests: list[IngestRequest], *, isolate: bool, until_urgent: bool = False, lane: int = 0
) -> tuple[list[tuple[Integration, list[pipeline.AlertResult]]], int]:
    """Process `requests` in order; return what became of each and how many it took: with
    `until_urgent`, it ends early once an urgent request is waiting (the rest stay pending)."""
    contexts: dict[int, Context] = {}
    counted = []
    done = []
    done_at = timezone.now()
    taken = 0
    next_look = 0.0
    # A whole batch writes its alerts' links (one UPDATE per incident) and their timeline
    # entries (one INSERT) together; a request on its own (isolate) does so in its savepoint.
    with _nothing() if isolate else batched_timeline():
        for part in _slices(requests, isolate):
            if until_urgent and taken and time.monotonic() >= next_look:
                next_look = time.monotonic() + URGENT_LOOK_SECONDS
                if _urgent_hint(lane):
                    break
            taken += len(part)
            # In a batch, the slice's requests are parsed, and their firing alerts upserted,
            # together (alone, a request is parsed in its savepoint, where a failure is its own).
            parsed = [] if isolate else [_parse(r, contexts, requests[0]) for r in part]
            if parsed:
                upsert.upsert_ahead(parsed, may_be_new=[r.urgent for r in part])
            for i, request in enumerate(part):
                integration = request.integration
                try:
                    with _request_scope(isolate):
                        context, at, alerts = (
                            parsed[i] if parsed else _parse(request, contexts, requests[0])
                        )
                        results = pipeline.process_alerts(context, alerts, at=at, link=isolate)
                except (OperationalError, InterfaceError):
                    raise
                except Exception as exc:
                    if not isolate:
                        raise
                    dropped = contexts.pop(integration.pk, None)
                    if dropped is not None:  # its caches may hold what was rolled back
                        dropped.leave_batch()
                    failed = _fail(request, exc)
                    if failed is None:
                        continue
                    results = failed
                else:
                    request.error = ""
                request.processed_at = done_at
                request.results = [r.as_dict() for r in results]
                done.append(request)
                counted.append((integration, results))
            for context in contexts.values():
                context.upserted = {}  # each row upserted ahead was taken by its alert
        for context in contexts.values():
            context.link_alerts()
    _mark_processed(done)
    return counted, taken


def _slices(requests: list[IngestRequest], isolate: bool) -> Iterator[list[IngestRequest]]:
    """The batch's requests in order, in slices of up to SLICE_REQUESTS requests and about
    SLICE_ALERTS alerts (one request each, alone): the unit of upserting ahead, and of looking
    for an urgent request."""
    part: list[IngestRequest] = []
    alerts = 0
    for request in requests:
        if part and (
            isolate or len(part) >= SLICE_REQUESTS or alerts + request.alert_count > SLICE_ALERTS
        ):
            yield part
            part, alerts = [], 0
        part.append(request)
        alerts += request.alert_count
    if part:
        yield part


def _parse(
    request: IngestRequest, contexts: dict[int, Context], first: IngestRequest
) -> tuple[Context, datetime, list]:
    """The request's integration's context (made once per batch), when it was received, and its
    alerts, parsed again from the stored body."""
    integration = request.integration
    alerts = parse(
        integration.kind, Request(bytes(request.body), request.content_type), request.params
    )
    context = contexts.get(integration.pk)
    if context is None:
        context = contexts[integration.pk] = Context(
            integration,
            since=first.received_at,
            sharing_with=next(iter(contexts.values()), None),
        )
    return context, request.received_at, alerts


def _urgent_hint(lane: int) -> bool:
    try:
        return bool(cache.get(urgent_key(lane)))
    except Exception:  # a hint only: the batch goes on to its end
        return False


def _forget_urgent_hint(lane: int) -> None:
    try:
        cache.delete(urgent_key(lane))
    except Exception:
        log.warning("could not clear the urgent ingest hint", exc_info=True)


@contextmanager
def _request_scope(isolate: bool) -> Iterator[None]:
    """Nothing in a batch; alone, a savepoint with its own timeline batch."""
    if not isolate:
        yield
        return
    with transaction.atomic(), batched_timeline():
        yield


def _mark_processed(requests: list[IngestRequest]) -> None:
    """Store each request's results (and when it was processed) in one statement.

    `bench/profile_ingest.py --scenarios single --process`, 2026-12-06: the ORM's bulk_update
    (its CASE expressions) took processing from 1.4–1.5 to 2.1–2.8 ms CPU a request.
    """
    json_rows.update(requests, ["processed_at", "results", "error"])


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
                context = Context(integration, since=request.received_at)
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

"""The one path of an alert: route → silence → dedup/group → incident.

Senders' requests are stored first (alerts.pending, so a 2xx always means "durably stored") and
processed just after, in batches (alerts.processor), by `process_alerts`: every alert is routed,
checked against silences, upserted on (integration, fingerprint) and attached to the open
incident of its group. What a batch reads once is in alerts.context; the upsert's SQL in
alerts.upsert.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction

from alerts import metrics
from alerts.context import Context, follow_merges, group_key
from alerts.models import Alert, AlertStatus, IngestRequest, Integration
from alerts.sources.base import ACKNOWLEDGED, FIRING, RESOLVED, NormalizedAlert
from alerts.upsert import stored_fingerprint, upsert, upsert_firing
from incidents.models import EntryKind, Incident, Source, Status
from incidents.opening import find_or_open_incident
from incidents.services import (
    IllegalTransition,
    acknowledge_incident,
    resolve_incident,
    set_severity,
)
from incidents.timeline import record

log = logging.getLogger(__name__)

# What happened to each alert, as the sender's response reports it.
OPENED = "opened"  # opened a new incident
ATTACHED = "attached"  # joined the open incident of its group
DEDUPLICATED = "deduplicated"  # repeated an open alert
SILENCED = "silenced"
ALERT_RESOLVED = "resolved"
ALERT_ACKNOWLEDGED = "acknowledged"
IGNORED = "ignored"  # resolve/acknowledge for a key with no open alert: accepted, no change
FAILED = "failed"  # could not be processed, although the rest of its request was


@dataclass
class AlertResult:
    fingerprint: str
    action: str
    alert_id: int | None = None
    incident_number: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "action": self.action,
            "incident": self.incident_number,
        }


def ingest(
    integration: Integration,
    alerts: list[NormalizedAlert],
    *,
    body: bytes,
    content_type: str = "",
    status_code: int = 200,
) -> list[AlertResult]:
    """Store a request and process its alerts at once, in one transaction.

    For Muster's own alerts (heartbeats); senders' requests go through alerts.pending.
    """
    for attempt in range(3):
        try:
            with transaction.atomic():
                request = IngestRequest.accepted(
                    body=body,
                    content_type=content_type,
                    alert_count=len(alerts),
                    warnings=[w for a in alerts for w in a.warnings],
                    status_code=status_code,
                )
                now = request.received_at
                results = process_alerts(Context(integration, since=now), alerts, at=now)
                request.integration = integration
                request.processed_at = now
                request.results = [r.as_dict() for r in results]
                request.save(force_insert=True)
            break
        except OperationalError as exc:
            # Two transactions touching the same alerts can deadlock on PostgreSQL; the
            # database picks a victim and the retry goes through.
            if attempt == 2 or "deadlock" not in str(exc).lower():
                raise
            time.sleep(0.01 * (attempt + 1))
    metrics.count_ingested(integration, results)
    return results


def process_alerts(
    context: Context, alerts: list[NormalizedAlert], *, at: datetime, link: bool = True
) -> list[AlertResult]:
    """Process one request's alerts, received `at`; return what happened to each, in order.

    With `link=False` the new alerts' incidents are left for the caller's `link_alerts()`
    (a batch of requests then writes them in one UPDATE per incident, not one per request).
    """
    context.now = at
    context.openings = {}
    context.placements = {}
    upsert_firing(context, alerts)  # first: it places the alerts, which planning then reuses
    context.plan_openings(alerts)
    results: list[AlertResult | None] = [None] * len(alerts)
    # Lock alert rows in one order, so concurrent batches with the same alerts cannot deadlock.
    order = sorted(range(len(alerts)), key=lambda i: alerts[i].fingerprint)
    for i in order:
        results[i] = _process(context, alerts[i])
    if link:
        context.link_alerts()
    return [r for r in results if r is not None]


def _process(context: Context, alert: NormalizedAlert) -> AlertResult:
    if alert.status == RESOLVED:
        return _resolve(context, alert)
    if alert.status == ACKNOWLEDGED:
        return _acknowledge(context, alert)
    assert alert.status == FIRING, alert.status
    return _fire(context, alert)


# --- firing ----------------------------------------------------------------------------------


def _fire(context: Context, alert: NormalizedAlert) -> AlertResult:
    service_id, silence = context.place(alert)
    alert_id, occurrences, incident_id, stored_service_id, stored_silence_id = upsert(
        context, alert, service_id, silence.pk if silence else None
    )
    result = AlertResult(alert.fingerprint, DEDUPLICATED, alert_id)
    stored_in = context.prelinked.pop(alert_id, None)  # new, stored in its group's incident
    # A link waiting to be written is newer than the row: an alert stored ahead in an incident
    # that closed before its turn is linked to the new one, and its row says the old one.
    incident_id = context.linked.get(alert_id) or incident_id
    if occurrences > 1 and incident_id is not None:
        incident = context.incident(incident_id)
        if incident.is_open:
            result.incident_number = incident.number
            _note_repeat(context, incident, alert, occurrences)
            return result
        # The incident was resolved while this alert stayed open: the alert ends with it, and
        # firing again opens a new alert and a new incident.
        _close_alert(alert_id, context.now)
        return _fire(context, alert)
    if occurrences > 1 and silence is not None:
        if stored_silence_id != silence.pk:  # the silence it is under now
            Alert.objects.filter(pk=alert_id).update(silence=silence)
        result.action = SILENCED
        return result
    # A new alert, or one that was silenced and no longer is: it joins its group's incident.
    service = context.service(stored_service_id)
    if silence is not None:
        result.action = SILENCED
        return result
    group = group_key(context.integration, service, alert)
    title, severity = context.openings.get((service.pk, group), (alert.summary, alert.severity))
    cached = context.group_incidents.get((service.pk, group))
    if cached is not None:
        incident, opened = cached, False
    else:
        incident, opened = find_or_open_incident(
            service,
            group_key=group,
            title=title,
            severity=severity,
            source=Source.ALERT,
            actor_name=context.integration.name,
        )
        context.group_incidents[(service.pk, group)] = incident
    if stored_in != incident.pk:  # not stored in it ahead (or that one closed since)
        context.link(alert_id, incident)
    result.action = OPENED if opened else ATTACHED
    result.incident_number = incident.number
    record(
        incident,
        EntryKind.ALERT_ATTACHED,
        message=f"Alert from {context.integration.name}: {alert.summary}",
        source=Source.ALERT,
        actor_name=context.integration.name,
        data={"alert": alert_id, "fingerprint": alert.fingerprint, "severity": alert.severity},
        batch=True,  # a storm attaches many alerts a batch: one INSERT (alerts/processor.py)
    )
    if not opened and alert.severity < incident.severity:
        incident = set_severity(
            incident,
            severity=alert.severity,
            by=None,
            source=Source.ALERT,
            actor_name=context.integration.name,
        )
        context.group_incidents[(service.pk, group)] = incident
    return result


def _note_repeat(
    context: Context, incident: Incident, alert: NormalizedAlert, occurrences: int
) -> None:
    """Record repeats only at milestones (10th, 100th, …), so a flapping alert cannot flood."""
    base = settings.DEDUP_MILESTONE_BASE
    milestone = base
    while milestone < occurrences:
        milestone *= base
    if occurrences != milestone:
        return
    record(
        incident,
        EntryKind.ALERT_REPEATED,
        message=f"Alert repeated {occurrences} times: {alert.summary}",
        source=Source.ALERT,
        actor_name=context.integration.name,
        data={"fingerprint": alert.fingerprint, "occurrences": occurrences},
        batch=True,  # a re-sent group reaches its milestones together
    )


def _close_alert(alert_id: int, now: datetime) -> None:
    Alert.objects.filter(pk=alert_id).update(status=AlertStatus.RESOLVED, resolved_at=now)


# --- resolved and acknowledged ---------------------------------------------------------------


def _open_alert(context: Context, fingerprint: str) -> Alert | None:
    return (
        Alert.objects.select_for_update()
        .filter(
            integration=context.integration,
            fingerprint=stored_fingerprint(fingerprint),
            status=AlertStatus.FIRING,
        )
        .first()
    )


def _resolve(context: Context, alert: NormalizedAlert) -> AlertResult:
    context.link_batch()
    stored = _open_alert(context, alert.fingerprint)
    if stored is None:
        return AlertResult(alert.fingerprint, IGNORED)
    stored.status = AlertStatus.RESOLVED
    stored.resolved_at = context.now
    stored.ends_at = alert.ends_at or context.now
    stored.last_seen = context.now
    stored.save(update_fields=["status", "resolved_at", "ends_at", "last_seen"])
    result = AlertResult(alert.fingerprint, ALERT_RESOLVED, stored.pk)
    if stored.incident_id is None:
        return result
    incident = follow_merges(Incident.objects.select_related("service").get(pk=stored.incident_id))
    result.incident_number = incident.number
    if not incident.is_open:
        return result
    record(
        incident,
        EntryKind.ALERT_RESOLVED,
        message=f"Alert resolved at {context.integration.name}: {stored.summary}",
        source=Source.ALERT,
        actor_name=context.integration.name,
        data={"alert": stored.pk, "fingerprint": stored.fingerprint},
    )
    still_firing = (
        Alert.objects.filter(incident=incident, status=AlertStatus.FIRING)
        .exclude(pk__in=context.pending_prelinked(incident.pk))
        .exists()
    )
    if incident.service.auto_resolve and not still_firing:
        resolve_incident(
            incident,
            by=None,
            source=Source.ALERT,
            actor_name=context.integration.name,
            note="every alert has resolved",
        )
        context.forget(incident.pk)
    return result


def _acknowledge(context: Context, alert: NormalizedAlert) -> AlertResult:
    context.link_batch()
    stored = _open_alert(context, alert.fingerprint)
    if stored is None or stored.incident_id is None:
        return AlertResult(alert.fingerprint, IGNORED)
    incident = follow_merges(Incident.objects.get(pk=stored.incident_id))
    result = AlertResult(alert.fingerprint, IGNORED, stored.pk, incident.number)
    if incident.status == Status.TRIGGERED:
        try:
            acknowledge_incident(
                incident, by=None, source=Source.ALERT, actor_name=context.integration.name
            )
            result.action = ALERT_ACKNOWLEDGED
        except IllegalTransition:
            pass
    return result

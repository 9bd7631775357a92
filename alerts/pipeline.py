"""The one path of an alert: route → silence → dedup/group → incident.

Senders' requests are stored first (alerts.pending.accept, so a 2xx always means "durably
stored") and processed just after by `process_alerts`, in batches: every alert is routed,
checked against silences, upserted on (integration, fingerprint) and attached to the open
incident of its group.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from alerts import metrics
from alerts.matchers import MatcherError, all_match, matchers_from_json
from alerts.models import (
    Alert,
    AlertStatus,
    IngestRequest,
    Integration,
    Outcome,
    RoutingRule,
    Silence,
)
from alerts.sources.base import ACKNOWLEDGED, FIRING, RESOLVED, NormalizedAlert
from incidents.models import EntryKind, Incident, Service, Source, Status
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
                now = timezone.now()
                results = process_alerts(Context(integration, since=now), alerts, at=now)
                IngestRequest.objects.create(
                    integration=integration,
                    received_at=now,
                    outcome=Outcome.ACCEPTED,
                    status_code=status_code,
                    content_type=content_type[:200],
                    body=body,
                    alert_count=len(alerts),
                    warnings=[w for a in alerts for w in a.warnings][:100],
                    processed_at=now,
                    results=[r.as_dict() for r in results],
                )
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
    context.plan_openings(alerts)
    results: list[AlertResult | None] = [None] * len(alerts)
    # Lock alert rows in one order, so concurrent batches with the same alerts cannot deadlock.
    order = sorted(range(len(alerts)), key=lambda i: alerts[i].fingerprint)
    _upsert_firing(context, [alerts[i] for i in order])
    for i in order:
        results[i] = _process(context, alerts[i])
    if link:
        context.link_alerts()
    return [r for r in results if r is not None]


class Context:
    """What processing an integration's alerts needs to know, loaded once per batch.

    A batch (alerts.pending) shares one context per integration across its requests, all in one
    transaction, so rules, silences and open incidents are read once, not once per alert.
    """

    def __init__(self, integration: Integration, *, since: datetime):
        self.integration = integration
        self.now = since  # when the alert being processed was received
        rules = RoutingRule.objects.filter(Q(integration=integration) | Q(integration__isnull=True))
        self.rules = sorted(rules, key=lambda r: (r.integration_id is None, r.position, r.pk))
        # Every silence active at some moment from the batch's first request until now.
        self.silences = list(
            Silence.objects.filter(starts_at__lte=timezone.now(), ends_at__gt=since)
        )
        self.services: dict[int, Service] = {integration.service_id: integration.service}
        # (service id, group key) -> (title, severity) for an incident this request may open
        self.openings: dict[tuple[int, str], tuple[str, int]] = {}
        self.placements: dict[int, tuple[int, Silence | None]] = {}  # see place()
        # Incidents this batch already read or locked, so it asks the database once per
        # incident, not once per alert. Locked ones stay ours until the transaction commits.
        self.incidents: dict[int, Incident] = {}
        self.group_incidents: dict[tuple[int, str], Incident] = {}
        # Upserted ahead, many rows a statement: stored fingerprint -> the upsert's row.
        self.upserted: dict[str, tuple] = {}
        # New alerts to attach to their incident, one UPDATE per incident (link_alerts).
        self.links: dict[int, list[int]] = {}
        self.linked: dict[int, int] = {}  # alert id -> incident id, until written

    def link(self, alert_id: int, incident: Incident) -> None:
        self.links.setdefault(incident.pk, []).append(alert_id)
        self.linked[alert_id] = incident.pk

    def link_alerts(self) -> None:
        """Write the incident of every alert attached since the last call.

        Until then an alert's row has no incident: whatever reads it in between asks `linked`
        (a repeat) or calls this first (a resolve, an acknowledgement).
        """
        for incident_id, alert_ids in self.links.items():
            Alert.objects.filter(pk__in=alert_ids).update(incident_id=incident_id, silence=None)
        self.links = {}
        self.linked = {}

    def forget(self, incident_pk: int) -> None:
        """Drop a cached incident whose state this request just changed."""
        self.incidents.pop(incident_pk, None)
        for key, cached in list(self.group_incidents.items()):
            if cached.pk == incident_pk:
                del self.group_incidents[key]

    def incident(self, pk: int) -> Incident:
        if pk not in self.incidents:
            self.incidents[pk] = _follow_merges(Incident.objects.get(pk=pk))
        return self.incidents[pk]

    def plan_openings(self, alerts: list[NormalizedAlert]) -> None:
        """Note, per group, what an incident opened by this request should start as.

        Alerts are processed in fingerprint order (a fixed lock order), so whichever alert of a
        group comes first in that order opens its incident; the incident still takes the title
        of the group's first alert as the sender listed them, and the group's worst severity,
        rather than opening with one and recording a severity change a moment later.
        """
        for alert in alerts:
            if alert.status != FIRING:
                continue
            service_id, silence = self.place(alert)
            if silence is not None:
                continue
            key = (service_id, _group_key(self.integration, self.service(service_id), alert))
            title, severity = self.openings.get(key, (alert.summary, alert.severity))
            self.openings[key] = (title, min(severity, alert.severity))

    def place(self, alert: NormalizedAlert) -> tuple[int, Silence | None]:
        """Return the alert's service id (routing) and the silence it falls under, worked out
        once per alert of the request (planning, the upsert ahead and firing all ask)."""
        # By identity: alerts are unhashable, and the request's list keeps each alive until
        # process_alerts starts the next request with an empty dict.
        key = id(alert)
        if key not in self.placements:
            service_id = self.route(alert.labels)
            self.placements[key] = (service_id, self.silence_for(alert.labels, service_id))
        return self.placements[key]

    def service(self, pk: int) -> Service:
        if pk not in self.services:
            self.services[pk] = Service.objects.get(pk=pk)
        return self.services[pk]

    def route(self, labels: dict[str, str]) -> int:
        """Return the service id for `labels`: the first matching rule's, else the default."""
        for rule in self.rules:
            try:
                if all_match(matchers_from_json(rule.matchers), labels):
                    return rule.service_id
            except MatcherError:
                log.warning("routing rule %s has invalid matchers; skipped", rule.pk)
        return self.integration.service_id

    def silence_for(self, labels: dict[str, str], service_id: int) -> Silence | None:
        for silence in self.silences:
            if not silence.starts_at <= self.now < silence.ends_at:
                continue
            if silence.service_id is not None and silence.service_id != service_id:
                continue
            try:
                if all_match(matchers_from_json(silence.matchers), labels):
                    return silence
            except MatcherError:
                continue
        return None


def _process(context: Context, alert: NormalizedAlert) -> AlertResult:
    if alert.status == RESOLVED:
        return _resolve(context, alert)
    if alert.status == ACKNOWLEDGED:
        return _acknowledge(context, alert)
    assert alert.status == FIRING, alert.status
    return _fire(context, alert)


# --- firing ----------------------------------------------------------------------------------

_UPSERT_COLUMNS = (
    "integration_id",
    "fingerprint",
    "status",
    "service_id",
    "silence_id",
    "summary",
    "severity",
    "labels",
    "annotations",
    "links",
    "warnings",
    "starts_at",
    "ends_at",
    "first_seen",
    "last_seen",
    "occurrences",
    "raw",
)
# On a repeat, keep identity (labels, service, first_seen) and refresh what senders update.
_REFRESHED_ON_REPEAT = (
    "summary",
    "annotations",
    "links",
    "warnings",
    "ends_at",
    "last_seen",
    "raw",
)


def _upsert_sql(rows: int) -> str:
    qn = connection.ops.quote_name
    table = qn(Alert._meta.db_table)
    columns = ", ".join(qn(c) for c in _UPSERT_COLUMNS)
    row = "(" + ", ".join(["%s"] * len(_UPSERT_COLUMNS)) + ")"
    refresh = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in _REFRESHED_ON_REPEAT)
    return (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({qn('integration_id')}, {qn('fingerprint')}) "
        f"WHERE {qn('status')} = 'firing' "
        f"DO UPDATE SET {qn('occurrences')} = {table}.{qn('occurrences')} + 1, {refresh} "
        f"RETURNING {qn('id')}, {qn('occurrences')}, {qn('incident_id')}, {qn('service_id')}, "
        f"{qn('silence_id')}, {qn('fingerprint')}"
    )


# Columns whose values need the field's conversion for the database (JSON, bytes, datetimes).
_CONVERTED = tuple(
    (i, field)
    for i, c in enumerate(_UPSERT_COLUMNS)
    if not c.endswith("_id")
    and (field := Alert._meta.get_field(c)).get_internal_type()
    in ("JSONField", "DateTimeField", "BinaryField")
)
UPSERT_CHUNK = 100  # rows per statement: well under every database's parameter limit


def stored_fingerprint(fingerprint: str) -> str:
    """Return the fingerprint as stored: as sent if it fits the column, else shortened.

    A longer one (an Opsgenie alias may have 512 characters) keeps its start, for people to
    read, and ends in a hash of the whole, so two keys with one long prefix stay apart and a
    resolve finds the alert its trigger stored.
    """
    limit = Alert._meta.get_field("fingerprint").max_length
    if len(fingerprint) <= limit:
        return fingerprint
    digest = hashlib.sha256(fingerprint.encode("utf-8", "replace")).hexdigest()
    return f"{fingerprint[: limit - len(digest) - 1]}~{digest}"


def _raw_bytes(alert: NormalizedAlert) -> bytes:
    try:
        return json.dumps(alert.raw, ensure_ascii=False, default=str).encode("utf-8", "replace")
    except (ValueError, RecursionError):
        return repr(alert.raw).encode("utf-8", "replace")[:65536]


def _upsert_values(
    context: Context, alert: NormalizedAlert, service_id: int, silence_id: int | None
) -> list[Any]:
    values = [
        context.integration.pk,
        stored_fingerprint(alert.fingerprint),
        AlertStatus.FIRING,
        service_id,
        silence_id,
        alert.summary[:1024],
        alert.severity,
        alert.labels,
        alert.annotations,
        [{"kind": k.kind, "url": k.url, "text": k.text} for k in alert.links],
        alert.warnings,
        alert.starts_at,
        alert.ends_at,
        context.now,
        context.now,
        1,
        _raw_bytes(alert),
    ]
    for i, field in _CONVERTED:
        values[i] = field.get_db_prep_save(values[i], connection)
    return values


def _upsert_rows(rows: list[list[Any]]) -> list[tuple]:
    """Upsert alert rows (distinct fingerprints); return (id, occurrences, incident, service,
    silence, stored fingerprint) for each, in no particular order."""
    returned: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), UPSERT_CHUNK):
            chunk = rows[start : start + UPSERT_CHUNK]
            cursor.execute(_upsert_sql(len(chunk)), [v for row in chunk for v in row])
            returned.extend(cursor.fetchall())
    return returned


def _upsert(context: Context, alert: NormalizedAlert, service_id: int, silence_id: int | None):
    ahead = context.upserted.pop(stored_fingerprint(alert.fingerprint), None)
    if ahead is not None:
        return ahead[:5]
    [row] = _upsert_rows([_upsert_values(context, alert, service_id, silence_id)])
    return row[:5]


def _upsert_firing(context: Context, alerts: list[NormalizedAlert]) -> None:
    """Upsert a request's firing alerts ahead, many to a statement, when order cannot matter.

    Only fingerprints that appear once in the request: a fingerprint that also resolves, or
    fires twice, is upserted in its turn, so the request's own order still holds.
    """
    context.upserted = {}
    seen: dict[str, int] = {}
    for alert in alerts:
        seen[alert.fingerprint] = seen.get(alert.fingerprint, 0) + 1
    ahead = [a for a in alerts if a.status == FIRING and seen[a.fingerprint] == 1]
    if len(ahead) < 2:
        return  # one row gains nothing from going ahead
    rows = []
    for alert in ahead:
        service_id, silence = context.place(alert)
        rows.append(_upsert_values(context, alert, service_id, silence.pk if silence else None))
    context.upserted = {row[5]: row for row in _upsert_rows(rows)}


def _fire(context: Context, alert: NormalizedAlert) -> AlertResult:
    service_id, silence = context.place(alert)
    alert_id, occurrences, incident_id, stored_service_id, stored_silence_id = _upsert(
        context, alert, service_id, silence.pk if silence else None
    )
    result = AlertResult(alert.fingerprint, DEDUPLICATED, alert_id)
    incident_id = incident_id or context.linked.get(alert_id)
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
    group_key = _group_key(context.integration, service, alert)
    title, severity = context.openings.get((service.pk, group_key), (alert.summary, alert.severity))
    cached = context.group_incidents.get((service.pk, group_key))
    if cached is not None:
        incident, opened = cached, False
    else:
        incident, opened = find_or_open_incident(
            service,
            group_key=group_key,
            title=title,
            severity=severity,
            source=Source.ALERT,
            actor_name=context.integration.name,
        )
        context.group_incidents[(service.pk, group_key)] = incident
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
        batch=True,  # a storm attaches many alerts a batch: one INSERT (alerts/pending.py)
    )
    if not opened and alert.severity < incident.severity:
        incident = set_severity(
            incident,
            severity=alert.severity,
            by=None,
            source=Source.ALERT,
            actor_name=context.integration.name,
        )
        context.group_incidents[(service.pk, group_key)] = incident
    return result


def _follow_merges(incident: Incident) -> Incident:
    seen = {incident.pk}
    while incident.merged_into_id is not None and incident.merged_into_id not in seen:
        seen.add(incident.merged_into_id)
        incident = Incident.objects.get(pk=incident.merged_into_id)
    return incident


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


def _group_key(integration: Integration, service: Service, alert: NormalizedAlert) -> str:
    """Return the incident group key, scoped to the integration."""
    if alert.group_key:
        key = "g:" + alert.group_key
    else:
        names = service.grouping_labels
        values = [alert.labels.get(name) for name in names]
        if all(v is None for v in values):
            key = "f:" + alert.fingerprint
        else:
            key = "l:" + json.dumps(dict(zip(names, values, strict=True)), sort_keys=True)
    key = f"{integration.pk}:{key}"
    if len(key) > 500:
        key = f"{integration.pk}:h:" + hashlib.sha256(key.encode()).hexdigest()
    return key


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
    context.link_alerts()
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
    incident = _follow_merges(Incident.objects.select_related("service").get(pk=stored.incident_id))
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
    still_firing = Alert.objects.filter(incident=incident, status=AlertStatus.FIRING).exists()
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
    context.link_alerts()
    stored = _open_alert(context, alert.fingerprint)
    if stored is None or stored.incident_id is None:
        return AlertResult(alert.fingerprint, IGNORED)
    incident = _follow_merges(Incident.objects.get(pk=stored.incident_id))
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

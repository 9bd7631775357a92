"""What a batch of ingest requests shares while its alerts are processed, per integration.

Routing rules and silences are read once; incidents and services are read or locked once; firing
alerts may be upserted ahead (alerts.upsert) and new alerts' links wait here to be written one
UPDATE per incident.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from alerts.matchers import MatcherError, all_match, matchers_from_json
from alerts.models import Alert, Integration, RoutingRule, Silence
from alerts.sources.base import FIRING, NormalizedAlert
from core.compiled import Lookup
from incidents.models import Incident, Service
from incidents.opening import lock_open_incidents

log = logging.getLogger(__name__)


class Context:
    """What processing an integration's alerts needs to know, loaded once per batch.

    A batch (alerts.processor) shares one context per integration across its requests, all in one
    transaction, so rules, silences and open incidents are read once, not once per alert.
    """

    def __init__(
        self, integration: Integration, *, since: datetime, sharing_with: Context | None = None
    ):
        self.integration = integration
        self.now = since  # when the alert being processed was received
        rules = _RULES.instances(integration.pk)
        self.rules = sorted(rules, key=lambda r: (r.integration_id is None, r.position, r.pk))
        # Every silence active at some moment from the batch's first request until now.
        self.silences: list[Silence] = _SILENCES.instances(timezone.now(), since)
        self.services: dict[int, Service] = {integration.service_id: integration.service}
        # (service id, group key) -> (title, severity) for an incident this request may open
        self.openings: dict[tuple[int, str], tuple[str, int]] = {}
        self.placements: dict[int, tuple[int, Silence | None]] = {}  # see place()
        # Incidents this batch already read or locked, so it asks the database once per
        # incident, not once per alert. Locked ones stay ours until the transaction commits.
        # Shared by the batch's contexts (`sharing_with`): an incident one integration's alert
        # resolves (merged incidents mix integrations' alerts) is forgotten for every other.
        self.incidents: dict[int, Incident] = sharing_with.incidents if sharing_with else {}
        self.group_incidents: dict[tuple[int, str], Incident] = (
            sharing_with.group_incidents if sharing_with else {}
        )
        # Every context of the batch, this one included (see link_batch).
        self.batch: list[Context] = sharing_with.batch if sharing_with else []
        self.batch.append(self)
        # Upserted ahead, many rows a statement: stored fingerprint -> the upsert's row.
        self.upserted: dict[str, tuple] = {}
        # New alerts to attach to their incident, one UPDATE per incident (link_alerts).
        self.links: dict[int, list[int]] = {}
        self.linked: dict[int, int] = {}  # alert id -> incident id, until written
        # New alerts upserted ahead into their group's incident, until their turn: alert id ->
        # incident id (alerts.upsert.upsert_ahead).
        self.prelinked: dict[int, int] = {}

    @staticmethod
    def lock_groups(groups: list[tuple[Context, tuple[int, str]]]) -> None:
        """Lock the open incidents of these (service id, group key) groups, each for its
        context, in one statement, and keep them in the contexts' caches; groups cached already
        are not asked again, a group without an open incident is left to its alert."""
        wanted: dict[tuple[int, str], dict[tuple[int, str], Incident]] = {}
        for context, group in groups:
            if group not in context.group_incidents:
                wanted[group] = context.group_incidents
        for incident in lock_open_incidents(wanted):
            group = (incident.service_id, incident.group_key)
            wanted[group][group] = incident

    def group_of(self, service_id: int, alert: NormalizedAlert) -> tuple[int, str]:
        """The (service id, group key) of a firing alert routed to `service_id`."""
        return (service_id, group_key(self.integration, self.service(service_id), alert))

    def pending_prelinked(self, incident_pk: int) -> list[int]:
        """The batch's new alerts stored in this incident ahead of their turn: a resolve does not
        count them (in arrival order they come after it)."""
        return [
            alert_id
            for context in self.batch
            for alert_id, incident_id in context.prelinked.items()
            if incident_id == incident_pk
        ]

    def link(self, alert_id: int, incident: Incident) -> None:
        self.links.setdefault(incident.pk, []).append(alert_id)
        self.linked[alert_id] = incident.pk

    def link_alerts(self) -> None:
        """Write the incident of every alert attached since the last call.

        Until then an alert's row has no incident: whatever reads it in between asks `linked`
        (a repeat) or calls this first (a resolve, an acknowledgement).
        """
        _write_links(self.links)
        # Rows upserted ahead were read before these links were written: give them theirs, so
        # a repeat of an alert attached earlier in the batch is still seen as one.
        for fingerprint, row in self.upserted.items():
            linked = self.linked.get(row[0])
            if linked is not None and row[2] is None:
                self.upserted[fingerprint] = (row[0], row[1], linked, *row[3:])
        self.links = {}
        self.linked = {}

    def link_batch(self) -> None:
        """Write the pending links of every context of the batch: before a resolve counts the
        incident's firing alerts, which may include another integration's new alert (merged
        incidents hold several integrations' alerts)."""
        for context in self.batch:
            context.link_alerts()

    def leave_batch(self) -> None:
        """Take this context out of its batch, and drop every incident the batch's contexts
        cached: a savepoint rolled back what it held (its links, incidents it opened)."""
        self.batch.remove(self)
        self.incidents.clear()
        self.group_incidents.clear()

    def forget(self, incident_pk: int) -> None:
        """Drop a cached incident whose state this request just changed (under every key: an
        incident merged away is cached under its own id as the one it was merged into)."""
        for pk, cached in list(self.incidents.items()):
            if cached.pk == incident_pk:
                del self.incidents[pk]
        for group, cached in list(self.group_incidents.items()):
            if cached.pk == incident_pk:
                del self.group_incidents[group]

    def incident(self, pk: int) -> Incident:
        if pk not in self.incidents:
            self.incidents[pk] = follow_merges(_INCIDENT.get(pk))
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
            key = (service_id, group_key(self.integration, self.service(service_id), alert))
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


# Read by every batch, for each integration: compiled once (core.compiled).
_RULES = Lookup(
    lambda integration: RoutingRule.objects.filter(
        Q(integration_id=integration) | Q(integration__isnull=True)
    ),
    takes=(int,),
)
# Read for each incident a batch's repeats belong to.
_INCIDENT = Lookup(lambda pk: Incident.objects.filter(pk=pk), takes=(int,))
_SILENCES = Lookup(
    lambda now, since: Silence.objects.filter(starts_at__lte=now, ends_at__gt=since),
    takes=(datetime, datetime),
)
LINKS_A_STATEMENT = 500


def _write_links(links: dict[int, list[int]]) -> None:
    """Attach alerts to their incidents ({incident id: alert ids}): one UPDATE per incident (up
    to LINKS_A_STATEMENT alerts), in plain SQL. Through the ORM, its compiling was 5.6% of the
    worker's CPU in a storm of single alerts (`py-spy --gil`, 2026-12-07). One statement for all
    incidents, joining a VALUES list, was planned as a hash join over the whole alerts table:
    12 ms a statement with a few hundred thousand alerts (`bench/ingest.py --scenarios batch
    --pg-statements`); an id list is an index lookup whatever the table's size."""
    qn = connection.ops.quote_name
    table = qn(Alert._meta.db_table)
    with connection.cursor() as cursor:
        for incident_id, alert_ids in links.items():
            for start in range(0, len(alert_ids), LINKS_A_STATEMENT):
                chunk = alert_ids[start : start + LINKS_A_STATEMENT]
                cursor.execute(
                    f"UPDATE {table} SET {qn('incident_id')} = %s, {qn('silence_id')} = NULL"  # noqa: S608
                    f" WHERE {qn('id')} IN ({', '.join(['%s'] * len(chunk))})",
                    [incident_id, *chunk],
                )


def follow_merges(incident: Incident) -> Incident:
    """Return the incident `incident` was merged into, at the end of the chain, or itself."""
    seen = {incident.pk}
    while incident.merged_into_id is not None and incident.merged_into_id not in seen:
        seen.add(incident.merged_into_id)
        incident = Incident.objects.get(pk=incident.merged_into_id)
    return incident


def group_key(integration: Integration, service: Service, alert: NormalizedAlert) -> str:
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

"""The verbs: the only way anything changes an open incident.

Each verb locks the incident row, checks that the transition is legal, changes state and writes
one timeline entry, in one transaction. `source` says where the action came from and `by` who did
it (None for Muster itself or an alert source, named by `actor_name`). After the transaction
commits, every new entry is announced once through `incident_changed` (see incidents.timeline).
Opening an incident is incidents.opening's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from core.compiled import Lookup
from incidents.models import EntryKind, Incident, Source, Status, TimelineEntry
from incidents.timeline import by_phrase, record


class IncidentError(Exception):
    """An action that cannot be done; the message says why, in words for the person who tried."""


class IllegalTransition(IncidentError):
    pass


# --- the verbs -------------------------------------------------------------------------------


def _lock(incident: Incident | int) -> Incident:
    pk = incident if isinstance(incident, int) else incident.pk
    return Incident.objects.locked().select_related("service").get(pk=pk)


def _require_open(incident: Incident, action: str) -> None:
    if not incident.is_open:
        raise IllegalTransition(f"Incident #{incident.number} is resolved; it cannot be {action}.")


@transaction.atomic
def acknowledge_incident(
    incident: Incident, *, by: User | None, source: str, actor_name: str = ""
) -> Incident:
    """Acknowledge a triggered incident: paging stops, the acknowledger owns it."""
    incident = _lock(incident)
    if incident.status == Status.ACKNOWLEDGED:
        raise IllegalTransition(f"Incident #{incident.number} is already acknowledged.")
    _require_open(incident, "acknowledged")
    now = timezone.now()
    incident.status = Status.ACKNOWLEDGED
    incident.acknowledged_at = now
    incident.acknowledged_by = by
    if incident.assignee is None and by is not None:
        incident.assignee = by
    timeout = incident.service.ack_timeout_minutes
    incident.ack_expires_at = now + timedelta(minutes=timeout) if timeout else None
    incident.save()
    record(
        incident,
        EntryKind.ACKNOWLEDGED,
        message=f"Acknowledged by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
        at=now,
    )
    return incident


@transaction.atomic
def unacknowledge_incident(
    incident: Incident, *, by: User | None, source: str, actor_name: str = ""
) -> Incident:
    """Put an acknowledged incident back to triggered, so escalation starts again."""
    incident = _lock(incident)
    if incident.status != Status.ACKNOWLEDGED:
        raise IllegalTransition(
            f"Incident #{incident.number} is {incident.status}; only an acknowledged incident "
            "can be unacknowledged."
        )
    _retrigger(incident)
    record(
        incident,
        EntryKind.UNACKNOWLEDGED,
        message=f"Unacknowledged by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
    )
    return incident


def _retrigger(incident: Incident) -> None:
    incident.status = Status.TRIGGERED
    incident.triggered_at = timezone.now()
    incident.acknowledged_at = None
    incident.acknowledged_by = None
    incident.snoozed_until = None
    incident.ack_expires_at = None
    incident.save()


@transaction.atomic
def trigger_incident(incident: Incident, *, reason: str, source: str = Source.SYSTEM) -> Incident:
    """Re-trigger an acknowledged incident (snooze over, acknowledgement timed out)."""
    incident = _lock(incident)
    if incident.status != Status.ACKNOWLEDGED:
        raise IllegalTransition(f"Incident #{incident.number} is {incident.status}.")
    _retrigger(incident)
    record(incident, EntryKind.TRIGGERED, message=f"Re-triggered: {reason}", source=source)
    return incident


@transaction.atomic
def resolve_incident(
    incident: Incident,
    *,
    by: User | None,
    source: str,
    actor_name: str = "",
    note: str = "",
) -> Incident:
    """Resolve an open incident; a later alert with the same key opens a new one."""
    incident = _lock(incident)
    _require_open(incident, "resolved again")
    now = timezone.now()
    incident.status = Status.RESOLVED
    incident.resolved_at = now
    incident.resolved_by = by
    incident.snoozed_until = None
    incident.ack_expires_at = None
    incident.save()
    message = f"Resolved by {by_phrase(by, actor_name, source)}"
    record(
        incident,
        EntryKind.RESOLVED,
        message=f"{message}: {note}" if note else message,
        source=source,
        by=by,
        actor_name=actor_name,
        data={"note": note} if note else {},
        at=now,
    )
    return incident


@transaction.atomic
def snooze_incident(
    incident: Incident, *, until: datetime, by: User | None, source: str, actor_name: str = ""
) -> Incident:
    """Acknowledge until `until`; then the incident triggers again if still unresolved."""
    incident = _lock(incident)
    _require_open(incident, "snoozed")
    now = timezone.now()
    if until <= now:
        raise IncidentError("A snooze must end in the future.")
    if incident.status == Status.TRIGGERED:
        incident.status = Status.ACKNOWLEDGED
        incident.acknowledged_at = now
        incident.acknowledged_by = by
    incident.snoozed_until = until
    incident.ack_expires_at = None
    incident.save()
    record(
        incident,
        EntryKind.SNOOZED,
        message=f"Snoozed until {until:%Y-%m-%d %H:%M} UTC by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
        data={"until": until.isoformat()},
    )
    return incident


@transaction.atomic
def reassign_incident(
    incident: Incident, *, to: User, by: User | None, source: str, actor_name: str = ""
) -> Incident:
    """Make `to` the incident's assignee; an acknowledged incident triggers again for them.
    Only a responder or an admin can be assigned: an observer would be paged but could not act."""
    incident = _lock(incident)
    _require_open(incident, "reassigned")
    if not to.is_active:
        raise IncidentError(f"{to.get_username()} is deactivated.")
    if not to.has_role(Role.RESPONDER):
        raise IncidentError(f"{to.get_username()} is an {to.role} and cannot act on incidents.")
    previous = incident.assignee
    if incident.status == Status.ACKNOWLEDGED:
        _retrigger(incident)
    incident.assignee = to
    incident.save()
    record(
        incident,
        EntryKind.REASSIGNED,
        message=f"Reassigned to {to.get_username()} by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
        data={"to": to.pk, "from": previous.pk if previous else None},
    )
    return incident


@transaction.atomic
def escalate_incident(
    incident: Incident,
    *,
    by: User | None,
    source: str,
    actor_name: str = "",
    level: int | None = None,
) -> Incident:
    """Record a request to page the next escalation level now, or level `level` (1-based);
    an acknowledged incident triggers again. oncall's `escalation.escalate_incident` calls
    this and pages in the same transaction, so that it can say whom it paged."""
    incident = _lock(incident)
    _require_open(incident, "escalated")
    if incident.status == Status.ACKNOWLEDGED:
        _retrigger(incident)
    to = f" to level {level}" if level is not None else ""
    record(
        incident,
        EntryKind.ESCALATED,
        message=f"Escalated{to} by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
        data={"level": level} if level is not None else {},
    )
    return incident


@transaction.atomic
def add_note(
    incident: Incident, *, text: str, by: User | None, source: str, actor_name: str = ""
) -> TimelineEntry:
    """Add a note to the timeline (resolved incidents take notes too, for the postmortem)."""
    text = text.strip()
    if not text:
        raise IncidentError("A note needs some text.")
    incident = _lock(incident)
    return record(
        incident,
        EntryKind.NOTE,
        message=text[:10_000],
        source=source,
        by=by,
        actor_name=actor_name,
    )


@transaction.atomic
def set_severity(
    incident: Incident, *, severity: int, by: User | None, source: str, actor_name: str = ""
) -> Incident:
    """Change the severity (1 most severe … 5); urgency follows unless the service fixes it."""
    if not isinstance(severity, int) or not 1 <= severity <= 5:
        raise IncidentError("Severity must be a whole number from 1 (most severe) to 5.")
    incident = _lock(incident)
    _require_open(incident, "changed")
    if incident.severity == severity:
        raise IllegalTransition(f"Incident #{incident.number} is already severity {severity}.")
    old = incident.severity
    incident.severity = severity
    incident.urgency = incident.service.urgency_for(severity)
    incident.save()
    record(
        incident,
        EntryKind.SEVERITY_CHANGED,
        message=f"Severity {old} → {severity} by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
        data={"from": old, "to": severity, "urgency": incident.urgency},
    )
    return incident


@transaction.atomic
def merge_incidents(
    target: Incident,
    sources: Iterable[Incident],
    *,
    by: User | None,
    source: str,
    actor_name: str = "",
) -> Incident:
    """Merge `sources` into `target`: they resolve, pointing at it; their alerts move to it."""
    ids = sorted({target.pk, *(s.pk for s in sources)})  # lock in one order: no deadlock
    # By pk, as delivery locks them: the model's default order (by number, descending) was the
    # opposite, so a merge beside a delivery naming both incidents could deadlock.
    locked = {i.pk: i for i in Incident.objects.locked().filter(pk__in=ids).order_by("pk")}
    target = locked[target.pk]
    _require_open(target, "merged into")
    merged = [locked[pk] for pk in ids if pk != target.pk]
    if not merged:
        raise IncidentError("Name at least one other incident to merge.")
    now = timezone.now()
    for other in merged:
        _require_open(other, "merged")
        other.status = Status.RESOLVED
        other.resolved_at = now
        other.resolved_by = by
        other.merged_into = target
        other.snoozed_until = None
        other.ack_expires_at = None
        other.save()
        record(
            other,
            EntryKind.MERGED,
            message=f"Merged into #{target.number} by {by_phrase(by, actor_name, source)}",
            source=source,
            by=by,
            actor_name=actor_name,
            data={"into": target.number},
            at=now,
        )
    numbers = ", ".join(f"#{o.number}" for o in merged)
    record(
        target,
        EntryKind.MERGED,
        message=f"{numbers} merged in by {by_phrase(by, actor_name, source)}",
        source=source,
        by=by,
        actor_name=actor_name,
        data={"merged": [o.number for o in merged]},
        at=now,
    )
    return target


@transaction.atomic
def flag_unpaged(incident: Incident, *, reason: str) -> Incident:
    """Mark that nobody could be paged for the incident, and say why on its timeline."""
    incident = _lock(incident)
    if not incident.unpaged:
        incident.unpaged = True
        incident.save(update_fields=["unpaged"])
    record(
        incident,
        EntryKind.UNPAGED,
        message=f"Nobody could be paged: {reason}",
        source=Source.SYSTEM,
    )
    return incident


# --- what the tick does ----------------------------------------------------------------------


def retrigger_due_incidents(now: datetime | None = None) -> int:
    """Re-trigger incidents whose snooze ended or whose acknowledgement timed out."""
    now = now or timezone.now()
    count = 0
    for (pk,) in _SNOOZE_ENDED.rows(now):
        count += _retrigger_if_still_due(pk, "snooze ended", "snoozed_until", now)
    for (pk,) in _ACK_EXPIRED.rows(now):
        count += _retrigger_if_still_due(pk, "acknowledgement timed out", "ack_expires_at", now)
    return count


# The tick's lookups, compiled once (core.compiled): twice a second, and most find nothing.
_SNOOZE_ENDED = Lookup(
    lambda now: Incident.objects.filter(
        status=Status.ACKNOWLEDGED, snoozed_until__lte=now
    ).values_list("pk")
)
_ACK_EXPIRED = Lookup(
    lambda now: Incident.objects.filter(
        status=Status.ACKNOWLEDGED, ack_expires_at__lte=now
    ).values_list("pk")
)


@transaction.atomic
def _retrigger_if_still_due(pk: int, reason: str, field: str, now: datetime) -> int:
    incident = _lock(pk)
    due_at = getattr(incident, field)
    if incident.status != Status.ACKNOWLEDGED or due_at is None or due_at > now:
        return 0  # someone acted on it since we looked
    trigger_incident(incident, reason=reason)
    return 1

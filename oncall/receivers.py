"""How oncall reacts to incidents: triggers start escalation, acks and resolves stop it."""

from __future__ import annotations

from django.dispatch import receiver

from incidents.models import EntryKind, TimelineEntry
from incidents.signals import incident_changed
from oncall import tasks

STARTS = {EntryKind.OPENED, EntryKind.TRIGGERED, EntryKind.UNACKNOWLEDGED}
STOPS = {EntryKind.ACKNOWLEDGED, EntryKind.RESOLVED, EntryKind.SNOOZED, EntryKind.MERGED}


@receiver(incident_changed, dispatch_uid="oncall.follow_incident")
def follow_incident(sender, entry: TimelineEntry, **kwargs) -> None:
    # Stopping is also guaranteed without this: delivery re-checks the incident under lock.
    if entry.kind in STARTS:
        tasks.start_escalation.delay(entry.incident_id)
    elif entry.kind == EntryKind.ESCALATED:
        tasks.escalate_now.delay(entry.incident_id)
    elif entry.kind in STOPS:
        tasks.stop_escalations.delay(entry.incident_id, entry.get_kind_display())
    elif entry.kind == EntryKind.REASSIGNED and entry.data.get("to"):
        tasks.page_assignee.delay(entry.incident_id, entry.data["to"], entry.actor_id)

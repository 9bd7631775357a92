"""How oncall reacts to incidents: what starts or changes paging starts a run of the policy;
acknowledging, snoozing, resolving or being merged away stops it."""

from __future__ import annotations

from django.dispatch import receiver

from incidents.models import STARTING_KINDS, EntryKind, TimelineEntry
from incidents.signals import incident_changed
from oncall import tasks

STOPS = {EntryKind.ACKNOWLEDGED, EntryKind.RESOLVED, EntryKind.SNOOZED}


@receiver(incident_changed, dispatch_uid="oncall.follow_incident")
def follow_incident(sender, entry: TimelineEntry, **kwargs) -> None:
    # Stopping is also guaranteed without this: delivery re-checks the incident under lock.
    if entry.kind in STARTING_KINDS:
        tasks.follow_entry.delay(entry.pk)
    elif entry.kind in STOPS or (entry.kind == EntryKind.MERGED and "into" in entry.data):
        # Only the incidents merged away stop: the one they merged into pages on.
        tasks.stop_escalations.delay(entry.incident_id, entry.get_kind_display())

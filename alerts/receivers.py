"""How alerts follow incidents: resolving ends their alerts; merging hands them on."""

from __future__ import annotations

from django.dispatch import receiver
from django.utils import timezone

from alerts.models import Alert, AlertStatus
from incidents.models import EntryKind, Incident, TimelineEntry
from incidents.signals import incident_changed


@receiver(incident_changed, dispatch_uid="alerts.follow_incident")
def follow_incident(sender, entry: TimelineEntry, **kwargs) -> None:
    incident_id = entry.incident_id
    if entry.kind == EntryKind.RESOLVED:
        # A later firing of the same fingerprint then opens a new alert and a new incident.
        Alert.objects.filter(incident_id=incident_id, status=AlertStatus.FIRING).update(
            status=AlertStatus.RESOLVED, resolved_at=timezone.now()
        )
    elif entry.kind == EntryKind.MERGED and "into" in entry.data:
        target = Incident.objects.filter(number=entry.data["into"]).first()
        if target is not None:
            Alert.objects.filter(incident_id=incident_id).update(incident=target)

"""The one signal incidents sends: `incident_changed(entry=TimelineEntry)`, after commit only."""

from django.dispatch import Signal

incident_changed = Signal()

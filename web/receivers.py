"""Live updates for the web UI: each incident change is broadcast to the pages showing it.

Pages showing one incident follow its war room's socket, where warroom.receivers sends the
room's `incident` event; the incidents list follows `/ws/incidents/` (web.consumers), fed
from here: one small read and one group_send per change, after commit, never raising.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import get_channel_layer
from django.dispatch import receiver

from core import live
from core.compiled import Lookup
from incidents.models import EntryKind, Incident, TimelineEntry
from incidents.signals import incident_changed
from warroom.bot import STATE_KINDS
from web.consumers import EVENT_TYPE, FEED_GROUP

log = logging.getLogger(__name__)

# The entries that change what the list shows: a new incident, and the state changes the war
# room tells its clients about.
FEED_KINDS = STATE_KINDS | {EntryKind.OPENED}


# Read after every change of an incident: compiled once (core.compiled). Plain values (ints,
# strings) need no converters.
_EVENT_ROW = Lookup(
    lambda pk: Incident.objects.filter(pk=pk).values_list(
        "number", "status", "severity", "title", "service__name"
    ),
    takes=(int,),
)


def incident_event(incident_id: int) -> dict[str, Any] | None:
    """Return the feed's event for an incident as it is now (None if it is gone)."""
    rows = _EVENT_ROW.rows(incident_id)
    if not rows:
        return None
    number, status, severity, title, service = rows[0]
    return {
        "type": "incident",
        "number": number,
        "status": status,
        "severity": severity,
        "title": title,
        "service": service,
    }


@receiver(incident_changed, dispatch_uid="web.broadcast_change")
def broadcast_change(sender, entry: TimelineEntry, **kwargs) -> None:
    """Tell every open incidents list that an incident changed."""
    if entry.kind not in FEED_KINDS:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # Read now, after commit: the state as committed, not as the entry's writer held it.
        event = incident_event(entry.incident_id)
        if event is not None:
            live.group_send(FEED_GROUP, {"type": EVENT_TYPE, "event": event})
    except Exception:
        # Lists catch up when they reconnect or reload; the verb that wrote the entry is done.
        log.warning("could not broadcast incident change %s", entry.pk, exc_info=True)

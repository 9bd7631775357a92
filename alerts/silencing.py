"""When a silence ends: alerts it held that are still firing open their incidents at once.

A silenced alert is stored with its silence and no incident. Once no silence is in force for
it (its silence was expired by hand, edited, or reached its end), it goes through the pipeline
again, as if its sender had repeated it: it joins or opens its group's incident and pages, or
falls under another silence still in force. Senders repeat firing alerts only every few hours
(Alertmanager's repeat_interval), and a dead monitor never does, so without this a silence
that ended would go on muting its alerts.

The verbs that end a silence call `refire_unsilenced` when they commit; the beat tick calls it
too, for the silences that simply reach their end.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from alerts import pipeline
from alerts.models import Alert, AlertStatus, Integration
from alerts.sources.base import FIRING, Link, NormalizedAlert
from core.compiled import Lookup

# At most this many alerts a call; the next tick takes the rest.
BATCH = 500


def _normalized(alert: Alert) -> NormalizedAlert:
    """Return the stored alert as its sender's repeat would carry it."""
    try:
        raw = json.loads(bytes(alert.raw)) if alert.raw else None
    except ValueError:
        raw = None
    links = [
        Link(link.get("kind", "link"), link.get("url", ""), link.get("text", ""))
        for link in alert.links or []
        if isinstance(link, dict)
    ]
    return NormalizedAlert(
        fingerprint=alert.fingerprint,
        status=FIRING,
        summary=alert.summary,
        severity=alert.severity,
        labels=dict(alert.labels or {}),
        annotations=dict(alert.annotations or {}),
        links=links,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        raw=raw,
    )


def _held(now: datetime, silence_ids: list[int]) -> QuerySet[Alert]:
    """Firing alerts held by a silence no longer in force at `now`, or by `silence_ids`."""
    return Alert.objects.filter(
        status=AlertStatus.FIRING,
        incident__isnull=True,
        silence__isnull=False,
        integration__enabled=True,
    ).filter(~Q(silence__starts_at__lte=now, silence__ends_at__gt=now) | Q(silence__in=silence_ids))


# The tick's lookup, compiled once (core.compiled): twice a second, and it mostly finds nothing.
_ANY_UNSILENCED = Lookup(lambda now: _held(now, []).values_list("pk")[:1])


def refire_unsilenced(now: datetime | None = None, *, silence_ids: Iterable[int] = ()) -> int:
    """Fire again every firing alert whose silence is no longer in force, and those held by
    `silence_ids` (silences just edited, which may no longer match them); return how many.

    The sender's own group key is not stored, so a re-fired alert groups by its service's
    group-by labels (or alone), as an alert without one does.
    """
    now = now or timezone.now()
    ids = list(silence_ids)
    if not ids and not _ANY_UNSILENCED.exists(now):
        return 0  # the tick, most of the time
    ended = _held(now, ids).order_by("id")[:BATCH]
    by_integration: dict[int, list[NormalizedAlert]] = defaultdict(list)
    for alert in ended:
        by_integration[alert.integration_id].append(_normalized(alert))
    integrations = Integration.objects.select_related("service").in_bulk(list(by_integration))
    for integration_id, alerts in by_integration.items():
        pipeline.ingest(integrations[integration_id], alerts, body=b"")
    return sum(len(alerts) for alerts in by_integration.values())

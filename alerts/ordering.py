"""What an accepted request carries for the processor's order: its order key and its urgency.

The processor (alerts.processor) takes urgent requests ahead of the rest, so a new SEV1 is not
paged after a storm of repeats. It may only do so without breaking a sender's order: a resolve
must never be handled before the trigger its sender sent first. So every request has an *order
key* within its integration (the same key for everything that must stay in order), and an
urgent request goes ahead only when no older pending request of its integration has its key or
has no key at all.

- Alertmanager and Grafana send a group's alerts together, always under its `groupKey`: the key
  is the group's, whatever the notification's size.
- Every other format: the alert's fingerprint (PagerDuty's `dedup_key`, Opsgenie's alias) when
  the request carries one alert, or several alerts of one fingerprint.
- A request with alerts of several fingerprints and no shared group (a generic list) has no key:
  nothing that came after it in its integration goes ahead of it, and it goes ahead of nothing.

Pure functions: no Django.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from alerts.sources.base import FIRING, NormalizedAlert

GROUPED_KINDS = frozenset({"alertmanager", "grafana"})
URGENT_SEVERITY = 2  # severity 1 and 2 alerts go ahead of the rest
MAX_LOOKUPS = 200  # fingerprints a request's "is any of these new?" looks up, at most


def order_key(kind: str, alerts: Sequence[NormalizedAlert]) -> int | None:
    """The request's order key within its integration, as a signed 64-bit number, or None."""
    if not alerts:
        return None
    if kind in GROUPED_KINDS:
        keys = {a.group_key for a in alerts}
        prefix = "group"
    else:
        keys = {a.fingerprint for a in alerts}
        prefix = "alert"
    if len(keys) != 1 or None in keys:
        return None
    (key,) = keys
    digest = hashlib.blake2b(f"{prefix}:{key}".encode("utf-8", "replace"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def urgent_by_severity(alerts: Sequence[NormalizedAlert]) -> bool:
    """Whether a firing alert of severity 1 or 2 is among them."""
    return any(a.status == FIRING and a.severity <= URGENT_SEVERITY for a in alerts)


def firing_fingerprints(alerts: Sequence[NormalizedAlert]) -> list[str]:
    """The distinct fingerprints of the firing alerts, in order, at most MAX_LOOKUPS: if one of
    them has no firing alert stored yet, the request opens something new, and is urgent."""
    seen: dict[str, None] = {}
    for alert in alerts:
        if alert.status == FIRING:
            seen.setdefault(alert.fingerprint)
            if len(seen) == MAX_LOOKUPS:
                break
    return list(seen)


def lane_of(order_key: int | None, integration_id: int, lanes: int) -> int:
    """The processing lane of a request (alerts.lanes): by its order key, else its integration."""
    return (integration_id if order_key is None else order_key) % lanes

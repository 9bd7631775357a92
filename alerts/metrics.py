"""Ingest counters, exported at /metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

if TYPE_CHECKING:
    from alerts.models import Integration

ALERTS_RECEIVED = Counter(
    "muster_alerts_received", "Alerts accepted, by integration.", ["integration"]
)
ALERTS_DEDUPLICATED = Counter(
    "muster_alerts_deduplicated",
    "Alerts that repeated an open alert, by integration.",
    ["integration"],
)
ALERTS_SILENCED = Counter(
    "muster_alerts_silenced", "Alerts that matched a silence, by integration.", ["integration"]
)
REQUESTS_REJECTED = Counter(
    "muster_ingest_rejected",
    "Ingest requests refused, by integration (or 'unknown') and reason.",
    ["integration", "reason"],
)


def count_ingested(integration: Integration, results) -> None:
    """Count a processed request's alerts by what happened to them."""
    name = integration.name
    ALERTS_RECEIVED.labels(name).inc(len(results))
    dedup = sum(1 for r in results if r.action == "deduplicated")
    silenced = sum(1 for r in results if r.action == "silenced")
    if dedup:
        ALERTS_DEDUPLICATED.labels(name).inc(dedup)
    if silenced:
        ALERTS_SILENCED.labels(name).inc(silenced)


def count_rejected(integration_name: str, reason: str) -> None:
    REQUESTS_REJECTED.labels(integration_name, reason).inc()

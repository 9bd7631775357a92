"""Incident counters, exported at /metrics."""

from prometheus_client import Counter

INCIDENTS_OPENED = Counter("muster_incidents_opened", "Incidents opened, by service.", ["service"])

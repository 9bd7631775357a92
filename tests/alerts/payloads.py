"""Builders for real-shaped ingest payloads, and small readers the ingest tests share."""

from __future__ import annotations

import re
from typing import Any

from incidents.models import Incident

AM_ZERO_TIME = "0001-01-01T00:00:00Z"


def am_alert(
    fingerprint: str,
    *,
    status: str = "firing",
    summary: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One element of an Alertmanager webhook's `alerts`, as Alertmanager 0.27 sends it."""
    labels.setdefault("alertname", "InstanceDown")
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": summary or f"{labels['alertname']} {fingerprint}"},
        "startsAt": "2024-05-14T09:21:30.123456789Z",
        "endsAt": AM_ZERO_TIME if status == "firing" else "2024-05-14T09:40:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0",
        "fingerprint": fingerprint,
    }


def am_batch(
    *alerts: dict[str, Any], group_key: str = '{}:{alertname="InstanceDown"}'
) -> dict[str, Any]:
    """An Alertmanager webhook notification (payload version 4) carrying `alerts`."""
    firing = any(a.get("status") == "firing" for a in alerts)
    return {
        "receiver": "muster",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "InstanceDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


def pd_event(
    routing_key: str,
    action: str = "trigger",
    dedup_key: str | None = "srv01/mysql",
    *,
    summary: str = "DISK at 99% on prod-datapipe03",
    severity: str = "critical",
) -> dict[str, Any]:
    """A PagerDuty Events API v2 event."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action}
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    if action == "trigger":
        event["payload"] = {
            "summary": summary,
            "source": "prod-datapipe03.example.com",
            "severity": severity,
        }
    return event


def generic_alert(summary: str, **fields: Any) -> dict[str, Any]:
    return {"summary": summary, **fields}


def timeline_kinds(incident: Incident) -> list[str]:
    return list(incident.timeline.order_by("at", "id").values_list("kind", flat=True))


def metric_value(text: str, name: str, **labels: str) -> float:
    """Return one sample's value from Prometheus text output (0 if the series is absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[3] or ""))
        if found == labels:
            return float(match[4])
    return 0.0

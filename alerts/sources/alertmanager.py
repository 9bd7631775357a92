"""Parse Prometheus Alertmanager webhook notifications (payload version "4").

Each element of `alerts` becomes one NormalizedAlert, even a malformed one (with warnings):

- fingerprint: the alert's `fingerprint`, else a hash of its sorted labels, else of the element.
- status: the alert's own `status`, else the notification's `status`, else "firing".
- summary: annotation `summary`, `description` or `message`, else label `alertname`.
- severity: label `severity` (see `severity_from_label`).
- group_key: `groupKey`, else a hash of `groupLabels`.
- links: `generatorURL` (generator); annotations `runbook_url`/`runbook` (runbook);
  `dashboard_url`/`dashboardURL`/`grafana_url`/`grafana_dashboard_url` (dashboard).
- starts_at/ends_at: `startsAt`/`endsAt` as sent; Go's zero time means "unset" (None).

`parse_batch` is shared with the Grafana parser, whose payload has the same outline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.sources.base import (
    FIRING,
    MAX_ANNOTATION_VALUE,
    MAX_LABEL_VALUE,
    MAX_SUMMARY,
    RESOLVED,
    Link,
    NormalizedAlert,
    PayloadError,
    add_link,
    clean_map,
    clean_text,
    expect_object,
    fingerprint_of,
    json_type,
    parse_time,
    preview,
    safe_raw,
    severity_from_label,
)

# (alert element, its cleaned annotations, links to add to, warnings) -> None
Enricher = Callable[[dict[str, Any], dict[str, str], list[Link], list[str]], None]

RUNBOOK_KEYS = ("runbook_url", "runbook")
DASHBOARD_KEYS = ("dashboard_url", "dashboardURL", "grafana_url", "grafana_dashboard_url")
SUMMARY_KEYS = ("summary", "description", "message")


def parse(payload: Any) -> list[NormalizedAlert]:
    """Turn an Alertmanager webhook payload into one alert per element of `alerts`."""
    return parse_batch(payload, _links)


def parse_batch(
    payload: Any, enrich: Enricher, hints: list[str] | None = None
) -> list[NormalizedAlert]:
    """Parse an Alertmanager-shaped payload; `enrich` adds format-specific links/annotations."""
    body = expect_object(payload)
    items = body.get("alerts")
    if not isinstance(items, list):
        problem = (
            "missing required field 'alerts'"
            if items is None
            else f"'alerts' must be a list, got {json_type(items)}"
        )
        raise PayloadError([problem, *(hints or [])])
    shared: list[str] = []
    group_key = _group_key(body, shared)
    truncated = body.get("truncatedAlerts")
    if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
        shared.append(f"sender left {truncated} alerts out of this notification (truncatedAlerts)")
    status = body.get("status")
    default = status.lower() if isinstance(status, str) and status.lower() == RESOLVED else FIRING
    return [_alert(item, default, group_key, shared, enrich) for item in items]


def _group_key(body: dict[str, Any], warnings: list[str]) -> str | None:
    """Return the sender's group key, or a hash of its group labels."""
    key = body.get("groupKey")
    if key not in (None, ""):
        return clean_text(key, warnings, "groupKey", MAX_LABEL_VALUE)
    if isinstance(body.get("groupLabels"), dict):
        labels = clean_map(body["groupLabels"], warnings, "groupLabels", MAX_LABEL_VALUE)
        return fingerprint_of(sorted(labels.items()))
    return None


def _alert(
    item: Any, default_status: str, group_key: str | None, shared: list[str], enrich: Enricher
) -> NormalizedAlert:
    """Build one alert from an element of `alerts`, keeping whatever can be understood."""
    warnings: list[str] = []
    raw = safe_raw(item, warnings)
    if not isinstance(item, dict):
        warnings.append(f"alert: expected an object, got {json_type(item)}; kept with defaults")
        item = {}
    labels = clean_map(item.get("labels"), warnings, "labels", MAX_LABEL_VALUE)
    annotations = clean_map(item.get("annotations"), warnings, "annotations", MAX_ANNOTATION_VALUE)
    links: list[Link] = []
    enrich(item, annotations, links, warnings)
    return NormalizedAlert(
        fingerprint=_fingerprint(item, labels, raw, warnings),
        status=_status(item, default_status, warnings),
        summary=_summary(annotations, labels, warnings),
        severity=severity_from_label(labels.get("severity")),
        labels=labels,
        annotations=annotations,
        links=links,
        starts_at=parse_time(item.get("startsAt"), warnings, "startsAt"),
        ends_at=parse_time(item.get("endsAt"), warnings, "endsAt"),
        group_key=group_key,
        raw=raw,
        warnings=[*shared, *warnings],
    )


def _status(item: dict[str, Any], default: str, warnings: list[str]) -> str:
    """Return the alert's own status, falling back to the notification's."""
    status = item.get("status")
    if isinstance(status, str) and status.lower() in (FIRING, RESOLVED):
        return status.lower()
    shown = "missing" if status is None else f"unknown ({preview(status)})"
    warnings.append(f"status: {shown}; using {default!r}")
    return default


def _fingerprint(
    item: dict[str, Any], labels: dict[str, str], raw: Any, warnings: list[str]
) -> str:
    """Return the sender's fingerprint, else a hash of the labels, else of the raw element."""
    given = item.get("fingerprint")
    if isinstance(given, str) and given.strip():
        return clean_text(given.strip(), warnings, "fingerprint", MAX_LABEL_VALUE)
    if labels:
        return fingerprint_of(sorted(labels.items()))
    return fingerprint_of(raw)


def _summary(annotations: dict[str, str], labels: dict[str, str], warnings: list[str]) -> str:
    """Pick the first non-blank of the summary-ish annotations, then alertname."""
    for text in (*(annotations.get(k) for k in SUMMARY_KEYS), labels.get("alertname")):
        if text and text.strip():
            return clean_text(text.strip(), warnings, "summary", MAX_SUMMARY)
    return "(no summary)"


def _links(
    item: dict[str, Any], annotations: dict[str, str], links: list[Link], warnings: list[str]
) -> None:
    """Collect Alertmanager's generator URL and runbook/dashboard annotations."""
    add_link(links, "generator", item.get("generatorURL"), "", warnings)
    add_annotation_links(annotations, links, warnings)


def add_annotation_links(
    annotations: dict[str, str], links: list[Link], warnings: list[str]
) -> None:
    """Turn conventional runbook and dashboard annotations into links."""
    for key in RUNBOOK_KEYS:
        add_link(links, "runbook", annotations.get(key), "", warnings)
    for key in DASHBOARD_KEYS:
        add_link(links, "dashboard", annotations.get(key), "", warnings)

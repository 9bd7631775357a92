"""Parse PagerDuty Events API v2 events, e.g. from Alertmanager's `pagerduty_configs`.

The event is validated like PagerDuty validates it, and every problem is reported at once:
`routing_key` (non-empty string) and `event_action` (trigger | acknowledge | resolve) are
required; a trigger needs `payload.summary`, `payload.source` and `payload.severity`
(critical | error | warning | info); acknowledge and resolve need `dedup_key`.

One alert comes out:

- fingerprint and group_key: `dedup_key`; a trigger without one gets a random uuid4 hex, as
  PagerDuty then opens a new incident every time.
- status: trigger -> firing, acknowledge -> acknowledged, resolve -> resolved.
- summary: `payload.summary`, else e.g. "Resolve event for <dedup_key>".
- severity: critical 1, error 2, warning 3, info 5 (3 when absent).
- labels: `payload.source`, `component`, `group`, `class`, `severity`, those present.
- annotations: one per top-level key of `payload.custom_details` (non-strings as compact
  JSON); custom_details that is not an object is kept whole as "custom_details"; and `client`.
- links: `links[].href` (link), `images[].src` (image) and `images[].href` (link),
  `client_url` (source).
- starts_at: `payload.timestamp`.
- raw: the whole event with `routing_key` redacted, since it is the integration's secret.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from alerts.sources.base import (
    ACKNOWLEDGED,
    DEFAULT_SEVERITY,
    FIRING,
    MAX_ANNOTATION_VALUE,
    MAX_KEY,
    MAX_LABEL_VALUE,
    MAX_SUMMARY,
    RESOLVED,
    Link,
    NormalizedAlert,
    PayloadError,
    add_link,
    clean_text,
    compact_json,
    expect_object,
    json_type,
    parse_time,
    preview,
    safe_raw,
)

STATUS_BY_ACTION = {"trigger": FIRING, "acknowledge": ACKNOWLEDGED, "resolve": RESOLVED}
SEVERITY = {"critical": 1, "error": 2, "warning": 3, "info": 5}
LABEL_FIELDS = ("source", "component", "group", "class", "severity")
MAX_DEDUP_KEY = 255
REDACTED = "[redacted]"


def parse(payload: Any, new_key: str | None = None) -> list[NormalizedAlert]:
    """Turn one PagerDuty Events API v2 event into exactly one alert.

    `new_key` is the dedup key a trigger without one gets (random when not given): the ingest
    view picks it once, so parsing the stored body again gives the same alert.
    """
    event = expect_object(payload)
    problems = _problems(event)
    if problems:
        raise PayloadError(problems)
    warnings: list[str] = []
    raw = safe_raw({**event, "routing_key": REDACTED}, warnings)
    action = event["event_action"]
    dedup_key = clean_text(
        event.get("dedup_key") or new_key or uuid4().hex, warnings, "dedup_key", MAX_DEDUP_KEY
    )
    body = event.get("payload")
    if not isinstance(body, dict):
        if body is not None:
            warnings.append(f"payload: expected an object, got {json_type(body)}; ignored")
        body = {}
    labels = {
        name: clean_text(body[name], warnings, f"payload.{name}", MAX_LABEL_VALUE)
        for name in LABEL_FIELDS
        if body.get(name) not in (None, "")
    }
    summary = body.get("summary")
    if isinstance(summary, str) and summary.strip():
        summary = clean_text(summary.strip(), warnings, "payload.summary", MAX_SUMMARY)
    else:
        summary = f"{action.capitalize()} event for {dedup_key}"
    annotations = _details(body.get("custom_details"), warnings)
    if event.get("client") not in (None, ""):
        annotations.setdefault("client", clean_text(event["client"], warnings, "client", MAX_KEY))
    return [
        NormalizedAlert(
            fingerprint=dedup_key,
            status=STATUS_BY_ACTION[action],
            summary=summary,
            severity=SEVERITY.get(str(body.get("severity", "")).lower(), DEFAULT_SEVERITY),
            labels=labels,
            annotations=annotations,
            links=_links(event, warnings),
            starts_at=parse_time(body.get("timestamp"), warnings, "payload.timestamp"),
            group_key=dedup_key,
            raw=raw,
            warnings=warnings,
        )
    ]


def _problems(event: dict[str, Any]) -> list[str]:
    """List everything PagerDuty would reject this event for."""
    problems = []
    key = event.get("routing_key")
    if key is None:
        problems.append("missing required field 'routing_key'")
        if "service_key" in event:
            problems.append("this looks like an Events API v1 event; send Events API v2")
    elif not isinstance(key, str) or not key.strip():
        problems.append("'routing_key' must be a non-empty string")
    action = event.get("event_action")
    if action is None:
        problems.append("missing required field 'event_action'")
    elif not isinstance(action, str) or action not in STATUS_BY_ACTION:
        problems.append(
            "'event_action' must be one of 'trigger', 'acknowledge', 'resolve'"
            f" (got {preview(action)})"
        )
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and not isinstance(dedup_key, str):
        problems.append(f"'dedup_key' must be a string, got {json_type(dedup_key)}")
    elif dedup_key and len(dedup_key) > MAX_DEDUP_KEY:
        problems.append(f"'dedup_key' must be at most {MAX_DEDUP_KEY} characters")
    elif not dedup_key and action in ("acknowledge", "resolve"):
        problems.append(f"missing required field 'dedup_key' (required to {action})")
    if action == "trigger":
        problems += _payload_problems(event.get("payload"))
    return problems


def _payload_problems(body: Any) -> list[str]:
    """List what a trigger's `payload` lacks."""
    if body is None:
        return ["missing required field 'payload'"]
    if not isinstance(body, dict):
        return [f"'payload' must be an object, got {json_type(body)}"]
    problems = []
    for name in ("summary", "source", "severity"):
        value = body.get(name)
        if value is None:
            problems.append(f"missing required field 'payload.{name}'")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"'payload.{name}' must be a non-empty string")
    severity = body.get("severity")
    if isinstance(severity, str) and severity.strip() and severity.lower() not in SEVERITY:
        problems.append(
            "'payload.severity' must be one of 'critical', 'error', 'warning', 'info'"
            f" (got {preview(severity)})"
        )
    return problems


def _details(details: Any, warnings: list[str]) -> dict[str, str]:
    """Flatten custom_details into annotations, one per top-level key."""
    if details is None:
        return {}
    if not isinstance(details, dict):
        text = details if isinstance(details, str) else compact_json(details)
        return {
            "custom_details": clean_text(text, warnings, "custom_details", MAX_ANNOTATION_VALUE)
        }
    out = {}
    for key, value in details.items():
        name = clean_text(str(key), warnings, "custom_details key", MAX_KEY)
        text = value if isinstance(value, str) else compact_json(value)
        out[name] = clean_text(text, warnings, f"custom_details.{name}", MAX_ANNOTATION_VALUE)
    return out


def _links(event: dict[str, Any], warnings: list[str]) -> list[Link]:
    """Collect links, images and the client URL."""
    links: list[Link] = []
    for item in _objects(event, "links", warnings):
        add_link(links, "link", item.get("href"), item.get("text"), warnings)
    for item in _objects(event, "images", warnings):
        add_link(links, "image", item.get("src"), item.get("alt"), warnings)
        add_link(links, "link", item.get("href"), item.get("alt"), warnings)
    add_link(links, "source", event.get("client_url"), event.get("client"), warnings)
    return links


def _objects(event: dict[str, Any], name: str, warnings: list[str]) -> list[dict[str, Any]]:
    """Return the objects in list field `name`, warning about anything else."""
    value = event.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append(f"{name}: expected a list, got {json_type(value)}; ignored")
        return []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            warnings.append(f"{name}[{index}]: expected an object, got {json_type(item)}; ignored")
    return [item for item in value if isinstance(item, dict)]

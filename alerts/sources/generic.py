"""Parse Muster's own JSON alert format, meant for scripts and curl.

The body is one alert object, a list of them, or {"alerts": [...]}. Alert object fields:

| Field         | Type                                         | Default            |
|---------------|----------------------------------------------|--------------------|
| `summary`     | string, **required**; at most 1024 chars     |                    |
| `status`      | `"firing"` or `"resolved"`                   | `"firing"`         |
| `dedup_key`   | string; same key = same alert                | hash of summary+labels |
| `severity`    | `critical`/`error`/`high`/`warning`/`info`, or 1 (worst)..5 | `3` |
| `labels`      | object, string values                        | `{}`               |
| `annotations` | object, string values                        | `{}`               |
| `links`       | list of `{"url", "text", "kind"}` (`href` = `url`) or URL strings | `[]` |
| `starts_at`   | RFC 3339 timestamp                           | time of receipt    |
| `ends_at`     | RFC 3339 timestamp                           | none               |
| `group_key`   | string; alerts with one key group together   | the service's group-by labels |

Link kinds: generator, graph, dashboard, panel, runbook, silence, image, source, link (default);
only absolute http(s) URLs are kept. A `"resolved"` alert ends the open alert with the same
`dedup_key`, so send the same key (or the same summary and labels) as the firing one.

Severity names map critical -> 1, error/high -> 2, warning -> 3, info -> 5. A request is
rejected, with every problem listed, when an alert is not an object, has no non-empty string
`summary`, or has a `status` other than firing/resolved. Other mistakes (a non-string label
value, a bad timestamp, a non-http(s) link, an unknown severity) are repaired or ignored and
reported in the alert's warnings. Unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.sources.base import (
    DEFAULT_SEVERITY,
    FIRING,
    LINK_KINDS,
    MAX_ANNOTATION_VALUE,
    MAX_LABEL_VALUE,
    MAX_SUMMARY,
    RESOLVED,
    SEVERITY_BY_NAME,
    Link,
    NormalizedAlert,
    PayloadError,
    add_link,
    clean_map,
    clean_text,
    fingerprint_of,
    json_type,
    parse_time,
    preview,
    safe_raw,
)


def parse(payload: Any) -> list[NormalizedAlert]:
    """Turn a generic-format body (object, list, or {"alerts": [...]}) into alerts."""
    items, prefix = _items(payload)
    problems = [p for index, item in enumerate(items) for p in _problems(item, prefix(index))]
    if problems:
        raise PayloadError(problems)
    return [_alert(item) for item in items]


def _items(payload: Any) -> tuple[list[Any], Callable[[int], str]]:
    """Return the alert objects and how to name the i-th one in a problem."""
    if isinstance(payload, list):
        return payload, lambda i: f"[{i}]: "
    if isinstance(payload, dict) and "alerts" in payload:
        if not isinstance(payload["alerts"], list):
            raise PayloadError(f"'alerts' must be a list, got {json_type(payload['alerts'])}")
        return payload["alerts"], lambda i: f"alerts[{i}]: "
    if isinstance(payload, dict):
        return [payload], lambda i: ""
    raise PayloadError(
        f"payload must be a JSON object or a list of objects, got {json_type(payload)}"
    )


def _problems(item: Any, where: str) -> list[str]:
    """List why this alert object is unusable."""
    if not isinstance(item, dict):
        return [f"{where}must be an object, got {json_type(item)}"]
    problems = []
    summary = item.get("summary")
    if summary is None:
        problems.append(f"{where}missing required field 'summary'")
    elif not isinstance(summary, str) or not summary.strip():
        problems.append(f"{where}'summary' must be a non-empty string")
    status = item.get("status", FIRING)
    if not isinstance(status, str) or status.strip().lower() not in (FIRING, RESOLVED):
        problems.append(f"{where}'status' must be 'firing' or 'resolved' (got {preview(status)})")
    return problems


def _alert(item: dict[str, Any]) -> NormalizedAlert:
    """Build one alert from a validated object."""
    warnings: list[str] = []
    raw = safe_raw(item, warnings)
    summary = clean_text(item["summary"].strip(), warnings, "summary", MAX_SUMMARY)
    labels = clean_map(item.get("labels"), warnings, "labels", MAX_LABEL_VALUE)
    key = item.get("dedup_key")
    group_key = item.get("group_key")
    return NormalizedAlert(
        fingerprint=(
            clean_text(key, warnings, "dedup_key", MAX_LABEL_VALUE)
            if key not in (None, "")
            else fingerprint_of(summary, labels)
        ),
        status=item.get("status", FIRING).strip().lower(),
        summary=summary,
        severity=_severity(item.get("severity"), warnings),
        labels=labels,
        annotations=clean_map(
            item.get("annotations"), warnings, "annotations", MAX_ANNOTATION_VALUE
        ),
        links=_links(item.get("links"), warnings),
        starts_at=parse_time(item.get("starts_at"), warnings, "starts_at"),
        ends_at=parse_time(item.get("ends_at"), warnings, "ends_at"),
        group_key=(
            clean_text(group_key, warnings, "group_key", MAX_LABEL_VALUE)
            if group_key not in (None, "")
            else None
        ),
        raw=raw,
        warnings=warnings,
    )


def _severity(value: Any, warnings: list[str]) -> int:
    """Accept a severity name or a number 1..5 (also as a string); anything else is 3."""
    if value is None:
        return DEFAULT_SEVERITY
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    if isinstance(value, str):
        name = value.strip().lower()
        if name in SEVERITY_BY_NAME:
            return SEVERITY_BY_NAME[name]
        if name in ("1", "2", "3", "4", "5"):
            return int(name)
    warnings.append(f"severity: unknown value {preview(value)}; using {DEFAULT_SEVERITY}")
    return DEFAULT_SEVERITY


def _links(value: Any, warnings: list[str]) -> list[Link]:
    """Collect links given as objects with url/href, text and kind, or as bare URL strings."""
    links: list[Link] = []
    if value is None:
        return links
    if not isinstance(value, list):
        warnings.append(f"links: expected a list, got {json_type(value)}; ignored")
        return links
    for index, item in enumerate(value):
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            warnings.append(f"links[{index}]: expected an object, got {json_type(item)}; ignored")
            continue
        kind = item.get("kind") or "link"
        if not isinstance(kind, str) or kind not in LINK_KINDS:
            warnings.append(f"links[{index}]: unknown kind {preview(kind)}; using 'link'")
            kind = "link"
        url = item.get("url") if item.get("url") not in (None, "") else item.get("href")
        add_link(links, kind, url, item.get("text"), warnings)
    return links

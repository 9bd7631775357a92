"""Parse Opsgenie Alert API requests: create, close and acknowledge.

create (body of POST /v2/alerts):

- `message` is required; over 130 characters it is truncated with a warning (Opsgenie's limit).
- fingerprint and group_key: `alias`, Opsgenie's de-duplication key. Without an alias Opsgenie
  opens a new alert for every request, so the fingerprint is then a random uuid4 hex.
- status: firing; summary: `message`; severity: `priority` P1..P5 -> 1..5 (default P3).
- labels: each tag "key:value" becomes label key=value (split at the first colon); a bare tag
  "db" becomes label db="true". `entity` and `source` become labels of those names, and win over
  tags with the same key.
- annotations: `details` (key -> value), plus `description`, `user` and `note` under those names.
- `responders`, `visibleTo`, `actions` and unknown fields are ignored (they stay in `raw`).

close / acknowledge (POST /v2/alerts/{identifier}/close|acknowledge?identifierType=alias):
the identifier comes from the URL and only identifierType "alias" is supported. The body may be
empty or carry `user`, `source`, `note`. One alert comes out, fingerprint = the alias, status
resolved or acknowledged.
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
    RESOLVED,
    NormalizedAlert,
    PayloadError,
    clean_map,
    clean_text,
    expect_object,
    json_type,
    preview,
    safe_raw,
)

MAX_MESSAGE = 130
MAX_ALIAS = 512
PRIORITIES = {"P1": 1, "P2": 2, "P3": 3, "P4": 4, "P5": 5}
STATUS_BY_ACTION = {"close": RESOLVED, "acknowledge": ACKNOWLEDGED}


def parse(
    payload: Any,
    action: str = "create",
    identifier: str | None = None,
    identifier_type: str = "alias",
    new_key: str | None = None,
) -> list[NormalizedAlert]:
    """Turn one Opsgenie create, close or acknowledge request into exactly one alert.

    `new_key` is the fingerprint a create without an alias gets (random when not given): the
    ingest view picks it once, so parsing the stored body again gives the same alert.
    """
    if action == "create":
        return [_create(expect_object(payload), new_key)]
    if isinstance(action, str) and action in STATUS_BY_ACTION:
        return [_update(payload, action, identifier, identifier_type)]
    raise PayloadError(
        f"unsupported action {preview(action)}; expected 'create', 'close' or 'acknowledge'"
    )


def _create(body: dict[str, Any], new_key: str | None) -> NormalizedAlert:
    """Build the alert a create request describes."""
    problems = []
    message, alias = body.get("message"), body.get("alias")
    if message is None:
        problems.append("missing required field 'message'")
    elif not isinstance(message, str) or not message.strip():
        problems.append("'message' must be a non-empty string")
    if alias is not None and not isinstance(alias, str):
        problems.append(f"'alias' must be a string, got {json_type(alias)}")
    elif alias and len(alias) > MAX_ALIAS:
        problems.append(f"'alias' must be at most {MAX_ALIAS} characters")
    if problems:
        raise PayloadError(problems)
    assert isinstance(message, str)  # else it was one of the problems raised above
    warnings: list[str] = []
    raw = safe_raw(body, warnings)
    fingerprint = clean_text(alias.strip(), warnings, "alias", MAX_ALIAS) if alias else ""
    fingerprint = fingerprint or new_key or uuid4().hex
    labels = _tag_labels(body.get("tags"), warnings)
    annotations = clean_map(body.get("details"), warnings, "details", MAX_ANNOTATION_VALUE)
    _copy(body, ("entity", "source"), labels, MAX_LABEL_VALUE, warnings)
    _copy(body, ("description", "user", "note"), annotations, MAX_ANNOTATION_VALUE, warnings)
    return NormalizedAlert(
        fingerprint=fingerprint,
        status=FIRING,
        summary=clean_text(message.strip(), warnings, "message", MAX_MESSAGE),
        severity=_severity(body.get("priority"), warnings),
        labels=labels,
        annotations=annotations,
        group_key=fingerprint,
        raw=raw,
        warnings=warnings,
    )


def _update(payload: Any, action: str, identifier: Any, identifier_type: Any) -> NormalizedAlert:
    """Build the close/acknowledge alert for the alias named in the URL."""
    problems = []
    if not isinstance(identifier, str) or not identifier.strip():
        problems.append("missing alert identifier in the URL")
    if not isinstance(identifier_type, str) or identifier_type.lower() != "alias":
        problems.append(
            f"identifierType {preview(identifier_type)} is not supported; only 'alias' is supported"
        )
    body = {} if payload is None else payload
    if not isinstance(body, dict):
        problems.append(f"payload must be a JSON object, got {json_type(body)}")
    if problems:
        raise PayloadError(problems)
    warnings: list[str] = []
    alias = clean_text(identifier.strip(), warnings, "identifier", MAX_ALIAS)
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    _copy(body, ("source",), labels, MAX_LABEL_VALUE, warnings)
    _copy(body, ("user", "note"), annotations, MAX_ANNOTATION_VALUE, warnings)
    return NormalizedAlert(
        fingerprint=alias,
        status=STATUS_BY_ACTION[action],
        summary=f"{action.capitalize()} request for alias {alias}",
        severity=DEFAULT_SEVERITY,
        labels=labels,
        annotations=annotations,
        group_key=alias,
        raw=safe_raw(body, warnings),
        warnings=warnings,
    )


def _tag_labels(tags: Any, warnings: list[str]) -> dict[str, str]:
    """Turn tags into labels: "key:value" -> key=value, a bare tag -> tag="true"."""
    if tags is None:
        return {}
    if not isinstance(tags, list):
        warnings.append(f"tags: expected a list, got {json_type(tags)}; ignored")
        return {}
    labels = {}
    for index, tag in enumerate(tags):
        text = clean_text(tag, warnings, f"tags[{index}]", MAX_LABEL_VALUE).strip()
        key, sep, value = text.partition(":")
        if sep and key.strip():
            labels[key.strip()[:MAX_KEY]] = value.strip()
        elif text:
            labels[text[:MAX_KEY]] = "true"
    return labels


def _copy(
    body: dict[str, Any],
    names: tuple[str, ...],
    into: dict[str, str],
    limit: int,
    warnings: list[str],
) -> None:
    """Copy the named fields that are present, as clean text, into `into`."""
    for name in names:
        if body.get(name) not in (None, ""):
            into[name] = clean_text(body[name], warnings, name, limit)


def _severity(priority: Any, warnings: list[str]) -> int:
    """Map priority P1..P5 to 1..5; missing or unknown is P3."""
    if priority is None:
        return DEFAULT_SEVERITY
    if isinstance(priority, str) and priority.strip().upper() in PRIORITIES:
        return PRIORITIES[priority.strip().upper()]
    warnings.append(f"priority: expected P1..P5, got {preview(priority, 20)}; using P3")
    return DEFAULT_SEVERITY

"""Payload templates of runbook actions: `{{labels.instance}}`, `{{incident.number}}`. Pure.

No template engine and no eval: a placeholder is looked up in a flat table of values. A JSON
payload is parsed once and placeholders are filled inside its strings, then the whole value is
serialized again, so a label value can never break out of its string (it is JSON-escaped by
construction). A form payload is a JSON object of fields, URL-encoded after filling. A text
payload is filled as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"
CONTENT_TYPES = (JSON, FORM, TEXT)

MAX_TEMPLATE = 20_000  # characters
MAX_RENDERED = 64 * 1024  # characters of body sent

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"(incident|labels|annotations|run)\.([A-Za-z_][A-Za-z0-9_.\-]*)")
INCIDENT_FIELDS = ("number", "title", "severity", "urgency", "status", "service")
RUN_FIELDS = ("requested_by",)
EXAMPLES = "{{labels.instance}}, {{incident.number}}, {{incident.service}}, {{run.requested_by}}"


class TemplateError(ValueError):
    """A template that cannot be used; the message says why."""


class MissingValues(TemplateError):
    """The template names values the incident does not have (a label no alert carries)."""

    def __init__(self, names: list[str]):
        self.names = names
        listed = ", ".join(names)
        super().__init__(f"the payload needs {listed}, which this incident does not have")


@dataclass(frozen=True)
class Context:
    """The values placeholders may take: the incident's fields, its alert's labels and
    annotations, and the run's (who asked)."""

    incident: dict[str, object] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    run: dict[str, object] = field(default_factory=dict)

    def lookup(self, name: str) -> object | None:
        namespace, key = name.split(".", 1)
        value = getattr(self, namespace).get(key)
        return value if value is None or isinstance(value, int | str) else str(value)


def placeholders(text: str) -> list[str]:
    """Return the names in `text`'s placeholders, in order; raise TemplateError on a bad one."""
    names = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1).strip()
        found = _NAME.fullmatch(name)
        if found is None:
            raise TemplateError(f"unknown placeholder {{{{{name[:40]}}}}}; use e.g. {EXAMPLES}")
        namespace, key = found.groups()
        if namespace == "incident" and key not in INCIDENT_FIELDS:
            raise TemplateError(
                f"unknown placeholder {{{{{name}}}}}; the incident has "
                + ", ".join(f"incident.{f}" for f in INCIDENT_FIELDS)
            )
        if namespace == "run" and key not in RUN_FIELDS:
            raise TemplateError(f"unknown placeholder {{{{{name}}}}}; a run has run.requested_by")
        names.append(name)
    return names


def check_template(text: str, content_type: str) -> None:
    """Raise TemplateError unless `text` is a usable payload template for `content_type`."""
    if content_type not in CONTENT_TYPES:
        raise TemplateError(f"content type must be one of {', '.join(CONTENT_TYPES)}")
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"a payload template is at most {MAX_TEMPLATE} characters")
    if "\x00" in text:
        raise TemplateError("a payload template cannot contain NUL characters")
    if content_type == TEXT or not text.strip():
        placeholders(text)
        return
    value = _parse_json(text)
    if content_type == FORM and not (
        isinstance(value, dict) and all(isinstance(v, str | int | float) for v in value.values())
    ):
        raise TemplateError(
            "a form payload template is a JSON object of fields, "
            'e.g. {"host": "{{labels.instance}}"}'
        )
    for string in _strings(value):
        placeholders(string)


def render(text: str, content_type: str, context: Context) -> str:
    """Return the body to send: `text` with its placeholders filled from `context`.

    Raises MissingValues naming every placeholder the context cannot fill.
    """
    check_template(text, content_type)
    if not text.strip():
        return ""
    if content_type == TEXT:
        missing = sorted({n for n in placeholders(text) if context.lookup(n) is None})
        if missing:
            raise MissingValues(missing)
        body = _fill(text, context)
    else:
        value = _parse_json(text)
        missing = sorted(
            {n for s in _strings(value) for n in placeholders(s) if context.lookup(n) is None}
        )
        if missing:
            raise MissingValues(missing)
        filled = _fill_value(value, context)
        if content_type == FORM:
            body = urlencode({k: _scalar_text(v) for k, v in filled.items()})
        else:
            body = json.dumps(filled, ensure_ascii=False)
    if len(body) > MAX_RENDERED:
        raise TemplateError(f"the payload would be {len(body)} characters; at most {MAX_RENDERED}")
    return body


def _parse_json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TemplateError(
            f"the payload template is not valid JSON ({exc}); placeholders go inside strings, "
            'e.g. {"host": "{{labels.instance}}"}'
        ) from None


def _strings(value: object):
    """Yield every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


def _fill(text: str, context: Context) -> str:
    return _PLACEHOLDER.sub(lambda m: str(context.lookup(m.group(1).strip())), text)


def _fill_value(value: object, context: Context) -> object:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None:
            # "{{incident.number}}" alone keeps its type: a number stays a number.
            return context.lookup(whole.group(1).strip())
        return _fill(value, context)
    if isinstance(value, list):
        return [_fill_value(item, context) for item in value]
    if isinstance(value, dict):
        return {_fill(k, context): _fill_value(v, context) for k, v in value.items()}
    return value


def _scalar_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)

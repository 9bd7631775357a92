"""The normalized shape every wire format is parsed into, and the helpers parsers share."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

FIRING = "firing"
RESOLVED = "resolved"
ACKNOWLEDGED = "acknowledged"  # PagerDuty/Opsgenie senders may acknowledge by dedup key
STATUSES = (FIRING, RESOLVED, ACKNOWLEDGED)


class PayloadError(Exception):
    """The payload cannot be turned into any alert; `problems` says why, one item per problem."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Link:
    kind: str  # generator | graph | dashboard | panel | runbook | silence | image | source | link
    url: str
    text: str = ""


@dataclass
class NormalizedAlert:
    fingerprint: str
    status: str  # one of STATUSES
    summary: str
    severity: int  # 1 (most severe) .. 5
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # The sender's own grouping (Alertmanager/Grafana groupKey; PagerDuty/Opsgenie: the dedup key).
    # None lets the service's group-by labels decide.
    group_key: str | None = None
    raw: Any = None  # this alert's own part of the payload, as decoded JSON
    warnings: list[str] = field(default_factory=list)


def fingerprint_of(*parts: Any) -> str:
    """Return a stable hash of JSON-able parts, for senders that give no fingerprint."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


# --- Shared helpers for parsers --------------------------------------------------------------

MAX_SUMMARY = 1024
MAX_LABEL_VALUE = 4096
MAX_ANNOTATION_VALUE = 16384
MAX_KEY = 256
MAX_URL = 4096
MAX_TEXT_DEPTH = 32  # nesting kept when an object is turned into compact JSON text
MAX_RAW_DEPTH = 64  # nesting kept in `raw`, so storing it as jsonb cannot hit recursion limits
DEFAULT_SEVERITY = 3
SEVERITY_BY_NAME = {"critical": 1, "error": 2, "high": 2, "warning": 3, "info": 5}
LINK_KINDS = frozenset(
    {"generator", "graph", "dashboard", "panel", "runbook", "silence", "image", "source", "link"}
)
NUL = "\x00"
REPLACEMENT = "\ufffd"
_CUT = "\u2026"  # stands in for whatever was nested too deep
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def severity_from_label(value: Any) -> int:
    """Map a severity label (critical/error/high/warning/info, any case) to 1..5; otherwise 3."""
    if isinstance(value, str):
        return SEVERITY_BY_NAME.get(value.strip().lower(), DEFAULT_SEVERITY)
    return DEFAULT_SEVERITY


def json_type(value: Any) -> str:
    """Name the JSON type of a decoded value, for messages a sender can act on."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def preview(value: Any, limit: int = 40) -> str:
    """Quote a short, safe rendering of any decoded value for use in a message."""
    text = value if isinstance(value, str) else compact_json(value, max_depth=3)
    return repr(text[:limit])


def _prune(value: Any, depth: int, cut: list[bool]) -> Any:
    """Copy a decoded JSON value, replacing containers nested deeper than `depth` and NULs."""
    if isinstance(value, dict | list | tuple) and depth <= 0:
        cut.append(True)
        return _CUT
    if isinstance(value, dict):
        return {_prune(str(k), depth, cut): _prune(v, depth - 1, cut) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prune(v, depth - 1, cut) for v in value]
    if isinstance(value, str) and NUL in value:
        return value.replace(NUL, REPLACEMENT)
    return value


def compact_json(value: Any, max_depth: int = MAX_TEXT_DEPTH) -> str:
    """Render a decoded JSON value as compact JSON text; too-deep nesting becomes an ellipsis."""
    try:
        return json.dumps(
            _prune(value, max_depth, []), separators=(",", ":"), ensure_ascii=False, default=str
        )
    except (TypeError, ValueError, RecursionError):  # pragma: no cover - defensive
        return repr(type(value))


def _is_safe(value: Any, depth: int) -> bool:
    """Whether `_prune(value, depth, …)` would change nothing: no NUL, nothing nested deeper.

    Iterative and copying nothing: almost every raw fragment is safe as sent, and copying each
    was a third of the CPU of parsing an Alertmanager notification.
    """
    stack = [(value, depth)]
    while stack:
        node, left = stack.pop()
        if type(node) is str:
            if NUL in node:
                return False
            continue
        if isinstance(node, dict):
            if left <= 0:
                return False
            for key in node:
                if type(key) is not str or NUL in key:
                    return False
            children: Any = node.values()
        elif isinstance(node, list):
            if left <= 0:
                return False
            children = node
        elif isinstance(node, tuple):
            return False  # decoded JSON has none; _prune turns them into lists
        else:
            continue
        for child in children:
            if type(child) is str:
                if NUL in child:
                    return False
            elif isinstance(child, dict | list | tuple):
                stack.append((child, left - 1))
    return True


def safe_raw(value: Any, warnings: list[str]) -> Any:
    """Return a jsonb-safe raw fragment: NULs replaced, nesting capped; the value itself when
    it is safe already (it is a fragment of a freshly decoded body, which nothing changes)."""
    if _is_safe(value, MAX_RAW_DEPTH):
        return value
    cut: list[bool] = []
    clean = _prune(value, MAX_RAW_DEPTH, cut)
    if cut:
        warnings.append(f"raw payload nested deeper than {MAX_RAW_DEPTH} levels; deeper parts cut")
    return clean


def clean_text(value: Any, warnings: list[str], where: str, limit: int) -> str:
    """Return `value` as text without NULs and at most `limit` characters, noting each change."""
    if not isinstance(value, str):
        warnings.append(f"{where}: converted {json_type(value)} to text")
        value = compact_json(value)
    if NUL in value:
        warnings.append(f"{where}: replaced NUL characters with U+FFFD")
        value = value.replace(NUL, REPLACEMENT)
    if len(value) > limit:
        warnings.append(f"{where}: truncated to {limit} characters")
        value = value[: limit - 1] + _CUT
    return value


def clean_map(value: Any, warnings: list[str], where: str, limit: int) -> dict[str, str]:
    """Return a label/annotation object as dict[str, str]; anything but an object is ignored."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        warnings.append(f"{where}: expected an object, got {json_type(value)}; ignored")
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        name = clean_text(str(key), warnings, f"{where} key", MAX_KEY)
        out[name] = clean_text(item, warnings, f"{where}.{name}", limit)
    return out


def parse_time(value: Any, warnings: list[str], where: str) -> datetime | None:
    """Parse an RFC 3339 / ISO 8601 timestamp to an aware UTC datetime; Go's zero time is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        warnings.append(f"{where}: expected an RFC 3339 timestamp, got {json_type(value)}; ignored")
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            warnings.append(f"{where}: timestamp has no UTC offset; assumed UTC")
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        warnings.append(f"{where}: not an RFC 3339 timestamp ({preview(value, 64)}); ignored")
        return None
    return None if parsed.year <= 1 else parsed


def add_link(links: list[Link], kind: str, url: Any, text: Any, warnings: list[str]) -> None:
    """Append an http(s) link unless it is absent or a duplicate; warn about unsafe ones."""
    if url is None or url == "":
        return
    if kind not in LINK_KINDS:
        kind = "link"
    if not isinstance(url, str):
        warnings.append(f"dropped {kind} link: URL is a {json_type(url)}, not a string")
        return
    url = url.strip()
    try:
        parts = urlsplit(url) if len(url) <= MAX_URL else None
    except ValueError:  # e.g. a malformed IPv6 host
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or _CONTROL.search(url)
    ):
        warnings.append(
            f"dropped {kind} link {preview(url, 80)}: only absolute http(s) URLs are allowed"
        )
        return
    label = clean_text("" if text is None else text, warnings, f"{kind} link text", MAX_SUMMARY)
    link = Link(kind=kind, url=url, text=label)
    if link not in links:
        links.append(link)


def expect_object(payload: Any) -> dict[str, Any]:
    """Return the payload if it is a JSON object, else raise PayloadError naming what came."""
    if not isinstance(payload, dict):
        raise PayloadError(f"payload must be a JSON object, got {json_type(payload)}")
    return payload

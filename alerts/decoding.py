"""Turn a request body into alerts: decode JSON strictly, then parse it in its wire format.

Pure (no database, no HTTP): the ingest views use it to refuse what cannot be taken before
answering, and alerts.processor uses it again to process a stored body after the answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from alerts.sources.base import NormalizedAlert
from alerts.sources.registry import PARSERS


class Rejected(Exception):
    """Refuse the request with `status` and `reason` (recorded on the integration, if known)."""

    def __init__(
        self,
        status: int,
        reason: str,
        problems: list[str] | None = None,
        request: Request | None = None,
    ):
        self.status = status
        self.reason = reason
        self.problems = problems or [reason]
        self.request = request  # what was read of the refused request, when the body was not
        super().__init__(reason)


@dataclass
class Request:
    body: bytes
    content_type: str
    # Repairs made while decoding (e.g. lone surrogates replaced), for every alert's warnings.
    warnings: list[str] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(req: Request) -> Any:
    """Return the decoded JSON body, or refuse it saying precisely what is wrong."""
    media_type = req.content_type.split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise Rejected(415, f"Content-Type must be application/json, not {media_type}")
    if not req.body.strip():
        raise Rejected(400, "body is empty; send a JSON object")
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(
            400, f"body is not valid UTF-8 (byte {req.body[exc.start]:#04x} at {exc.start})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise Rejected(400, "JSON is nested too deeply") from None
    except ValueError as exc:
        raise Rejected(400, f"malformed JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        value, replaced = _replace_lone_surrogates(value)
        if replaced:
            req.warnings.append(
                f"replaced {replaced} lone UTF-16 surrogate escape(s) (\\ud800-\\udfff) with U+FFFD"
            )
    return value


# JSON may escape a UTF-16 surrogate ("\ud800") without its pair; Python decodes that into a
# string that cannot be encoded as UTF-8, which PostgreSQL (and psycopg) would refuse.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> tuple[Any, int]:
    """Replace lone surrogates in every string (keys too) of a decoded value; count them.

    Iterative, since the decoder accepts nesting deeper than Python's recursion limit.
    """
    replaced = 0

    def clean(text: str) -> str:
        nonlocal replaced
        fixed, count = LONE_SURROGATE.subn("\ufffd", text)
        replaced += count
        return fixed

    if isinstance(value, str):
        return clean(value), replaced
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(LONE_SURROGATE.search(key) for key in node):
                items = [(clean(key), item) for key, item in node.items()]
                node.clear()
                node.update(items)
            keys: Any = list(node)
        elif isinstance(node, list):
            keys = range(len(node))
        else:
            continue
        for key in keys:
            item = node[key]
            if isinstance(item, str):
                if LONE_SURROGATE.search(item):
                    node[key] = clean(item)
            elif isinstance(item, dict | list):
                stack.append(item)
    return value, replaced


def add_request_warnings(alerts: list, req: Request) -> None:
    """Give every alert of the request the warnings about repairs made to the whole body."""
    if req.warnings:
        for alert in alerts:
            alert.warnings = [*req.warnings, *alert.warnings]


def parse(kind: str, req: Request, params: dict[str, Any]) -> list[NormalizedAlert]:
    """Decode `req` and parse it as `kind` with the path's `params` (Opsgenie's action).

    Raises Rejected when the body is not JSON, PayloadError when it is not the format.
    """
    if kind == "opsgenie" and params.get("action") != "create" and not req.body.strip():
        payload: Any = {}  # close and acknowledge may come without a body
    else:
        payload = decode_json(req)
    alerts = PARSERS[kind](payload, **params)
    add_request_warnings(alerts, req)
    return alerts

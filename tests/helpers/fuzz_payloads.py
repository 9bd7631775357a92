"""Hypothesis strategies for hostile alert payloads: any JSON, and real payloads mutated.

A real payload from tests/alerts/fixtures with some of its parts replaced by any JSON value
reaches the parsers' inner code (one bad field among good ones), which random JSON rarely does.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.helpers.ingest import FIXTURES

KINDS = ("alertmanager", "grafana", "pagerduty", "opsgenie", "generic")

# Keys and strings parsers look for, so generated objects sometimes use them.
_WORDS = st.sampled_from(
    ["alerts", "labels", "annotations", "status", "firing", "resolved", "startsAt", "endsAt",
     "fingerprint", "groupKey", "generatorURL", "severity", "summary", "payload", "event_action",
     "dedup_key", "routing_key", "message", "alias", "tags", "details", "priority", "links",
     "images", "title", "values", "trigger", "acknowledge", "resolve", "P1", "critical", ""]
)  # fmt: skip
_TEXT = st.one_of(_WORDS, st.text(max_size=30))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=5)),
    max_leaves=25,
)


def fixtures(kind: str) -> list[Any]:
    return [json.loads(path.read_text()) for path in sorted((FIXTURES / kind).glob("*.json"))]


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` with some of its parts (at any depth) replaced, dropped, or added to."""
    if draw(st.integers(min_value=0, max_value=7)) == 0:
        return draw(JSON_VALUES)
    if isinstance(value, dict):
        out = {
            key: draw(mutated(item))
            for key, item in value.items()
            if draw(st.integers(min_value=0, max_value=9))  # now and then a field goes missing
        }
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            out[draw(_TEXT)] = draw(JSON_VALUES)
        return out
    if isinstance(value, list):
        return [draw(mutated(item)) for item in value]
    return value


def payloads(kind: str) -> st.SearchStrategy[Any]:
    """Any JSON value, or a real `kind` payload mutated."""
    return st.one_of(JSON_VALUES, st.sampled_from(fixtures(kind)).flatmap(mutated))


def bodies(kind: str) -> st.SearchStrategy[bytes]:
    """Request bodies: any bytes, or JSON text (sometimes with a lone surrogate or a NUL)."""
    encoded = payloads(kind).map(lambda value: json.dumps(value).encode())
    return st.one_of(
        st.binary(max_size=200),
        encoded,
        encoded.map(lambda body: body.replace(b'""', b'"\\ud800\\u0000"', 1)),
    )

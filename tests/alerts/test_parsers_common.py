"""Pure tests of the parser registry and the helpers in alerts.sources.base."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.sources.base import (
    MAX_RAW_DEPTH,
    Link,
    PayloadError,
    add_link,
    clean_map,
    clean_text,
    compact_json,
    parse_time,
    safe_raw,
    severity_from_label,
)
from alerts.sources.base import _is_safe as is_safe
from alerts.sources.base import _prune as prune
from alerts.sources.registry import PARSERS


def nested(depth: int) -> object:
    """Build a value nested `depth` objects deep without recursion."""
    value: object = "bottom"
    for _ in range(depth):
        value = {"x": value}
    return value


def test_registry_maps_every_kind_to_a_parse_function():
    assert set(PARSERS) == {"alertmanager", "grafana", "pagerduty", "opsgenie", "generic"}
    assert all(callable(parse) for parse in PARSERS.values())


def test_importing_the_parsers_does_not_import_django():
    code = (
        "import sys, alerts.sources.registry; "
        "print(any(m.startswith('django') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("kind", sorted(PARSERS))
@pytest.mark.parametrize("payload", ["just text", 42, None, True, 1.5])
def test_non_object_payload_is_rejected_by_every_parser(kind, payload):
    with pytest.raises(PayloadError) as caught:
        PARSERS[kind](payload)
    assert "must be a JSON object" in caught.value.problems[0]


@pytest.mark.parametrize("kind", ["alertmanager", "grafana", "pagerduty", "opsgenie"])
def test_json_array_payload_is_rejected_by_single_object_formats(kind):
    with pytest.raises(PayloadError, match="must be a JSON object, got array"):
        PARSERS[kind]([{"summary": "x"}])


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", 1),
        ("CRITICAL", 1),
        (" Critical ", 1),
        ("error", 2),
        ("high", 2),
        ("warning", 3),
        ("info", 5),
        ("page", 3),
        ("", 3),
        (None, 3),
        (1, 3),
    ],
)
def test_severity_label_maps_to_scale_one_to_five(label, severity):
    assert severity_from_label(label) == severity


def test_timestamp_with_nanoseconds_parses_to_aware_utc():
    warnings: list[str] = []
    parsed = parse_time("2024-05-14T09:21:30.123456789Z", warnings, "startsAt")
    assert parsed == datetime(2024, 5, 14, 9, 21, 30, 123456, tzinfo=UTC)
    assert parsed.tzinfo is UTC
    assert warnings == []


def test_timestamp_with_offset_is_converted_to_utc():
    parsed = parse_time("2024-05-14T10:00:00+02:00", [], "startsAt")
    assert parsed == datetime(2024, 5, 14, 8, 0, tzinfo=UTC)
    assert parsed.utcoffset().total_seconds() == 0


def test_go_zero_time_means_unset():
    warnings: list[str] = []
    assert parse_time("0001-01-01T00:00:00Z", warnings, "endsAt") is None
    assert warnings == []


def test_timestamp_without_offset_is_assumed_utc_with_warning():
    warnings: list[str] = []
    assert parse_time("2024-05-14 09:00:00", warnings, "t") == datetime(2024, 5, 14, 9, tzinfo=UTC)
    assert warnings == ["t: timestamp has no UTC offset; assumed UTC"]


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", 1715680800, ["x"]])
def test_unparseable_timestamp_is_none_with_warning(value):
    warnings: list[str] = []
    assert parse_time(value, warnings, "startsAt") is None
    assert len(warnings) == 1
    assert warnings[0].startswith("startsAt: ")


def test_timestamp_overflowing_utc_is_none_with_warning():
    warnings: list[str] = []
    assert parse_time("0001-01-01T00:00:00+05:00", warnings, "t") is None
    assert len(warnings) == 1


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        " JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/relative/path",
        "//example.com/protocol-relative",
        "ftp://files.example.com/x",
        "https://example.com/\x00evil",
        "https://example.com/a\nb",
        "http://[::1",
        "https:///no-host",
    ],
)
def test_link_that_is_not_an_absolute_http_url_is_dropped_with_warning(url):
    links: list[Link] = []
    warnings: list[str] = []
    add_link(links, "runbook", url, "", warnings)
    assert links == []
    assert len(warnings) == 1
    assert warnings[0].startswith("dropped runbook link")


def test_http_and_https_links_are_kept_once_with_unknown_kind_as_link():
    links: list[Link] = []
    warnings: list[str] = []
    add_link(links, "dashboard", "https://grafana.example.com/d/x", "CPU", warnings)
    add_link(links, "dashboard", "https://grafana.example.com/d/x", "CPU", warnings)
    add_link(links, "weird", " HTTP://example.com/a ", None, warnings)
    add_link(links, "runbook", "", "", warnings)
    add_link(links, "runbook", None, "", warnings)
    assert links == [
        Link("dashboard", "https://grafana.example.com/d/x", "CPU"),
        Link("link", "HTTP://example.com/a", ""),
    ]
    assert warnings == []


def test_non_string_link_url_is_dropped_with_warning():
    links: list[Link] = []
    warnings: list[str] = []
    add_link(links, "link", {"href": "https://x.example"}, "", warnings)
    assert links == []
    assert warnings == ["dropped link link: URL is a object, not a string"]


def test_nul_characters_are_replaced_with_a_warning():
    warnings: list[str] = []
    assert clean_text("a\x00b\x00", warnings, "labels.x", 100) == "a\ufffdb\ufffd"
    assert warnings == ["labels.x: replaced NUL characters with U+FFFD"]


def test_overlong_text_is_truncated_with_a_warning():
    warnings: list[str] = []
    text = clean_text("x" * 5000, warnings, "labels.x", 4096)
    assert len(text) == 4096
    assert text.endswith("\u2026")
    assert warnings == ["labels.x: truncated to 4096 characters"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(2, "2"), (0.75, "0.75"), (True, "true"), (None, "null"), ({"a": [1, 2]}, '{"a":[1,2]}')],
)
def test_non_string_values_become_compact_json_text_with_warning(value, text):
    warnings: list[str] = []
    assert clean_text(value, warnings, "labels.x", 100) == text
    assert len(warnings) == 1
    assert "converted" in warnings[0]


def test_map_that_is_not_an_object_is_ignored_with_warning():
    warnings: list[str] = []
    assert clean_map(["a=b"], warnings, "labels", 100) == {}
    assert warnings == ["labels: expected an object, got array; ignored"]


def test_thousand_level_nesting_becomes_text_without_recursion_error():
    text = compact_json(nested(1000))
    assert text.startswith('{"x":{"x":')
    assert "\u2026" in text
    assert len(text) < 500


def test_raw_fragment_is_made_storage_safe():
    warnings: list[str] = []
    raw = safe_raw({"deep": nested(1000), "s": "a\x00b"}, warnings)
    assert raw["s"] == "a\ufffdb"
    assert warnings == ["raw payload nested deeper than 64 levels; deeper parts cut"]
    depth, value = 0, raw
    while isinstance(value, dict):
        depth, value = depth + 1, value.get("deep", value.get("x"))
    assert depth <= 65


def test_a_safe_raw_fragment_is_kept_as_is_not_copied():
    fragment = {"labels": {"alertname": "DiskFull"}, "values": [1, 2.5, None, True, ["x"]]}
    warnings: list[str] = []
    assert safe_raw(fragment, warnings) is fragment
    assert warnings == []


def test_a_fragment_just_deep_enough_is_kept_and_one_level_more_is_cut():
    warnings: list[str] = []
    assert safe_raw(nested(MAX_RAW_DEPTH), warnings) == nested(MAX_RAW_DEPTH)
    assert warnings == []
    assert safe_raw(nested(MAX_RAW_DEPTH + 1), warnings) != nested(MAX_RAW_DEPTH + 1)
    assert warnings == ["raw payload nested deeper than 64 levels; deeper parts cut"]


JSON_TEXT = st.text(alphabet=st.sampled_from("ab\x00\u00e9"), max_size=4)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | JSON_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(JSON_TEXT, children, max_size=3)
    ),
    max_leaves=40,
)


@given(value=JSON_VALUES, depth=st.integers(min_value=0, max_value=6))
def test_safe_raw_keeps_a_fragment_exactly_when_pruning_would_change_nothing(value, depth):
    """The shortcut (no copy when nothing needs cleaning) agrees with the full copy."""
    cut: list[bool] = []
    pruned = prune(value, depth, cut)
    assert is_safe(value, depth) == (pruned == value and not cut)


def test_payload_error_lists_problems():
    error = PayloadError(["missing required field 'a'", "'b' must be a list"])
    assert error.problems == ["missing required field 'a'", "'b' must be a list"]
    assert str(error) == "missing required field 'a'; 'b' must be a list"


DEEP = nested(1000)
HOSTILE = {
    "alertmanager": {
        "status": DEEP,
        "groupKey": DEEP,
        "truncatedAlerts": DEEP,
        "alerts": [
            {
                "status": DEEP,
                "labels": DEEP,
                "annotations": {"summary": DEEP, "runbook_url": DEEP},
                "fingerprint": DEEP,
                "startsAt": DEEP,
                "generatorURL": DEEP,
            },
            DEEP,
        ],
    },
    "grafana": {
        "groupLabels": DEEP,
        "alerts": [{"values": {"A": DEEP}, "valueString": DEEP, "silenceURL": DEEP}],
    },
    "pagerduty": {
        "routing_key": "k",
        "event_action": "trigger",
        "dedup_key": "d",
        "payload": {
            "summary": "s",
            "source": "x",
            "severity": "info",
            "component": DEEP,
            "custom_details": DEEP,
            "timestamp": DEEP,
        },
        "links": [{"href": DEEP, "text": DEEP}],
        "images": [DEEP],
        "client": DEEP,
        "client_url": DEEP,
    },
    "opsgenie": {"message": "m", "priority": DEEP, "tags": [DEEP], "details": DEEP, "note": DEEP},
    "generic": {
        "summary": "s",
        "severity": DEEP,
        "labels": {"a": DEEP},
        "links": [{"url": "https://x.example", "kind": DEEP, "text": DEEP}],
        "dedup_key": DEEP,
        "group_key": DEEP,
        "ends_at": DEEP,
    },
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_deep_nesting_in_any_field_yields_alerts_with_warnings(kind):
    alerts = PARSERS[kind](HOSTILE[kind])
    assert alerts
    assert all(a.summary and a.fingerprint and a.warnings for a in alerts)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("pagerduty", {"routing_key": DEEP, "event_action": DEEP, "dedup_key": DEEP}),
        ("pagerduty", {"routing_key": "k", "event_action": "trigger", "payload": DEEP}),
        ("generic", {"summary": DEEP, "status": DEEP}),
        ("generic", {"alerts": DEEP}),
        ("alertmanager", {"alerts": DEEP}),
        ("opsgenie", {"message": DEEP, "alias": DEEP}),
    ],
)
def test_deep_nesting_in_required_fields_is_a_payload_error(kind, payload):
    with pytest.raises(PayloadError) as caught:
        PARSERS[kind](payload)
    assert all(len(problem) < 300 for problem in caught.value.problems)

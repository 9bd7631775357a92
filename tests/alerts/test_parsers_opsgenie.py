"""Pure tests of the Opsgenie Alert API parser against real-shaped requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.sources.base import ACKNOWLEDGED, FIRING, RESOLVED, PayloadError
from alerts.sources.opsgenie import parse

FIXTURES = Path(__file__).parent / "fixtures" / "opsgenie"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_create_yields_one_firing_alert_keyed_by_alias():
    (alert,) = parse(load("create"))
    assert alert.status == FIRING
    assert alert.fingerprint == "Life is too short for no alias"
    assert alert.group_key == alert.fingerprint
    assert alert.summary == "An example alert message"
    assert alert.severity == 1
    assert alert.links == []
    assert alert.warnings == []


def test_tags_entity_and_source_become_labels():
    (alert,) = parse(load("create"))
    assert alert.labels == {
        "OverwriteQuietHours": "true",
        "Critical": "true",
        "env": "prod",
        "entity": "An example entity",
    }


def test_details_description_user_and_note_become_annotations():
    (alert,) = parse(load("create"))
    assert alert.annotations == {
        "key1": "value1",
        "key2": "value2",
        "description": "Every alert needs a description",
        "user": "Monitoring Script",
        "note": "Alert created",
    }


def test_raw_is_the_whole_request_body():
    body = load("create")
    assert parse(body)[0].raw == body


def test_alertmanager_opsgenie_configs_request_parses():
    (alert,) = parse(load("create_from_alertmanager"))
    assert alert.fingerprint.startswith("6d6f2a0b")
    assert alert.severity == 2
    assert alert.labels == {
        "checkout": "true",
        "severity": "error",
        "source": "http://alertmanager.example.com:9093/#/alerts?receiver=opsgenie",
    }
    assert "note" not in alert.annotations
    assert alert.annotations["description"].startswith("Alerts Firing:")
    assert alert.warnings == []


def test_create_without_alias_gets_a_fresh_random_fingerprint():
    first = parse(load("create_minimal"))[0]
    second = parse(load("create_minimal"))[0]
    assert len(first.fingerprint) == 32
    int(first.fingerprint, 16)
    assert first.fingerprint != second.fingerprint
    assert first.severity == 3
    assert first.labels == {}


@pytest.mark.parametrize(
    ("priority", "severity"), [("P1", 1), ("P2", 2), ("P3", 3), ("P4", 4), ("P5", 5), ("p4", 4)]
)
def test_priority_maps_to_severity(priority, severity):
    body = {"message": "m", "priority": priority}
    assert parse(body)[0].severity == severity


@pytest.mark.parametrize("priority", ["P0", "urgent", 1])
def test_unknown_priority_means_p3_with_warning(priority):
    (alert,) = parse({"message": "m", "priority": priority})
    assert alert.severity == 3
    assert alert.warnings[0].startswith("priority: expected P1..P5")


def test_long_message_is_truncated_to_130_characters_with_warning():
    (alert,) = parse({"message": "m" * 200, "alias": "a"})
    assert len(alert.summary) == 130
    assert alert.warnings == ["message: truncated to 130 characters"]


def test_non_string_details_and_tags_are_converted_with_warnings():
    body = {"message": "m", "details": {"count": 3, "nested": {"a": 1}}, "tags": [7]}
    (alert,) = parse(body)
    assert alert.annotations == {"count": "3", "nested": '{"a":1}'}
    assert alert.labels == {"7": "true"}
    assert len(alert.warnings) == 3


def test_tags_that_are_not_a_list_are_ignored_with_warning():
    (alert,) = parse({"message": "m", "tags": "prod,db"})
    assert alert.labels == {}
    assert alert.warnings == ["tags: expected a list, got string; ignored"]


def test_unknown_fields_are_ignored():
    body = load("create")
    body["extraProperties"] = {"new": True}
    assert parse(body)[0].warnings == []


def test_create_without_message_is_rejected_listing_every_problem():
    with pytest.raises(PayloadError) as caught:
        parse({"alias": ["a"], "description": "d"})
    assert caught.value.problems == [
        "missing required field 'message'",
        "'alias' must be a string, got array",
    ]


def test_blank_message_is_rejected():
    with pytest.raises(PayloadError, match="'message' must be a non-empty string"):
        parse({"message": "   "})


def test_close_yields_resolved_alert_for_the_alias():
    (alert,) = parse(load("close"), action="close", identifier="Life is too short for no alias")
    assert alert.status == RESOLVED
    assert alert.fingerprint == alert.group_key == "Life is too short for no alias"
    assert alert.summary == "Close request for alias Life is too short for no alias"
    assert alert.labels == {"source": "AWS Lambda"}
    assert alert.annotations == {
        "user": "Monitoring Script",
        "note": "Action executed via Alert API",
    }


def test_acknowledge_yields_acknowledged_alert_for_the_alias():
    (alert,) = parse(load("acknowledge"), action="acknowledge", identifier="db-2-backup")
    assert alert.status == ACKNOWLEDGED
    assert alert.fingerprint == "db-2-backup"


@pytest.mark.parametrize("body", [{}, None])
def test_close_accepts_an_empty_body(body):
    (alert,) = parse(body, action="close", identifier="db-2-backup", identifier_type="alias")
    assert alert.status == RESOLVED
    assert alert.raw == {}
    assert alert.warnings == []


@pytest.mark.parametrize("identifier_type", ["id", "tiny"])
def test_close_by_id_or_tiny_id_is_rejected_saying_only_alias_works(identifier_type):
    with pytest.raises(PayloadError) as caught:
        parse({}, action="close", identifier="1234", identifier_type=identifier_type)
    assert caught.value.problems == [
        f"identifierType {identifier_type!r} is not supported; only 'alias' is supported"
    ]


def test_close_without_identifier_is_rejected():
    with pytest.raises(PayloadError, match="missing alert identifier in the URL"):
        parse({}, action="close")


def test_close_with_non_object_body_is_rejected():
    with pytest.raises(PayloadError, match="payload must be a JSON object, got array"):
        parse([], action="acknowledge", identifier="x")


def test_unknown_action_is_rejected():
    with pytest.raises(PayloadError, match="unsupported action 'snooze'"):
        parse({}, action="snooze", identifier="x")


def test_thousand_level_nested_details_do_not_crash():
    deep: object = "bottom"
    for _ in range(1000):
        deep = [deep]
    (alert,) = parse({"message": "m", "details": {"deep": deep}})
    assert alert.annotations["deep"].startswith("[[[[")
    assert "raw payload nested deeper than 64 levels; deeper parts cut" in alert.warnings

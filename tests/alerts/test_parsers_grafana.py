"""Pure tests of the Grafana unified alerting webhook parser against real-shaped payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.sources.base import FIRING, RESOLVED, PayloadError, fingerprint_of
from alerts.sources.grafana import parse

FIXTURES = Path(__file__).parent / "fixtures" / "grafana"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_firing_batch_yields_one_alert_per_element():
    alerts = parse(load("firing_v11"))
    assert [a.fingerprint for a in alerts] == ["2bd4b6c02e5a33a1", "8f03a1c77d9e2b40"]
    assert [a.status for a in alerts] == [FIRING, FIRING]
    assert [a.summary for a in alerts] == ["High CPU on web-1:9100", "High CPU on web-2:9100"]
    assert all(a.severity == 3 for a in alerts)
    assert all(a.warnings == [] for a in alerts)


def test_group_key_is_the_senders_group_key():
    alerts = parse(load("firing_v11"))
    assert alerts[0].group_key.endswith(
        ':{alertname="High CPU usage", grafana_folder="Infrastructure"}'
    )
    assert alerts[0].group_key == alerts[1].group_key


def test_every_grafana_url_becomes_a_link_of_its_kind():
    first = parse(load("firing_v11"))[0]
    assert [link.kind for link in first.links] == [
        "generator",
        "silence",
        "dashboard",
        "panel",
        "image",
        "runbook",
    ]
    image = first.links[4]
    assert (
        image.url == "https://grafana.example.com/public/img/attachments/lpyKWqUmkGiY0v8ePtjo.png"
    )


def test_alert_without_image_has_no_image_link():
    second = parse(load("firing_v11"))[1]
    assert "image" not in [link.kind for link in second.links]


def test_values_become_value_annotations_and_value_string_is_kept():
    first = parse(load("firing_v11"))[0]
    assert first.annotations["value.A"] == "93.41666666666667"
    assert first.annotations["value.C"] == "1"
    assert first.annotations["valueString"].startswith("[ var='A' labels={instance=web-1:9100}")
    assert first.annotations["summary"] == "High CPU on web-1:9100"


def test_annotation_defined_by_the_rule_wins_over_a_value():
    payload = load("firing_v11")
    payload["alerts"][0]["annotations"]["value.A"] = "93%"
    assert parse(payload)[0].annotations["value.A"] == "93%"


def test_null_value_is_kept_as_null_text():
    payload = load("firing_v11")
    payload["alerts"][0]["values"] = {"A": None}
    assert parse(payload)[0].annotations["value.A"] == "null"


def test_values_that_are_not_an_object_are_ignored_with_warning():
    payload = load("firing_v11")
    payload["alerts"][0]["values"] = [93.4]
    alert = parse(payload)[0]
    assert "value.A" not in alert.annotations
    assert "values: expected an object, got array; ignored" in alert.warnings


def test_resolved_alert_has_status_and_end_time():
    (alert,) = parse(load("resolved_v10"))
    assert alert.status == RESOLVED
    assert alert.severity == 1
    assert alert.starts_at == datetime(2024, 2, 11, 22, 14, 10, tzinfo=UTC)
    assert alert.ends_at == datetime(2024, 2, 11, 22, 31, 10, tzinfo=UTC)
    assert alert.annotations["value.B"] == "12.0"


def test_empty_urls_are_skipped_silently():
    (alert,) = parse(load("resolved_v10"))
    assert [link.kind for link in alert.links] == ["generator", "silence"]
    assert alert.warnings == []


def test_test_notification_without_values_or_generator_parses_cleanly():
    (alert,) = parse(load("test_notification_v9"))
    assert alert.fingerprint == "57c6d9296de2ad39"
    assert alert.summary == "Notification test"
    assert alert.labels == {"alertname": "TestAlert", "instance": "Grafana"}
    assert [link.kind for link in alert.links] == ["silence"]
    assert alert.annotations["valueString"] == "[ metric='foo' labels={instance=bar} value=10 ]"
    assert alert.starts_at == datetime(2023, 1, 6, 14, 46, 48, 434497, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.warnings == []


def test_missing_fingerprint_falls_back_to_hash_of_sorted_labels():
    payload = load("test_notification_v9")
    del payload["alerts"][0]["fingerprint"]
    (alert,) = parse(payload)
    assert alert.fingerprint == fingerprint_of(
        [("alertname", "TestAlert"), ("instance", "Grafana")]
    )


def test_unsafe_grafana_urls_are_dropped_with_warning():
    payload = load("firing_v11")
    payload["alerts"][0]["panelURL"] = "javascript:alert(1)"
    payload["alerts"][0]["imageURL"] = "data:image/png;base64,iVBORw0KGgo="
    alert = parse(payload)[0]
    assert "panel" not in [link.kind for link in alert.links]
    assert "image" not in [link.kind for link in alert.links]
    assert len([w for w in alert.warnings if w.startswith("dropped ")]) == 2


def test_raw_is_the_alerts_own_element():
    payload = load("firing_v11")
    assert [a.raw for a in parse(payload)] == payload["alerts"]


def test_legacy_grafana_payload_is_rejected_with_a_hint():
    with pytest.raises(PayloadError) as caught:
        parse(load("legacy_alerting"))
    assert caught.value.problems[0] == "missing required field 'alerts'"
    assert "legacy Grafana" in caught.value.problems[1]


def test_missing_alerts_is_rejected_without_legacy_hint():
    with pytest.raises(PayloadError) as caught:
        parse({"receiver": "muster", "status": "firing", "version": "1"})
    assert caught.value.problems == ["missing required field 'alerts'"]

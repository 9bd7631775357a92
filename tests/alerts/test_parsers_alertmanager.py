"""Pure tests of the Alertmanager webhook parser against real-shaped payloads."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.sources.alertmanager import parse
from alerts.sources.base import FIRING, RESOLVED, Link, PayloadError, fingerprint_of

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_batch_yields_one_alert_per_element_in_order():
    alerts = parse(load("firing_batch"))
    assert [a.labels["instance"] for a in alerts] == [
        "web-1.prod.example.com:9100",
        "web-2.prod.example.com:9100",
        "web-3.prod.example.com:9100",
    ]
    assert all(a.warnings == [] for a in alerts)


def test_resolved_alert_in_batch_keeps_its_own_status():
    alerts = parse(load("firing_batch"))
    assert [a.status for a in alerts] == [FIRING, FIRING, RESOLVED]


def test_fingerprint_is_the_senders_fingerprint():
    alerts = parse(load("firing_batch"))
    assert [a.fingerprint for a in alerts] == [
        "3e9c2f1a7b8d4c05",
        "a41f0e6b92c3d718",
        "c07d55e19f3a2b64",
    ]


def test_missing_fingerprint_falls_back_to_hash_of_sorted_labels():
    payload = load("resolved")
    del payload["alerts"][0]["fingerprint"]
    shuffled = copy.deepcopy(payload)
    shuffled["alerts"][0]["labels"] = dict(reversed(payload["alerts"][0]["labels"].items()))
    (alert,) = parse(payload)
    labels = payload["alerts"][0]["labels"]
    assert alert.fingerprint == fingerprint_of(sorted(labels.items()))
    assert parse(shuffled)[0].fingerprint == alert.fingerprint


def test_group_key_is_the_senders_group_key():
    alerts = parse(load("firing_batch"))
    assert {a.group_key for a in alerts} == {'{}/{env="production"}:{alertname="InstanceDown"}'}


def test_group_key_falls_back_to_hash_of_group_labels():
    alerts = parse(load("malformed_batch"))
    assert {a.group_key for a in alerts} == {fingerprint_of([("alertname", "DiskFull")])}


def test_timestamps_are_aware_utc_and_zero_ends_at_is_unset():
    first, _, resolved = parse(load("firing_batch"))
    assert first.starts_at == datetime(2024, 5, 14, 9, 21, 30, 123456, tzinfo=UTC)
    assert first.ends_at is None
    assert resolved.ends_at == datetime(2024, 5, 14, 9, 19, 45, 2000, tzinfo=UTC)


def test_start_time_with_offset_is_normalized_to_utc():
    alert = parse(load("truncated_newer_fields"))[0]
    assert alert.starts_at == datetime(2024, 5, 14, 8, 0, tzinfo=UTC)


def test_summary_prefers_summary_annotation():
    (alert,) = parse(load("resolved"))
    assert alert.summary == "Pod is crash looping."


def test_summary_falls_back_to_description_then_alertname():
    with_description, bare = parse(load("truncated_newer_fields"))
    assert with_description.summary == "checkout 5xx ratio is 12.5% over the last 10m"
    assert bare.summary == "HighLatency"


def test_summary_is_never_empty():
    payload = {"alerts": [{"labels": {}, "annotations": {"summary": "   "}}]}
    assert parse(payload)[0].summary == "(no summary)"


def test_overlong_summary_is_truncated_with_warning():
    payload = load("resolved")
    payload["alerts"][0]["annotations"]["summary"] = "s" * 3000
    (alert,) = parse(payload)
    assert len(alert.summary) == 1024
    assert "summary: truncated to 1024 characters" in alert.warnings


@pytest.mark.parametrize(
    ("label", "severity"),
    [("critical", 1), ("error", 2), ("high", 2), ("warning", 3), ("info", 5), ("page", 3)],
)
def test_severity_comes_from_the_severity_label(label, severity):
    payload = load("resolved")
    payload["alerts"][0]["labels"]["severity"] = label
    assert parse(payload)[0].severity == severity


def test_missing_severity_label_means_three():
    assert parse(load("truncated_newer_fields"))[1].severity == 3


def test_generator_and_runbook_become_links():
    (alert,) = parse(load("resolved"))
    assert [link.kind for link in alert.links] == ["generator", "runbook"]
    assert alert.links[1] == Link(
        "runbook",
        "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
    )


def test_dashboard_annotation_becomes_link_and_javascript_runbook_is_dropped():
    alert = parse(load("truncated_newer_fields"))[0]
    assert [(link.kind, link.url) for link in alert.links] == [
        (
            "generator",
            "http://prometheus.example.com:9090/graph?g0.expr=job%3Acheckout_errors%3Aratio10m+%3E+0.05",
        ),
        ("dashboard", "https://grafana.example.com/d/checkout/checkout-overview?orgId=1"),
    ]
    assert any(w.startswith("dropped runbook link 'javascript:") for w in alert.warnings)
    assert alert.annotations["runbook"] == "javascript:alert(document.cookie)"


def test_empty_generator_url_adds_no_link_and_no_warning():
    bare = parse(load("truncated_newer_fields"))[1]
    assert bare.links == []
    assert not any("link" in w for w in bare.warnings)


def test_truncated_alerts_are_tolerated_and_reported_on_each_alert():
    alerts = parse(load("truncated_newer_fields"))
    note = "sender left 17 alerts out of this notification (truncatedAlerts)"
    assert len(alerts) == 2
    assert all(note in a.warnings for a in alerts)


def test_unknown_and_newer_fields_are_ignored_silently():
    bare = parse(load("truncated_newer_fields"))[1]
    assert bare.warnings == ["sender left 17 alerts out of this notification (truncatedAlerts)"]


def test_non_string_label_value_is_converted_with_warning():
    alert = parse(load("truncated_newer_fields"))[0]
    assert alert.labels["replica"] == "2"
    assert "labels.replica: converted number to text" in alert.warnings


def test_raw_is_the_alerts_own_element():
    payload = load("firing_batch")
    alerts = parse(payload)
    assert [a.raw for a in alerts] == payload["alerts"]


def test_malformed_alerts_in_a_batch_are_all_kept():
    alerts = parse(load("malformed_batch"))
    assert len(alerts) == 3
    assert all(a.status == FIRING for a in alerts)
    assert len({a.fingerprint for a in alerts}) == 3


def test_labels_given_as_a_list_are_ignored_with_warning():
    listed = parse(load("malformed_batch"))[0]
    assert listed.labels == {}
    assert "labels: expected an object, got array; ignored" in listed.warnings
    assert listed.summary == "Disk almost full on db-1"
    assert listed.fingerprint == fingerprint_of(listed.raw)


def test_unparseable_start_time_is_unset_with_warning():
    listed, _, epoch = parse(load("malformed_batch"))
    assert listed.starts_at is None
    assert any(w.startswith("startsAt: not an RFC 3339 timestamp") for w in listed.warnings)
    assert epoch.starts_at is None
    assert any(w.startswith("startsAt: expected an RFC 3339 timestamp") for w in epoch.warnings)


def test_element_that_is_not_an_object_still_yields_an_alert():
    odd = parse(load("malformed_batch"))[1]
    assert odd.raw == "not an alert at all"
    assert odd.fingerprint == fingerprint_of("not an alert at all")
    assert odd.summary == "(no summary)"
    assert odd.severity == 3
    assert "alert: expected an object, got string; kept with defaults" in odd.warnings


def test_missing_status_falls_back_to_group_status_and_nul_is_replaced():
    last = parse(load("malformed_batch"))[2]
    assert last.status == FIRING
    assert "status: missing; using 'firing'" in last.warnings
    assert last.summary == "Disk almost full on db-2\ufffd (97%)"
    assert "annotations.summary: replaced NUL characters with U+FFFD" in last.warnings
    assert last.severity == 1


def test_thousand_level_nested_label_value_does_not_crash():
    payload = load("resolved")
    deep: object = "bottom"
    for _ in range(1000):
        deep = {"x": deep}
    payload["alerts"][0]["labels"]["weird"] = deep
    (alert,) = parse(payload)
    assert alert.labels["weird"].startswith('{"x":')
    assert "labels.weird: converted object to text" in alert.warnings
    assert "raw payload nested deeper than 64 levels; deeper parts cut" in alert.warnings


def test_empty_alert_list_yields_no_alerts():
    assert parse({"version": "4", "status": "firing", "alerts": []}) == []


def test_missing_alerts_is_rejected_naming_the_field():
    with pytest.raises(PayloadError) as caught:
        parse({"version": "4", "status": "firing", "receiver": "muster"})
    assert caught.value.problems == ["missing required field 'alerts'"]


def test_alerts_that_is_not_a_list_is_rejected():
    with pytest.raises(PayloadError) as caught:
        parse({"alerts": {"status": "firing"}})
    assert caught.value.problems == ["'alerts' must be a list, got object"]

"""Pure tests of Muster's generic JSON alert format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.sources.base import FIRING, RESOLVED, Link, PayloadError, fingerprint_of
from alerts.sources.generic import parse

FIXTURES = Path(__file__).parent / "fixtures" / "generic"


def load(name: str) -> object:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def problems_of(payload: object) -> list[str]:
    with pytest.raises(PayloadError) as caught:
        parse(payload)
    return caught.value.problems


def test_single_object_yields_one_alert_with_every_field_mapped():
    (alert,) = parse(load("single"))
    assert alert.fingerprint == "cert-expiry/shop.example.com"
    assert alert.status == FIRING
    assert alert.summary == "Certificate for shop.example.com expires in 6 days"
    assert alert.severity == 3
    assert alert.labels == {"service": "shop", "check": "cert-expiry"}
    assert alert.annotations == {"expires_at": "2024-06-20T00:00:00Z", "issuer": "R3"}
    assert alert.links == [
        Link("source", "https://crt.sh/?q=shop.example.com", "crt.sh"),
        Link("runbook", "https://wiki.example.com/runbooks/renew-cert", "Renew"),
    ]
    assert alert.starts_at == datetime(2024, 6, 14, 6, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.group_key is None
    assert alert.warnings == []


def test_list_yields_alerts_with_their_own_status_and_group_key():
    dlq, retry = parse(load("list"))
    assert (dlq.status, retry.status) == (FIRING, RESOLVED)
    assert (dlq.severity, retry.severity) == (2, 5)
    assert dlq.group_key == retry.group_key == "orders-queues"
    assert retry.ends_at == datetime(2024, 6, 14, 6, 30, tzinfo=UTC)


def test_missing_dedup_key_defaults_to_hash_of_summary_and_labels():
    dlq, _ = parse(load("list"))
    labels = {"service": "orders", "queue": "orders-dlq"}
    assert dlq.fingerprint == fingerprint_of("Queue orders-dlq has 1,204 messages", labels)
    reordered = {"summary": dlq.summary, "labels": dict(reversed(labels.items()))}
    assert parse(reordered)[0].fingerprint == dlq.fingerprint


def test_wrapped_alerts_tolerate_unknown_fields():
    (alert,) = parse(load("wrapped"))
    assert alert.summary == "cron job nightly-report did not run"
    assert alert.severity == 4
    assert alert.raw["sent_by"] == "healthcheck.sh v2.1"


def test_non_string_label_value_is_converted_with_warning():
    (alert,) = parse(load("wrapped"))
    assert alert.labels["attempt"] == "3"
    assert "labels.attempt: converted number to text" in alert.warnings


def test_only_absolute_http_links_survive():
    (alert,) = parse(load("wrapped"))
    assert alert.links == [Link("link", "https://cron.example.com/jobs/nightly-report", "")]
    dropped = [w for w in alert.warnings if w.startswith("dropped link")]
    assert len(dropped) == 2
    assert "'data:text/html,<script>alert(1)</script>'" in dropped[0]


def test_unknown_link_kind_becomes_link_with_warning():
    (alert,) = parse({"summary": "s", "links": [{"url": "https://x.example", "kind": "video"}]})
    assert alert.links == [Link("link", "https://x.example", "")]
    assert alert.warnings == ["links[0]: unknown kind 'video'; using 'link'"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", 1),
        ("error", 2),
        ("HIGH", 2),
        ("warning", 3),
        ("info", 5),
        (1, 1),
        (5, 5),
        ("2", 2),
        (None, 3),
    ],
)
def test_severity_accepts_names_and_numbers_one_to_five(severity, expected):
    (alert,) = parse({"summary": "s", "severity": severity})
    assert alert.severity == expected
    assert alert.warnings == []


@pytest.mark.parametrize("severity", [0, 6, "urgent", True, 2.5, "P1"])
def test_unknown_severity_means_three_with_warning(severity):
    (alert,) = parse({"summary": "s", "severity": severity})
    assert alert.severity == 3
    assert alert.warnings[0].startswith("severity: unknown value")


def test_status_is_case_insensitive():
    assert parse({"summary": "s", "status": "Resolved"})[0].status == RESOLVED


def test_nul_in_summary_and_labels_is_replaced_with_warnings():
    (alert,) = parse({"summary": "bad\x00byte", "labels": {"k\x00": "v\x00"}})
    assert alert.summary == "bad\ufffdbyte"
    assert alert.labels == {"k\ufffd": "v\ufffd"}
    assert len(alert.warnings) == 3


def test_overlong_summary_and_label_are_truncated_with_warnings():
    (alert,) = parse({"summary": "s" * 5000, "labels": {"blob": "b" * 10000}})
    assert len(alert.summary) == 1024
    assert len(alert.labels["blob"]) == 4096
    assert alert.warnings == [
        "summary: truncated to 1024 characters",
        "labels.blob: truncated to 4096 characters",
    ]


def test_bad_optional_fields_are_repaired_not_rejected():
    payload = {
        "summary": "s",
        "labels": ["a", "b"],
        "annotations": {"n": 1},
        "links": "https://x.example",
        "starts_at": "soon",
        "dedup_key": 99,
    }
    (alert,) = parse(payload)
    assert alert.labels == {}
    assert alert.annotations == {"n": "1"}
    assert alert.links == []
    assert alert.starts_at is None
    assert alert.fingerprint == "99"
    assert len(alert.warnings) == 5


def test_thousand_level_nested_annotation_does_not_crash():
    deep: object = "bottom"
    for _ in range(1000):
        deep = {"x": deep}
    (alert,) = parse({"summary": "s", "annotations": {"deep": deep}})
    assert alert.annotations["deep"].startswith('{"x":{"x":')


def test_empty_list_yields_no_alerts():
    assert parse([]) == []
    assert parse({"alerts": []}) == []


def test_missing_summaries_are_all_listed_by_position():
    assert problems_of({"alerts": [{"labels": {}}, {"summary": "ok"}, {"summary": ""}]}) == [
        "alerts[0]: missing required field 'summary'",
        "alerts[2]: 'summary' must be a non-empty string",
    ]


def test_single_object_problems_have_no_position():
    assert problems_of({"status": "ok"}) == [
        "missing required field 'summary'",
        "'status' must be 'firing' or 'resolved' (got 'ok')",
    ]


def test_list_with_non_object_is_rejected():
    assert problems_of([{"summary": "s"}, "oops"]) == ["[1]: must be an object, got string"]


def test_alerts_that_is_not_a_list_is_rejected():
    assert problems_of({"alerts": {"summary": "s"}}) == ["'alerts' must be a list, got object"]


@pytest.mark.parametrize("payload", ["text", 3, None, True])
def test_scalar_payload_is_rejected(payload):
    assert problems_of(payload)[0].startswith("payload must be a JSON object or a list")

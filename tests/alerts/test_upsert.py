"""The upsert stores exactly what the parser made of each alert, however many travel in one
statement (on PostgreSQL, one JSON document of rows): text with quotes, backslashes, percent
signs and any script; times to the microsecond, or none; the raw body as sent."""

from __future__ import annotations

import json

from alerts.models import Alert
from alerts.processor import process_pending
from tests.helpers.ingest import stored

TRICKY = [
    'it\'s "quoted" \\ back\\slashed',
    "%s %(name)s %% {}",
    "Ünïcödé — 日本語 — 🚨",
    "line\nbreak\ttab",
]


def am_alert(i: int, text: str, *, starts: str, ends: str) -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": f"A{i}", "severity": "critical", "note": text},
        "annotations": {"summary": text, "runbook_url": "https://runbooks.example.com/a?b=1&c='2'"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "https://prometheus.example.com/graph?g0.expr=up%3D%3D0",
        "fingerprint": f"fp-{i}",
    }


def test_a_batch_stores_each_alert_exactly_as_parsed(client, make_integration):
    integration = make_integration()
    alerts = [
        am_alert(
            i,
            text,
            starts=f"2024-05-14T09:21:30.{i:06d}Z",
            ends="0001-01-01T00:00:00Z" if i % 2 else "2024-05-14T10:00:00+02:00",
        )
        for i, text in enumerate(TRICKY)
    ]
    request = stored(client, integration, {"status": "firing", "groupKey": "g", "alerts": alerts})
    process_pending()

    for i, sent in enumerate(alerts):
        alert = Alert.objects.get(integration=integration, fingerprint=sent["fingerprint"])
        assert alert.summary == TRICKY[i]
        assert alert.labels == sent["labels"]
        assert alert.annotations == sent["annotations"]
        assert alert.starts_at.microsecond == i
        assert (alert.ends_at is None) == bool(i % 2)
        assert [link["kind"] for link in alert.links] == ["generator", "runbook"]
        assert alert.links[1]["url"] == sent["annotations"]["runbook_url"]
        assert json.loads(bytes(alert.raw)) == sent
        assert (alert.occurrences, alert.status, alert.severity) == (1, "firing", 1)
    assert request.pk


def test_a_repeat_counts_and_refreshes_what_senders_update(client, make_integration):
    integration = make_integration()
    first = am_alert(0, "first", starts="2024-05-14T09:21:30Z", ends="0001-01-01T00:00:00Z")
    other = am_alert(1, "other", starts="2024-05-14T09:21:30Z", ends="0001-01-01T00:00:00Z")
    stored(client, integration, {"status": "firing", "groupKey": "g", "alerts": [first, other]})
    process_pending()
    again = {**first, "annotations": {"summary": "now it's worse"}}
    stored(client, integration, {"status": "firing", "groupKey": "g", "alerts": [again, other]})
    process_pending()

    alert = Alert.objects.get(integration=integration, fingerprint=first["fingerprint"])
    assert (alert.occurrences, alert.summary) == (2, "now it's worse")
    assert alert.labels == first["labels"]  # identity is kept
    assert json.loads(bytes(alert.raw)) == again

"""Ingest counters at /metrics grow by what each request did (counters are per process)."""

from __future__ import annotations

import pytest

from alerts.models import Kind, Silence
from tests.alerts.payloads import am_alert, am_batch, metric_value
from tests.helpers.api import METRICS_AUTH


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus-metrics")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


@pytest.fixture
def scrape(client):
    def read(name: str, **labels: str) -> float:
        response = client.get("/metrics", **METRICS_AUTH)
        assert response.status_code == 200
        return metric_value(response.content.decode(), name, **labels)

    return read


def test_received_and_deduplicated_counters_grow_by_the_alerts_counted(post_json, url, scrape):
    name = {"integration": "prometheus-metrics"}
    received = scrape("muster_alerts_received_total", **name)
    deduplicated = scrape("muster_alerts_deduplicated_total", **name)

    post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2")))
    post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2"), am_alert("fp-3")))

    assert scrape("muster_alerts_received_total", **name) == received + 5
    assert scrape("muster_alerts_deduplicated_total", **name) == deduplicated + 2


def test_silenced_counter_grows(post_json, url, scrape):
    Silence.objects.create(
        matchers=[{"label": "alertname", "op": "=", "value": "Quiet"}],
        starts_at="2000-01-01T00:00:00Z",
        ends_at="2999-01-01T00:00:00Z",
        comment="noise",
    )
    before = scrape("muster_alerts_silenced_total", integration="prometheus-metrics")

    post_json(url, am_batch(am_alert("fp-q", alertname="Quiet"), am_alert("fp-loud")))

    after = scrape("muster_alerts_silenced_total", integration="prometheus-metrics")
    assert after == before + 1


def test_rejected_counter_grows_per_refusal_and_reason(client, url, scrape):
    labels = {"integration": "prometheus-metrics", "reason": "400"}
    before_400 = scrape("muster_ingest_rejected_total", **labels)
    before_415 = scrape("muster_ingest_rejected_total", **{**labels, "reason": "415"})

    client.post(url, b"{nope", content_type="application/json")
    client.post(url, b"[]]", content_type="application/json")
    client.post(url, b"<x/>", content_type="text/xml")

    assert scrape("muster_ingest_rejected_total", **labels) == before_400 + 2
    assert scrape("muster_ingest_rejected_total", **{**labels, "reason": "415"}) == before_415 + 1


def test_unknown_tokens_count_as_rejected_for_unknown(post_json, scrape, db):
    labels = {"integration": "unknown", "reason": "404"}
    before = scrape("muster_ingest_rejected_total", **labels)

    post_json("/integrations/alertmanager/0123456789abcdef0123456789abcdef/", {})

    assert scrape("muster_ingest_rejected_total", **labels) == before + 1


def test_refused_requests_are_not_counted_as_received(client, url, scrape):
    name = {"integration": "prometheus-metrics"}
    received = scrape("muster_alerts_received_total", **name)

    client.post(url, b"{nope", content_type="application/json")

    assert scrape("muster_alerts_received_total", **name) == received

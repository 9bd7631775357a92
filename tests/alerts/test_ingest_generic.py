"""Muster's own JSON format through HTTP: its three shapes and grouping by labels."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from alerts.models import Alert, AlertStatus, Kind
from alerts.processor import process_pending
from incidents.models import Incident, Status
from tests.alerts.payloads import generic_alert
from tests.helpers.ingest import load_fixture, results_of


@pytest.fixture
def generic(make_integration):
    return make_integration(Kind.GENERIC, name="cron-scripts")


@pytest.fixture
def url(generic):
    return f"/integrations/generic/{generic.token}/"


def test_single_alert_object_opens_an_incident(post_json, url):
    response = post_json(url, load_fixture("generic", "single"))

    assert response.status_code == 200
    body = response.json()
    assert body["received"] == 1
    assert results_of(response)[0]["fingerprint"] == "cert-expiry/shop.example.com"
    assert results_of(response)[0]["action"] == "opened"
    incident = Incident.objects.get()
    assert results_of(response)[0]["incident"] == incident.number
    assert incident.title == "Certificate for shop.example.com expires in 6 days"
    assert incident.severity == 3
    alert = Alert.objects.get()
    assert [link["kind"] for link in alert.links] == ["source", "runbook"]


def test_list_of_alerts_is_taken_in_order(post_json, url):
    response = post_json(url, load_fixture("generic", "list"))

    assert response.status_code == 200
    # The second is a resolve for an alert never seen firing.
    assert [a["action"] for a in results_of(response)] == ["opened", "ignored"]
    assert Incident.objects.get().severity == 2


def test_alerts_wrapped_in_an_object_are_taken_with_warnings(post_json, url):
    response = post_json(url, load_fixture("generic", "wrapped"))

    assert response.status_code == 200
    assert results_of(response)[0]["action"] == "opened"
    warnings = response.json()["warnings"]
    assert any("only absolute http(s) URLs" in w for w in warnings)
    alert = Alert.objects.get()
    assert alert.labels["attempt"] == "3"
    assert alert.warnings == warnings


def test_resolved_with_the_same_dedup_key_resolves(post_json, url):
    post_json(url, generic_alert("disk full", dedup_key="disk/db-1"))

    response = post_json(url, generic_alert("disk full", dedup_key="disk/db-1", status="resolved"))

    assert results_of(response)[0]["action"] == "resolved"
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert Incident.objects.get().status == Status.RESOLVED


def test_same_alertname_and_service_labels_join_one_incident(post_json, url):
    labels = {"alertname": "DiskFull", "service": "db"}
    first = post_json(url, generic_alert("db-1 disk full", labels={**labels, "host": "db-1"}))
    second = post_json(url, generic_alert("db-2 disk full", labels={**labels, "host": "db-2"}))

    assert results_of(first)[0]["action"] == "opened"
    assert results_of(second)[0]["action"] == "attached"
    assert Incident.objects.count() == 1
    assert Incident.objects.get().alerts.count() == 2


def test_different_alertname_opens_a_second_incident(post_json, url):
    post_json(url, generic_alert("disk", labels={"alertname": "DiskFull", "service": "db"}))
    post_json(url, generic_alert("cpu", labels={"alertname": "HighCPU", "service": "db"}))

    assert Incident.objects.count() == 2


def test_different_service_label_opens_a_second_incident(post_json, url):
    post_json(url, generic_alert("disk", labels={"alertname": "DiskFull", "service": "db"}))
    post_json(url, generic_alert("disk", labels={"alertname": "DiskFull", "service": "web"}))

    assert Incident.objects.count() == 2


def test_alerts_without_grouping_labels_stay_apart(post_json, url):
    post_json(url, generic_alert("first thing broke"))
    post_json(url, generic_alert("second thing broke"))

    assert Incident.objects.count() == 2


def test_configured_group_by_labels_are_respected(post_json, url, service):
    service.group_by_labels = ["cluster"]
    service.save()

    post_json(url, generic_alert("a", labels={"alertname": "DiskFull", "cluster": "eu-1"}))
    post_json(url, generic_alert("b", labels={"alertname": "HighCPU", "cluster": "eu-1"}))
    post_json(url, generic_alert("c", labels={"alertname": "DiskFull", "cluster": "us-1"}))

    assert Incident.objects.count() == 2
    assert sorted(i.alerts.count() for i in Incident.objects.all()) == [1, 2]


def test_explicit_group_key_wins_over_labels(post_json, url):
    post_json(
        url,
        [
            generic_alert("a", labels={"alertname": "A"}, group_key="orders"),
            generic_alert("b", labels={"alertname": "B"}, group_key="orders"),
        ],
    )

    assert Incident.objects.count() == 1
    assert Incident.objects.get().alerts.count() == 2


def test_numeric_severity_and_severity_names_map(post_json, url):
    post_json(url, generic_alert("x", severity="critical", dedup_key="x"))
    post_json(url, generic_alert("y", severity=4, dedup_key="y"))

    assert set(Incident.objects.values_list("severity", flat=True)) == {1, 4}


# --- signed generic requests (review L8): Grafana's scheme, the same headers ----------------

SECRET = "generic-shared-secret"


def _signature(body: bytes, timestamp: str | None = None, secret: str = SECRET) -> str:
    message = f"{timestamp}:".encode() + body if timestamp else body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@pytest.fixture
def signed_url(make_integration):
    integration = make_integration(
        Kind.GENERIC, name="signed-scripts", hmac_secret=SECRET, hmac_header="X-Muster-Signature"
    )
    return f"/integrations/generic/{integration.token}/"


def test_a_generic_integration_with_a_secret_refuses_an_unsigned_request(post_json, signed_url):
    response = post_json(signed_url, load_fixture("generic", "single"))

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "missing signature header X-Muster-Signature"
    assert Alert.objects.count() == 0


def test_a_generic_request_signed_with_a_timestamp_is_taken(client, signed_url):
    body = json.dumps(load_fixture("generic", "single")).encode()
    stamp = str(int(time.time()))
    response = client.post(
        signed_url,
        body,
        content_type="application/json",
        headers={
            "X-Muster-Signature": _signature(body, stamp),
            "X-Muster-Signature-Timestamp": stamp,
        },
    )

    assert response.status_code == 200
    process_pending()
    assert Incident.objects.count() == 1


def test_a_generic_request_with_a_wrong_or_stale_signature_is_refused(client, signed_url):
    body = json.dumps(load_fixture("generic", "single")).encode()
    stale = str(int(time.time()) - 600)
    for headers in (
        {"X-Muster-Signature": _signature(body, secret="guessed")},
        {"X-Muster-Signature": _signature(body, stale), "X-Muster-Signature-Timestamp": stale},
    ):
        response = client.post(signed_url, body, content_type="application/json", headers=headers)
        assert response.status_code == 401
    assert Alert.objects.count() == 0

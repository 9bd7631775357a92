"""Grafana unified-alerting webhooks through HTTP, including the optional HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from alerts.models import Alert, AlertStatus, IngestRequest, Kind, Outcome
from alerts.processor import process_pending
from incidents.models import Incident, Status
from tests.helpers.ingest import load_fixture, results_of

SECRET = "grafana-shared-secret"


def sign(body: bytes, secret: str = SECRET, timestamp: str | None = None) -> str:
    message = f"{timestamp}:".encode() + body if timestamp else body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@pytest.fixture
def grafana(make_integration):
    return make_integration(Kind.GRAFANA, name="grafana-cloud")


@pytest.fixture
def signed_grafana(make_integration):
    return make_integration(Kind.GRAFANA, name="grafana-signed", hmac_secret=SECRET)


def path(integration) -> str:
    return f"/integrations/grafana/{integration.token}/"


def body_of(name: str) -> bytes:
    return json.dumps(load_fixture("grafana", name)).encode()


def rejections(integration):
    return IngestRequest.objects.filter(integration=integration, outcome=Outcome.REJECTED)


def test_firing_notification_opens_one_incident_with_both_alerts(post_json, grafana):
    response = post_json(path(grafana), load_fixture("grafana", "firing_v11"))

    assert response.status_code == 200
    incident = Incident.objects.get()
    assert [a["action"] for a in results_of(response)] == ["opened", "attached"]
    assert incident.alerts.count() == 2
    assert incident.severity == 3  # severity=warning
    alert = Alert.objects.get(fingerprint="2bd4b6c02e5a33a1")
    assert alert.annotations["value.A"] == "93.41666666666667"
    assert {link["kind"] for link in alert.links} >= {"silence", "dashboard", "panel", "image"}


def test_resolved_notification_resolves_the_alert_and_its_incident(post_json, grafana):
    firing = load_fixture("grafana", "resolved_v10")
    firing["status"] = "firing"
    firing["alerts"][0]["status"] = "firing"
    firing["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    post_json(path(grafana), firing)
    assert Incident.objects.get().status == Status.TRIGGERED

    response = post_json(path(grafana), load_fixture("grafana", "resolved_v10"))

    assert response.status_code == 200
    assert results_of(response)[0]["action"] == "resolved"
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert Incident.objects.get().status == Status.RESOLVED


def test_test_notification_from_the_contact_point_is_accepted(post_json, grafana):
    response = post_json(path(grafana), load_fixture("grafana", "test_notification_v9"))

    assert response.status_code == 200
    assert results_of(response)[0]["action"] == "opened"


def test_legacy_grafana_alert_is_refused_with_a_hint(post_json, grafana):
    response = post_json(path(grafana), load_fixture("grafana", "legacy_alerting"))

    assert response.status_code == 400
    problems = response.json()["error"]["problems"]
    assert any("legacy Grafana" in p for p in problems)
    assert rejections(grafana).count() == 1


def test_correct_body_signature_is_accepted(client, signed_grafana):
    body = body_of("firing_v11")

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={"X-Grafana-Alerting-Signature": sign(body)},
    )

    assert response.status_code == 200
    process_pending()
    assert Incident.objects.count() == 1


def test_signature_over_timestamp_and_body_is_accepted(client, signed_grafana):
    body = body_of("firing_v11")
    timestamp = str(int(time.time()))

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={
            "X-Grafana-Alerting-Signature": sign(body, timestamp=timestamp),
            "X-Grafana-Alerting-Signature-Timestamp": timestamp,
        },
    )

    assert response.status_code == 200
    process_pending()
    assert Incident.objects.count() == 1


def test_timestamped_signature_under_the_other_documented_timestamp_header_is_accepted(
    client, signed_grafana
):
    # Grafana's timestamp header has no default name; its provisioning examples also use this.
    body = body_of("firing_v11")
    timestamp = str(int(time.time()))

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={
            "X-Grafana-Alerting-Signature": sign(body, timestamp=timestamp),
            "X-Grafana-Alerting-Timestamp": timestamp,
        },
    )

    assert response.status_code == 200


def test_signature_under_grafanas_own_default_header_name_is_accepted(client, signed_grafana):
    # grafana/alerting's signer falls back to X-Grafana-Alert-Signature when Header is empty.
    body = body_of("firing_v11")

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={"X-Grafana-Alert-Signature": sign(body)},
    )

    assert response.status_code == 200


def test_body_signature_with_a_timestamp_that_was_not_signed_is_refused(client, signed_grafana):
    body = body_of("firing_v11")

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={
            "X-Grafana-Alerting-Signature": sign(body, timestamp="1700000000"),
            "X-Grafana-Alerting-Signature-Timestamp": "1700000001",
        },
    )

    assert response.status_code == 401


def test_forged_signature_is_refused_and_recorded(client, signed_grafana):
    body = body_of("firing_v11")

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={"X-Grafana-Alerting-Signature": sign(body, secret="guessed")},
    )

    assert response.status_code == 401
    assert "does not match" in response.json()["error"]["message"]
    assert Incident.objects.count() == 0
    assert Alert.objects.count() == 0
    rejected = rejections(signed_grafana).get()
    assert rejected.status_code == 401
    assert "X-Grafana-Alerting-Signature" in rejected.reason
    assert bytes(rejected.body) == body[:1024]


def test_signature_of_a_different_body_is_refused(client, signed_grafana):
    body = body_of("firing_v11")
    tampered = body.replace(b"web-1:9100", b"web-9:9100")

    response = client.post(
        path(signed_grafana),
        tampered,
        content_type="application/json",
        headers={"X-Grafana-Alerting-Signature": sign(body)},
    )

    assert response.status_code == 401
    assert Incident.objects.count() == 0


def test_missing_signature_is_refused_and_recorded(post_json, signed_grafana):
    response = post_json(path(signed_grafana), load_fixture("grafana", "firing_v11"))

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message == "missing signature header X-Grafana-Alerting-Signature"
    assert rejections(signed_grafana).get().status_code == 401
    assert Incident.objects.count() == 0


def test_non_ascii_signature_header_is_refused_not_a_server_error(client, signed_grafana):
    response = client.post(
        path(signed_grafana),
        body_of("firing_v11"),
        content_type="application/json",
        HTTP_X_GRAFANA_ALERTING_SIGNATURE="é" * 64,
    )

    assert response.status_code == 401


def test_custom_signature_header_name_is_used(client, make_integration):
    integration = make_integration(
        Kind.GRAFANA, name="grafana-custom", hmac_secret=SECRET, hmac_header="X-Muster-Signature"
    )
    body = body_of("firing_v11")

    wrong_header = client.post(
        path(integration),
        body,
        content_type="application/json",
        headers={"X-Grafana-Alerting-Signature": sign(body)},
    )
    right_header = client.post(
        path(integration),
        body,
        content_type="application/json",
        headers={"X-Muster-Signature": sign(body)},
    )

    assert wrong_header.status_code == 401
    assert "X-Muster-Signature" in wrong_header.json()["error"]["message"]
    assert right_header.status_code == 200
    process_pending()
    assert Incident.objects.count() == 1


def test_without_a_secret_no_signature_is_needed(post_json, grafana):
    response = post_json(path(grafana), load_fixture("grafana", "firing_v11"))

    assert response.status_code == 200


# --- replay (review L6) -----------------------------------------------------------------------


def post_stamped(client, integration, body: bytes, timestamp: str, signed_stamp: str | None = None):
    return client.post(
        path(integration),
        body,
        content_type="application/json",
        headers={
            "X-Grafana-Alerting-Signature": sign(body, timestamp=signed_stamp or timestamp),
            "X-Grafana-Alerting-Signature-Timestamp": timestamp,
        },
    )


def test_a_signed_timestamp_older_than_five_minutes_is_refused_as_a_replay(client, signed_grafana):
    body = body_of("firing_v11")
    old = str(int(time.time()) - 301)

    response = post_stamped(client, signed_grafana, body, old)

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "X-Grafana-Alerting-Signature-Timestamp" in message
    assert "more than 5 minutes ago are refused as replays" in message
    assert Alert.objects.count() == 0
    assert rejections(signed_grafana).get().status_code == 401


def test_a_signed_timestamp_just_inside_the_window_is_accepted(client, signed_grafana):
    body = body_of("firing_v11")
    recent = str(int(time.time()) - 240)

    assert post_stamped(client, signed_grafana, body, recent).status_code == 200


def test_a_signed_timestamp_far_in_the_future_is_refused(client, signed_grafana):
    body = body_of("firing_v11")
    ahead = str(int(time.time()) + 3600)

    response = post_stamped(client, signed_grafana, body, ahead)

    assert response.status_code == 401
    assert "in the future" in response.json()["error"]["message"]


def test_a_timestamp_that_is_no_unix_time_is_refused(client, signed_grafana):
    response = post_stamped(client, signed_grafana, body_of("firing_v11"), "yesterday")

    assert response.status_code == 401
    assert "must be a Unix time" in response.json()["error"]["message"]


def test_a_body_signature_does_not_pass_with_a_fresh_timestamp_added(client, signed_grafana):
    # A captured body-only request, replayed with a current timestamp the attacker cannot sign.
    body = body_of("firing_v11")

    response = client.post(
        path(signed_grafana),
        body,
        content_type="application/json",
        headers={
            "X-Grafana-Alerting-Signature": sign(body),
            "X-Grafana-Alerting-Signature-Timestamp": str(int(time.time())),
        },
    )

    assert response.status_code == 401
    assert Alert.objects.count() == 0

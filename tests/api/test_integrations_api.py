"""The integrations API: kinds, secrets shown only to admins, rotation, deletion, heartbeats."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from alerts.models import IngestRequest, Integration, Kind, Outcome
from tests.helpers.api import API, add_alert, assert_error
from tests.helpers.ingest import load_fixture

INTEGRATIONS = API + "integrations/"


def create(client, service, **fields):
    payload = {"name": f"{fields.get('kind', 'generic')}-new", "service": service.pk, **fields}
    return client.post(INTEGRATIONS, payload, format="json")


@pytest.mark.parametrize("kind", [k.value for k in Kind])
def test_an_admin_creates_each_kind_and_sees_where_it_posts(as_alice, service, kind):
    response = create(as_alice, service, kind=kind)
    assert response.status_code == 201, response.content
    body = response.json()
    integration = Integration.objects.get(pk=body["id"])
    assert body["kind"] == kind
    assert body["token"] == integration.token
    assert len(integration.token) == 32
    assert body["ingest_url"] == settings.PUBLIC_URL + integration.ingest_path
    if kind in ("pagerduty", "opsgenie"):
        assert body["ingest_url"].endswith("/v2/enqueue" if kind == "pagerduty" else "/v2/alerts")
    else:
        assert body["ingest_url"].endswith(f"/integrations/{kind}/{integration.token}/")


def test_an_unknown_kind_is_refused(as_alice, service):
    assert_error(create(as_alice, service, kind="nagios"), 400, "kind:", "nagios")


@pytest.mark.parametrize("who", ["as_bob", "as_charlie"])
def test_only_admins_see_the_ingest_url_and_token(request, who, make_integration):
    integration = make_integration(Kind.PAGERDUTY)
    client = request.getfixturevalue(who)
    for body in (
        client.get(f"{INTEGRATIONS}{integration.pk}/").json(),
        client.get(INTEGRATIONS).json()["results"][0],
    ):
        assert body["name"] == integration.name
        assert body["ingest_url"] is None
        assert body["token"] is None
    assert integration.token not in client.get(INTEGRATIONS).content.decode()


def test_a_client_cannot_choose_the_token(as_alice, service):
    response = create(as_alice, service, kind="generic", token="0" * 32)
    assert response.status_code == 201
    assert response.json()["token"] != "0" * 32


def test_put_can_rename_but_cannot_change_the_kind(as_alice, make_integration, service):
    integration = make_integration(Kind.ALERTMANAGER, name="prom")
    url = f"{INTEGRATIONS}{integration.pk}/"
    renamed = as_alice.put(
        url, {"name": "prom-eu", "kind": "alertmanager", "service": service.pk}, format="json"
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "prom-eu"
    for method in ("put", "patch"):
        refused = getattr(as_alice, method)(
            url, {"name": "prom-eu", "kind": "grafana", "service": service.pk}, format="json"
        )
        assert_error(refused, 400, "kind: an integration's kind cannot change")
    integration.refresh_from_db()
    assert integration.kind == Kind.ALERTMANAGER


def test_rotating_changes_the_token_and_the_old_url_stops_working(
    as_alice, make_integration, client
):
    integration = make_integration(Kind.ALERTMANAGER)
    old_url = integration.ingest_path
    old_token = integration.token
    payload = load_fixture("alertmanager", "firing_batch")
    assert client.post(old_url, payload, content_type="application/json").status_code == 200

    rotated = as_alice.post(f"{INTEGRATIONS}{integration.pk}/rotate/")
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["token"] != old_token
    assert body["token_rotated_at"] is not None
    assert old_token not in body["ingest_url"]

    assert client.post(old_url, payload, content_type="application/json").status_code == 404
    new_path = body["ingest_url"].removeprefix(settings.PUBLIC_URL)
    assert client.post(new_path, payload, content_type="application/json").status_code == 200


def test_an_integration_with_alerts_cannot_be_deleted(as_alice, make_integration):
    used = make_integration(Kind.ALERTMANAGER, name="used")
    add_alert(used)
    assert_error(as_alice.delete(f"{INTEGRATIONS}{used.pk}/"), 409, "disable it instead")
    assert Integration.objects.filter(pk=used.pk).exists()

    unused = make_integration(Kind.GENERIC, name="unused")
    assert as_alice.delete(f"{INTEGRATIONS}{unused.pk}/").status_code == 204
    assert not Integration.objects.filter(pk=unused.pk).exists()


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"heartbeat_interval_seconds": 5}, "heartbeat_interval_seconds: must be at least 10"),
        ({"heartbeat_interval_seconds": 0}, "heartbeat_interval_seconds:"),
        ({"heartbeat_interval_seconds": -60}, "heartbeat_interval_seconds:"),
        ({"heartbeat_interval_seconds": "often"}, "heartbeat_interval_seconds:"),
        ({"heartbeat_grace_seconds": -1}, "heartbeat_grace_seconds:"),
    ],
)
def test_heartbeat_timing_is_validated(as_alice, service, fields, fragment):
    assert_error(create(as_alice, service, kind="heartbeat", **fields), 400, fragment)
    assert not Integration.objects.exists()


def test_a_heartbeat_takes_a_valid_interval(as_alice, service):
    response = create(
        as_alice,
        service,
        kind="heartbeat",
        heartbeat_interval_seconds=60,
        heartbeat_grace_seconds=30,
    )
    assert response.status_code == 201
    assert response.json()["heartbeat_interval_seconds"] == 60
    assert response.json()["heartbeat_down"] is False


def test_the_hmac_secret_is_write_only(as_alice, as_charlie, service):
    created = create(as_alice, service, kind="grafana", hmac_secret="s3cret-shared")
    assert created.status_code == 201
    assert "hmac_secret" not in created.json()
    assert created.json()["has_hmac_secret"] is True
    integration = Integration.objects.get(pk=created.json()["id"])
    assert integration.hmac_secret == "s3cret-shared"
    for client in (as_alice, as_charlie):
        for url in (INTEGRATIONS, f"{INTEGRATIONS}{integration.pk}/"):
            assert "s3cret-shared" not in client.get(url).content.decode()
    patched = as_alice.patch(f"{INTEGRATIONS}{integration.pk}/", {"enabled": False}, format="json")
    assert "s3cret-shared" not in patched.content.decode()
    integration.refresh_from_db()
    assert integration.hmac_secret == "s3cret-shared"  # a PATCH without it keeps it


def test_rejections_and_requests_list_what_the_integration_received(
    as_charlie, make_integration, client
):
    integration = make_integration(Kind.ALERTMANAGER)
    client.post(integration.ingest_path, b"{not json", content_type="application/json")
    client.post(
        integration.ingest_path,
        load_fixture("alertmanager", "firing_batch"),
        content_type="application/json",
    )
    rejected = as_charlie.get(f"{INTEGRATIONS}{integration.pk}/rejections/").json()["results"]
    accepted = as_charlie.get(f"{INTEGRATIONS}{integration.pk}/requests/").json()["results"]
    assert [r["outcome"] for r in rejected] == ["rejected"]
    assert rejected[0]["status_code"] == 400
    assert rejected[0]["body"] == "{not json"
    assert [r["outcome"] for r in accepted] == ["accepted"]
    assert "alertname" in accepted[0]["body"]


def test_request_bodies_never_show_the_integration_key_to_anyone(
    as_charlie, as_alice, make_integration
):
    integration = make_integration(Kind.PAGERDUTY)
    key = integration.token
    event = {"routing_key": key, "event_action": "trigger", "payload": {"summary": "x"}}
    body = json.dumps(event).encode()
    IngestRequest.objects.create(
        integration=integration,
        received_at="2025-03-01T00:00:00Z",
        outcome=Outcome.ACCEPTED,
        status_code=202,
        body=body,
    )
    # A rejection keeps only the first KiB, which may cut the key short.
    cut = b'{"payload": {"summary": "' + b"x" * 963 + b'"}, "routing_key": "' + key.encode()
    assert cut[:1024].endswith(key[:16].encode())
    IngestRequest.objects.create(
        integration=integration,
        received_at="2025-03-01T00:00:01Z",
        outcome=Outcome.REJECTED,
        status_code=400,
        body=cut[:1024],
    )
    for client in (as_charlie, as_alice):
        for which in ("requests", "rejections"):
            response = client.get(f"{INTEGRATIONS}{integration.pk}/{which}/")
            assert response.status_code == 200
            text = response.content.decode()
            assert key[:8] not in text, which
            assert "routing_key" in text


# --- hmac_secret only where it is verified (review L8) ----------------------------------------


@pytest.mark.parametrize("kind", ["alertmanager", "pagerduty", "opsgenie", "heartbeat"])
def test_an_hmac_secret_is_refused_for_a_kind_that_does_not_verify_it(as_alice, service, kind):
    response = create(as_alice, service, kind=kind, hmac_secret="s3cret")
    assert_error(response, 400, "only Grafana alerting and Generic JSON integrations verify")
    assert not Integration.objects.filter(kind=kind).exists()


def test_an_hmac_secret_is_refused_on_edit_too(as_alice, service, make_integration):
    integration = make_integration(Kind.ALERTMANAGER)
    response = as_alice.patch(
        f"{INTEGRATIONS}{integration.pk}/", {"hmac_secret": "s3cret"}, format="json"
    )
    assert_error(response, 400, "verify a signature")
    integration.refresh_from_db()
    assert integration.hmac_secret == ""


@pytest.mark.parametrize("kind", ["grafana", "generic"])
def test_an_hmac_secret_is_taken_for_the_signing_kinds(as_alice, service, kind):
    response = create(as_alice, service, kind=kind, hmac_secret="s3cret")
    assert response.status_code == 201
    assert response.json()["has_hmac_secret"] is True

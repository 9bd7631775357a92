"""Opsgenie Alert API (POST /v2/alerts, .../close, .../acknowledge) through HTTP."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from alerts.models import Alert, AlertStatus, IngestRequest, Kind, Outcome
from alerts.processor import process_pending
from incidents.models import EntryKind, Incident, Status
from tests.helpers.ingest import load_fixture

ALERTS = "/v2/alerts"
ALIAS = "Life is too short for no alias"


@pytest.fixture
def og(make_integration):
    return make_integration(Kind.OPSGENIE, name="opsgenie-bridge")


@pytest.fixture
def genie(og):
    return {"headers": {"Authorization": f"GenieKey {og.token}"}}


def action_path(alias: str, action: str, identifier_type: str = "alias") -> str:
    return f"{ALERTS}/{quote(alias, safe='')}/{action}?identifierType={identifier_type}"


def assert_opsgenie_accepted(response) -> None:
    assert response.status_code == 202
    body = response.json()
    assert body["result"] == "Request will be processed"
    assert isinstance(body["took"], int | float)
    uuid.UUID(body["requestId"])


def test_create_is_accepted_with_request_id_and_opens_an_incident(post_json, og, genie):
    response = post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)

    assert_opsgenie_accepted(response)
    incident = Incident.objects.get()
    assert incident.title == "An example alert message"
    assert incident.severity == 1  # P1
    alert = Alert.objects.get()
    assert alert.fingerprint == ALIAS
    assert alert.labels["env"] == "prod"
    assert alert.labels["entity"] == "An example entity"
    assert alert.annotations["key1"] == "value1"
    assert IngestRequest.objects.get(integration=og).outcome == Outcome.ACCEPTED


def test_api_key_in_the_query_string_is_accepted_too(post_json, og):
    response = post_json(f"{ALERTS}?apiKey={og.token}", load_fixture("opsgenie", "create_minimal"))

    assert_opsgenie_accepted(response)
    assert Incident.objects.count() == 1


def test_unknown_genie_key_is_401(post_json, og):
    response = post_json(
        ALERTS,
        load_fixture("opsgenie", "create"),
        headers={"Authorization": "GenieKey 00000000-0000-0000-0000-000000000000"},
    )

    assert response.status_code == 401
    assert response.json()["message"] == "Could not authenticate"
    assert "requestId" in response.json()
    assert Incident.objects.count() == 0


def test_missing_authorization_is_401(post_json, og):
    response = post_json(ALERTS, load_fixture("opsgenie", "create"))

    assert response.status_code == 401
    assert response.json()["message"] == "Could not authenticate"


def test_same_alias_is_deduplicated(post_json, og, genie):
    post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)
    response = post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)

    assert_opsgenie_accepted(response)
    assert Incident.objects.count() == 1
    assert Alert.objects.get().occurrences == 2


def test_create_without_alias_opens_a_new_incident_every_time(post_json, og, genie):
    post_json(ALERTS, load_fixture("opsgenie", "create_minimal"), **genie)
    post_json(ALERTS, load_fixture("opsgenie", "create_minimal"), **genie)

    assert Incident.objects.count() == 2


def test_close_by_alias_resolves_the_alert_and_incident(post_json, og, genie):
    post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)

    response = post_json(action_path(ALIAS, "close"), load_fixture("opsgenie", "close"), **genie)

    assert_opsgenie_accepted(response)
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert Incident.objects.get().status == Status.RESOLVED


def test_close_with_an_empty_body_works(client, og, genie):
    client.post(
        ALERTS,
        {"message": "disk full", "alias": "disk-full"},
        content_type="application/json",
        **genie,
    )

    response = client.post(
        action_path("disk-full", "close"), b"", content_type="application/json", **genie
    )

    assert_opsgenie_accepted(response)
    process_pending()
    assert Incident.objects.get().status == Status.RESOLVED


def test_close_without_identifier_type_means_alias(post_json, og, genie):
    post_json(ALERTS, {"message": "disk full", "alias": "disk-full"}, **genie)

    response = post_json(f"{ALERTS}/disk-full/close", {}, **genie)

    assert_opsgenie_accepted(response)
    assert Incident.objects.get().status == Status.RESOLVED


def test_acknowledge_by_alias_acknowledges_the_incident(post_json, og, genie):
    post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)

    response = post_json(
        action_path(ALIAS, "acknowledge"), load_fixture("opsgenie", "acknowledge"), **genie
    )

    assert_opsgenie_accepted(response)
    incident = Incident.objects.get()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert entry.actor_name == "opsgenie-bridge"
    assert entry.source == "alert"


def test_close_for_an_unknown_alias_is_accepted_and_changes_nothing(post_json, og, genie):
    post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)

    response = post_json(action_path("no-such-alias", "close"), {}, **genie)

    assert_opsgenie_accepted(response)
    assert Incident.objects.get().status == Status.TRIGGERED


def test_identifier_type_id_is_422_saying_only_alias_is_supported(post_json, og, genie):
    post_json(ALERTS, load_fixture("opsgenie", "create"), **genie)

    response = post_json(
        action_path("8418d193-2dab-4490-b331-8c02cdd196b7", "close", "id"), {}, **genie
    )

    assert response.status_code == 422
    assert any("only 'alias' is supported" in e for e in response.json()["errors"])
    assert "requestId" in response.json()
    assert Incident.objects.get().status == Status.TRIGGERED
    rejected = IngestRequest.objects.get(integration=og, outcome=Outcome.REJECTED)
    assert rejected.status_code == 422


def test_create_without_message_is_422_naming_it(post_json, og, genie):
    response = post_json(ALERTS, {"alias": "x", "priority": "P2"}, **genie)

    assert response.status_code == 422
    assert response.json()["errors"] == ["missing required field 'message'"]
    rejected = IngestRequest.objects.get(integration=og, outcome=Outcome.REJECTED)
    assert "message" in rejected.reason
    assert Incident.objects.count() == 0


def test_longest_alias_opsgenie_allows_closes_its_own_alert(post_json, og, genie):
    base = "checkout-" + "x" * 400
    first, second = base + "-a", base + "-b"  # one long shared prefix

    post_json(ALERTS, {"message": "first", "alias": first}, **genie)
    post_json(ALERTS, {"message": "second", "alias": second}, **genie)
    assert Incident.objects.count() == 2
    assert Alert.objects.count() == 2

    response = post_json(action_path(first, "close"), {}, **genie)

    assert_opsgenie_accepted(response)
    assert Alert.objects.get(summary="first").status == AlertStatus.RESOLVED
    assert Alert.objects.get(summary="second").status == AlertStatus.FIRING
    assert Incident.objects.get(title="first").status == Status.RESOLVED
    assert Incident.objects.get(title="second").status == Status.TRIGGERED


def test_priority_maps_onto_severity(post_json, og, genie):
    post_json(ALERTS, {"message": "meh", "alias": "p4", "priority": "P4"}, **genie)

    assert Incident.objects.get().severity == 4


def test_alias_with_a_slash_can_be_closed(post_json, og, genie):
    post_json(ALERTS, {"message": "db down", "alias": "checkout/db"}, **genie)

    response = post_json(action_path("checkout/db", "close"), {}, **genie)

    assert_opsgenie_accepted(response)
    assert Incident.objects.get().status == Status.RESOLVED


@pytest.mark.parametrize("action", ["close", "acknowledge"])
def test_alias_with_a_line_break_can_be_closed_and_acknowledged(post_json, og, genie, action):
    # Found by tests/alerts/test_fuzz_ingest.py: the route's `.` did not match "\n" (sent as
    # %0A), so the request got Django's HTML 404 page instead of reaching the alert.
    post_json(ALERTS, {"message": "db down", "alias": "checkout\ndb"}, **genie)

    response = post_json(action_path("checkout\ndb", action), {}, **genie)

    assert_opsgenie_accepted(response)
    assert Incident.objects.get().status != Status.TRIGGERED

"""PagerDuty Events API v2 (POST /v2/enqueue) through HTTP, answered in PagerDuty's contract."""

from __future__ import annotations

import pytest

from alerts.models import Alert, AlertStatus, IngestRequest, Kind, Outcome
from incidents.models import EntryKind, Incident, Status
from tests.alerts.payloads import pd_event, timeline_kinds
from tests.helpers.ingest import load_fixture

ENQUEUE = "/v2/enqueue"


@pytest.fixture
def pd(make_integration):
    return make_integration(Kind.PAGERDUTY, name="datadog-pd")


def fixture_for(integration, name: str) -> dict:
    event = load_fixture("pagerduty", name)
    event["routing_key"] = integration.token
    return event


def test_trigger_is_accepted_with_202_and_its_dedup_key(post_json, pd):
    response = post_json(ENQUEUE, fixture_for(pd, "trigger"))

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "srv01/mysql",
    }
    incident = Incident.objects.get()
    assert incident.title == "DISK at 99% on machine prod-datapipe03.example.com"
    assert incident.severity == 1
    alert = Alert.objects.get()
    assert alert.fingerprint == "srv01/mysql"
    assert alert.integration == pd
    assert alert.incident == incident
    assert alert.labels["source"] == "prod-datapipe03.example.com"
    stored = IngestRequest.objects.get(integration=pd)
    assert stored.outcome == Outcome.ACCEPTED
    assert stored.status_code == 202


def test_trigger_without_dedup_key_gets_a_generated_one(post_json, pd):
    first = post_json(ENQUEUE, fixture_for(pd, "trigger_without_dedup_key"))
    second = post_json(ENQUEUE, fixture_for(pd, "trigger_without_dedup_key"))

    assert first.status_code == second.status_code == 202
    first_key, second_key = first.json()["dedup_key"], second.json()["dedup_key"]
    assert first_key and second_key and first_key != second_key
    assert set(Alert.objects.values_list("fingerprint", flat=True)) == {first_key, second_key}
    assert Incident.objects.count() == 2  # PagerDuty opens a new incident every time


def test_repeated_trigger_with_the_same_dedup_key_is_one_incident(post_json, pd):
    post_json(ENQUEUE, pd_event(pd.token))
    response = post_json(ENQUEUE, pd_event(pd.token))

    assert response.status_code == 202
    assert response.json()["dedup_key"] == "srv01/mysql"
    assert Incident.objects.count() == 1
    assert Alert.objects.get().occurrences == 2


def test_same_dedup_key_on_another_pagerduty_integration_opens_its_own_incident(
    post_json, pd, make_integration
):
    other = make_integration(Kind.PAGERDUTY, name="zabbix-pd")

    post_json(ENQUEUE, pd_event(pd.token))
    post_json(ENQUEUE, pd_event(other.token))

    assert Incident.objects.count() == 2
    assert Alert.objects.filter(fingerprint="srv01/mysql").count() == 2
    assert {a.integration_id for a in Alert.objects.all()} == {pd.pk, other.pk}


def test_resolve_event_resolves_the_alert_and_its_incident(post_json, pd):
    post_json(ENQUEUE, fixture_for(pd, "trigger"))

    response = post_json(ENQUEUE, fixture_for(pd, "resolve"))

    assert response.status_code == 202
    assert response.json()["dedup_key"] == "srv01/mysql"
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert Incident.objects.get().status == Status.RESOLVED


def test_trigger_after_resolve_with_the_same_key_opens_a_new_incident(post_json, pd):
    post_json(ENQUEUE, pd_event(pd.token))
    post_json(ENQUEUE, pd_event(pd.token, "resolve"))

    post_json(ENQUEUE, pd_event(pd.token))

    assert Incident.objects.count() == 2
    assert Incident.objects.open().count() == 1
    assert Alert.objects.filter(status=AlertStatus.FIRING).get().incident.is_open


def test_acknowledge_event_acknowledges_the_incident_as_the_integration(post_json, pd):
    post_json(ENQUEUE, fixture_for(pd, "trigger"))

    response = post_json(ENQUEUE, fixture_for(pd, "acknowledge"))

    assert response.status_code == 202
    assert response.json()["status"] == "success"
    incident = Incident.objects.get()
    assert incident.status == Status.ACKNOWLEDGED
    assert incident.acknowledged_by is None
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert entry.source == "alert"
    assert entry.actor_name == "datadog-pd"
    assert entry.message == "Acknowledged by datadog-pd via alert"
    assert Alert.objects.get().status == AlertStatus.FIRING


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_or_resolve_for_an_unknown_key_changes_nothing(post_json, pd, action):
    post_json(ENQUEUE, pd_event(pd.token, dedup_key="known"))
    incident = Incident.objects.get()
    entries = incident.timeline.count()

    response = post_json(ENQUEUE, pd_event(pd.token, action, dedup_key="never-seen"))

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "never-seen",
    }
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    assert incident.timeline.count() == entries
    assert Alert.objects.get().status == AlertStatus.FIRING


def test_resolve_with_a_key_of_another_integration_changes_nothing(post_json, pd, make_integration):
    other = make_integration(Kind.PAGERDUTY, name="zabbix-pd")
    post_json(ENQUEUE, pd_event(pd.token))

    post_json(ENQUEUE, pd_event(other.token, "resolve"))

    assert Incident.objects.get().status == Status.TRIGGERED
    assert Alert.objects.get().status == AlertStatus.FIRING


def test_unknown_routing_key_is_400_in_pagerdutys_shape(post_json, db):
    response = post_json(ENQUEUE, pd_event("0" * 32))

    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["Invalid routing key"],
    }
    assert Incident.objects.count() == 0


def test_routing_key_of_another_kind_of_integration_is_invalid(post_json, make_integration):
    am = make_integration(Kind.ALERTMANAGER, name="am")

    response = post_json(ENQUEUE, pd_event(am.token))

    assert response.status_code == 400
    assert response.json()["errors"] == ["Invalid routing key"]


def test_invalid_event_lists_every_error_and_is_recorded(post_json, pd):
    response = post_json(
        ENQUEUE,
        {
            "routing_key": pd.token,
            "event_action": "trigger",
            "payload": {"summary": "", "severity": "sev1"},
        },
    )

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert "'payload.summary' must be a non-empty string" in body["errors"]
    assert "missing required field 'payload.source'" in body["errors"]
    assert any("'payload.severity' must be one of" in e for e in body["errors"])
    rejected = IngestRequest.objects.get(integration=pd, outcome=Outcome.REJECTED)
    assert rejected.status_code == 400
    assert "payload.source" in rejected.reason
    assert Incident.objects.count() == 0


def test_missing_routing_key_and_action_are_both_reported(post_json, db):
    response = post_json(ENQUEUE, {"payload": {"summary": "x"}})

    assert response.status_code == 400
    assert response.json()["errors"] == ["missing required field 'routing_key'"]


def test_non_string_routing_key_is_invalid_not_a_server_error(post_json, db):
    response = post_json(ENQUEUE, {"routing_key": ["a"], "event_action": "trigger"})

    assert response.status_code == 400
    assert response.json()["status"] == "invalid event"


def test_routing_key_with_a_nul_character_is_invalid_not_a_server_error(post_json, db):
    response = post_json(ENQUEUE, pd_event("abc\u0000def"))

    assert response.status_code == 400
    assert response.json()["errors"] == ["Invalid routing key"]


def test_over_the_rate_limit_is_429_with_retry_after(post_json, pd, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 2
    # A cache of this test's own: the shared Redis is also counted by parallel test workers.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    statuses = [post_json(ENQUEUE, pd_event(pd.token)).status_code for _ in range(2)]
    throttled = post_json(ENQUEUE, pd_event(pd.token))

    assert statuses == [202, 202]
    assert throttled.status_code == 429
    assert throttled.json()["status"] == "throttle event"
    assert 1 <= int(throttled["Retry-After"]) <= 61
    assert Alert.objects.get().occurrences == 2


def test_alertmanager_pagerduty_configs_events_work(post_json, pd):
    trigger = fixture_for(pd, "alertmanager_pagerduty_configs")

    fired = post_json(ENQUEUE, trigger)

    assert fired.status_code == 202
    assert fired.json()["dedup_key"] == trigger["dedup_key"]
    incident = Incident.objects.get()
    assert incident.title == "[FIRING:2] InstanceDown (node production critical)"
    assert incident.severity == 1
    alert = Alert.objects.get()
    assert alert.annotations["num_firing"] == "2"
    assert {"kind": "source", "url": trigger["client_url"], "text": "Alertmanager"} in alert.links

    resolved = post_json(ENQUEUE, fixture_for(pd, "alertmanager_pagerduty_configs_resolve"))

    assert resolved.status_code == 202
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED
    assert timeline_kinds(incident)[-1] == EntryKind.RESOLVED


def test_trailing_slash_path_works_too(post_json, pd):
    response = post_json(ENQUEUE + "/", pd_event(pd.token))

    assert response.status_code == 202
    assert Incident.objects.count() == 1


def test_routing_key_is_not_kept_in_the_alerts_raw_payload(post_json, pd):
    post_json(ENQUEUE, pd_event(pd.token))

    assert pd.token.encode() not in bytes(Alert.objects.get().raw)


def test_disabled_pagerduty_integration_is_refused_and_recorded(post_json, pd):
    pd.enabled = False
    pd.save()

    response = post_json(ENQUEUE, pd_event(pd.token))

    assert response.status_code == 403
    assert response.json()["status"] == "invalid event"
    assert IngestRequest.objects.get(integration=pd).outcome == Outcome.REJECTED
    assert Incident.objects.count() == 0


def test_events_are_taken_when_the_rate_limit_cache_is_down(post_json, pd, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }

    response = post_json(ENQUEUE, pd_event(pd.token))

    assert response.status_code == 202
    assert Incident.objects.count() == 1

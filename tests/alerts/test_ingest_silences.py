"""Silences and maintenance windows, applied to alerts arriving over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertStatus, Kind, RoutingRule, Silence
from incidents.models import Incident, Service
from tests.alerts.payloads import am_alert, am_batch
from tests.helpers.ingest import results_of


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


def silence(*matchers, service=None, starts=-60, ends=3600):
    now = timezone.now()
    return Silence.objects.create(
        matchers=[{"label": label, "op": op, "value": value} for label, op, value in matchers],
        service=service,
        starts_at=now + timedelta(seconds=starts),
        ends_at=now + timedelta(seconds=ends),
        comment="planned work",
    )


def test_silenced_alert_is_stored_but_opens_no_incident(post_json, url):
    quiet = silence(("instance", "=", "db-1"))

    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    assert response.status_code == 200
    assert results_of(response) == [{"fingerprint": "fp-1", "action": "silenced", "incident": None}]
    alert = Alert.objects.get()
    assert alert.status == AlertStatus.FIRING
    assert alert.silence == quiet
    assert alert.incident is None
    assert Incident.objects.count() == 0


def test_repeats_of_a_silenced_alert_stay_silenced(post_json, url):
    silence(("instance", "=", "db-1"))
    post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    assert results_of(response)[0]["action"] == "silenced"
    assert Alert.objects.get().occurrences == 2
    assert Incident.objects.count() == 0


def test_a_silence_leaves_alerts_it_does_not_match_alone(post_json, url):
    silence(("instance", "=", "db-1"))

    response = post_json(url, am_batch(am_alert("fp-2", instance="db-2")))

    assert results_of(response)[0]["action"] == "opened"
    assert Incident.objects.count() == 1


def test_expired_silence_does_not_apply(post_json, url):
    silence(("instance", "=", "db-1"), starts=-7200, ends=-60)

    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    assert results_of(response)[0]["action"] == "opened"
    assert Alert.objects.get().silence is None


def test_future_silence_does_not_apply_yet(post_json, url):
    silence(("instance", "=", "db-1"), starts=600, ends=3600)

    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    assert results_of(response)[0]["action"] == "opened"


def test_maintenance_window_silences_everything_routed_to_its_service(post_json, url, service):
    silence(service=service)

    response = post_json(
        url, am_batch(am_alert("fp-1", instance="db-1"), am_alert("fp-2", alertname="Other"))
    )

    assert [a["action"] for a in results_of(response)] == ["silenced", "silenced"]
    assert Incident.objects.count() == 0
    assert Alert.objects.filter(silence__isnull=False).count() == 2


def test_maintenance_window_leaves_other_services_alone(post_json, url, am, service):
    other = Service.objects.create(name="payments")
    RoutingRule.objects.create(
        integration=am, service=other, matchers=[{"label": "team", "op": "=", "value": "pay"}]
    )
    silence(service=service)

    response = post_json(
        url, am_batch(am_alert("fp-checkout", team="shop"), am_alert("fp-pay", team="pay"))
    )

    assert [a["action"] for a in results_of(response)] == ["silenced", "opened"]
    assert Incident.objects.get().service == other


def test_service_scoped_silence_with_matchers_needs_both(post_json, url, service):
    silence(("instance", "=", "db-1"), service=service)

    response = post_json(
        url, am_batch(am_alert("fp-1", instance="db-1"), am_alert("fp-2", instance="db-2"))
    )

    assert [a["action"] for a in results_of(response)] == ["silenced", "opened"]


def test_silenced_alert_still_firing_after_the_silence_ended_opens_an_incident(
    post_json, url, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    silence(("instance", "=", "db-1"), starts=-60, ends=600)
    post_json(url, am_batch(am_alert("fp-1", instance="db-1")))
    assert Incident.objects.count() == 0

    time_machine.shift(timedelta(minutes=11))
    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    incident = Incident.objects.get()
    assert results_of(response)[0] == {
        "fingerprint": "fp-1",
        "action": "opened",
        "incident": incident.number,
    }
    alert = Alert.objects.get()
    assert alert.incident == incident
    assert alert.silence is None
    assert alert.occurrences == 2


def test_silenced_alert_that_resolves_is_resolved_without_an_incident(post_json, url):
    silence(("instance", "=", "db-1"))
    post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    response = post_json(url, am_batch(am_alert("fp-1", status="resolved", instance="db-1")))

    assert results_of(response)[0] == {
        "fingerprint": "fp-1",
        "action": "resolved",
        "incident": None,
    }
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert Incident.objects.count() == 0


def test_a_silence_does_not_touch_an_alert_already_in_an_incident(post_json, url):
    post_json(url, am_batch(am_alert("fp-1", instance="db-1")))
    incident = Incident.objects.get()
    silence(("instance", "=", "db-1"))

    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    assert results_of(response)[0]["action"] == "deduplicated"
    assert results_of(response)[0]["incident"] == incident.number


def test_silenced_alert_outliving_its_silence_under_another_silence_stays_silenced(
    post_json, url, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    first = silence(("instance", "=", "db-1"), starts=-60, ends=600)
    second = silence(("alertname", "=", "InstanceDown"), starts=300, ends=3600)
    post_json(url, am_batch(am_alert("fp-1", instance="db-1")))
    assert Alert.objects.get().silence == first

    time_machine.shift(timedelta(minutes=11))
    response = post_json(url, am_batch(am_alert("fp-1", instance="db-1")))

    assert results_of(response)[0]["action"] == "silenced"
    assert Alert.objects.get().silence == second
    assert Incident.objects.count() == 0

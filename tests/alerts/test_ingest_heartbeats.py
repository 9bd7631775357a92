"""Heartbeats over HTTP: pings, the overdue check (and the beat tick that runs it), recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.heartbeats import check_heartbeats
from alerts.models import Alert, AlertStatus, IngestRequest, Integration, Kind, Outcome, Silence
from alerts.silencing import refire_unsilenced
from incidents.models import EntryKind, Incident, Status
from muster.tasks import tick
from tests.alerts.payloads import timeline_kinds
from tests.helpers.api import assert_error

INTERVAL = 300
GRACE = 60


@pytest.fixture
def now(time_machine):
    start = timezone.now().replace(microsecond=0)
    time_machine.move_to(start, tick=False)
    return start


@pytest.fixture
def heartbeat(make_integration, now):
    return make_integration(
        Kind.HEARTBEAT,
        name="nightly-backup",
        heartbeat_interval_seconds=INTERVAL,
        heartbeat_grace_seconds=GRACE,
    )


def ping_url(integration) -> str:
    return f"/integrations/heartbeat/{integration.token}/"


def test_get_ping_records_the_time(client, heartbeat, now):
    response = client.get(ping_url(heartbeat))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "recovered": False}
    heartbeat.refresh_from_db()
    assert heartbeat.last_ping_at == now


def test_post_ping_with_any_body_records_the_time(client, heartbeat, now, time_machine):
    time_machine.shift(timedelta(seconds=30))

    response = client.post(ping_url(heartbeat), b"backup ok: 12GB", content_type="text/plain")

    assert response.status_code == 200
    heartbeat.refresh_from_db()
    assert heartbeat.last_ping_at == now + timedelta(seconds=30)


def test_overdue_heartbeat_opens_an_incident_exactly_once(client, heartbeat, time_machine):
    client.get(ping_url(heartbeat))

    time_machine.shift(timedelta(seconds=INTERVAL + GRACE - 1))
    assert check_heartbeats() == 0
    assert Incident.objects.count() == 0

    time_machine.shift(timedelta(seconds=1))
    assert check_heartbeats() == 1

    incident = Incident.objects.get()
    assert incident.status == Status.TRIGGERED
    assert "No heartbeat from nightly-backup" in incident.title
    alert = Alert.objects.get()
    assert alert.integration == heartbeat
    assert alert.incident == incident
    heartbeat.refresh_from_db()
    assert heartbeat.heartbeat_down is True

    time_machine.shift(timedelta(seconds=INTERVAL))
    assert check_heartbeats() == 0
    assert Incident.objects.count() == 1
    assert Alert.objects.count() == 1


def test_the_beat_tick_runs_the_heartbeat_check(client, heartbeat, time_machine):
    client.get(ping_url(heartbeat))
    time_machine.shift(timedelta(seconds=INTERVAL + GRACE + 1))

    tick()
    tick()

    incident = Incident.objects.get()
    assert incident.status == Status.TRIGGERED
    assert incident.alerts.get().integration == heartbeat


def test_next_ping_resolves_the_heartbeat_incident(client, heartbeat, time_machine):
    client.get(ping_url(heartbeat))
    time_machine.shift(timedelta(seconds=INTERVAL + GRACE))
    check_heartbeats()
    incident = Incident.objects.get()

    response = client.post(ping_url(heartbeat))

    assert response.json() == {"status": "ok", "recovered": True}
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED
    assert timeline_kinds(incident)[-1] == EntryKind.RESOLVED
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    heartbeat.refresh_from_db()
    assert heartbeat.heartbeat_down is False
    assert client.get(ping_url(heartbeat)).json()["recovered"] is False


def test_heartbeat_missed_again_after_recovering_opens_a_new_incident(
    client, heartbeat, time_machine
):
    client.get(ping_url(heartbeat))
    time_machine.shift(timedelta(seconds=INTERVAL + GRACE))
    check_heartbeats()
    client.get(ping_url(heartbeat))

    time_machine.shift(timedelta(seconds=INTERVAL + GRACE))
    assert check_heartbeats() == 1

    assert Incident.objects.count() == 2
    assert Incident.objects.open().count() == 1


def test_never_pinged_heartbeat_counts_from_its_creation(heartbeat, time_machine):
    time_machine.shift(timedelta(seconds=INTERVAL + GRACE - 1))
    assert check_heartbeats() == 0

    time_machine.shift(timedelta(seconds=1))
    assert check_heartbeats() == 1
    assert "since it was created" in Incident.objects.get().title


def test_disabled_heartbeat_is_403_and_never_checked(client, heartbeat, time_machine):
    Integration.objects.filter(pk=heartbeat.pk).update(enabled=False)

    response = client.get(ping_url(heartbeat))

    assert response.status_code == 403
    assert "disabled" in response.json()["error"]["message"]
    heartbeat.refresh_from_db()
    assert heartbeat.last_ping_at is None
    assert IngestRequest.objects.get(integration=heartbeat).outcome == Outcome.REJECTED
    time_machine.shift(timedelta(days=1))
    assert check_heartbeats() == 0
    assert Incident.objects.count() == 0


def test_unknown_heartbeat_token_is_404_in_the_error_shape(client, db):
    # Its "problems" were missing (found by tests/alerts/test_fuzz_ingest.py).
    response = client.get("/integrations/heartbeat/0123456789abcdef0123456789abcdef/")

    assert_error(response, 404, "unknown or rotated heartbeat token")


def test_token_of_another_kind_is_not_a_heartbeat(client, make_integration):
    am = make_integration(Kind.ALERTMANAGER, name="am")

    assert client.get(f"/integrations/heartbeat/{am.token}/").status_code == 404


def test_heartbeat_missed_during_maintenance_pages_once_the_window_ends(
    client, heartbeat, service, time_machine, now
):
    Silence.objects.create(
        service=service,
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        comment="backup host maintenance",
    )
    time_machine.shift(timedelta(seconds=INTERVAL + GRACE))
    check_heartbeats()
    assert Incident.objects.count() == 0
    assert Alert.objects.get().silence is not None

    time_machine.shift(timedelta(minutes=30))
    check_heartbeats()
    refire_unsilenced()
    assert Incident.objects.count() == 0

    time_machine.shift(timedelta(minutes=30))
    check_heartbeats()
    refire_unsilenced()  # the same tick

    incident = Incident.objects.get()
    assert incident.status == Status.TRIGGERED
    assert Alert.objects.get().incident == incident


def test_head_ping_counts_too(client, heartbeat, now):
    assert client.head(ping_url(heartbeat)).status_code == 200
    heartbeat.refresh_from_db()
    assert heartbeat.last_ping_at == now


def test_other_methods_are_405_naming_the_allowed_ones(client, heartbeat):
    response = client.put(ping_url(heartbeat))

    assert response.status_code == 405
    assert response["Allow"] == "GET, POST, HEAD"
    assert response.json()["error"]["status"] == 405
    heartbeat.refresh_from_db()
    assert heartbeat.last_ping_at is None

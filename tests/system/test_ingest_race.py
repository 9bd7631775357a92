"""The concurrency proof: identical alerts fired at the same instant are one incident.

Real HTTP to pytest-django's live server (a thread per connection), real PostgreSQL
transactions, no mocks. Every client opens its connection first, so that when the barrier
releases the threads, all requests are in flight at once, each in its own server thread and
database transaction. Then several processors start at the same instant, as Celery workers
kicked by those requests would. And the pipeline itself, without the processor lock, is raced
directly: its upsert against the partial unique index keeps one alert and one incident.
"""

from __future__ import annotations

import httpx
import pytest
from django.db import connection

from alerts import pipeline
from alerts.models import Alert, AlertStatus, Integration, Kind
from alerts.sources.base import FIRING, NormalizedAlert
from incidents.models import EntryKind, Incident, Service, Status, TimelineEntry
from tests.helpers.ingest import results_of
from tests.helpers.system import (
    fire_at_once,
    process_with_racing_processors,
    require_postgresql,
    run_at_once,
)

CLIENTS = 32
PD_CLIENTS = 20

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture(autouse=True)
def _on_postgresql():
    require_postgresql()


@pytest.fixture(autouse=True)
def _a_connection_for_every_request(_on_postgresql, transactional_db):
    """Size this process's psycopg pool so all racing requests hold a connection at once.

    Production sizes the pool per process with DATABASE_POOL_MAX (default 20); with fewer
    connections than requests the extra requests would queue for one instead of racing.
    """
    pool = connection.pool
    assert pool is not None, "settings.DATABASES has no psycopg pool"
    before = (pool.min_size, pool.max_size)
    pool.resize(CLIENTS + 2, CLIENTS + 8)
    pool.wait(timeout=30)  # open them now, so the race is not with the pool
    yield
    pool.resize(*before)


@pytest.fixture
def checkout() -> Service:
    return Service.objects.create(name="checkout")


def alertmanager_body(fingerprint: str, instance: str) -> dict:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "status": "firing",
        "receiver": "muster",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "instance": instance, "severity": "critical"},
                "annotations": {"summary": f"Disk full on {instance}"},
                "startsAt": "2026-01-01T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=disk",
                "fingerprint": fingerprint,
            }
        ],
    }


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def test_the_same_alert_32_times_at_once_is_one_incident_and_one_alert(live_server, checkout):
    integration = Integration.objects.create(
        name="prometheus", kind=Kind.ALERTMANAGER, service=checkout
    )
    body = alertmanager_body("a1b2c3d4e5f60718", "db-1")

    responses = fire_at_once(live_server.url, integration.ingest_path, [body] * CLIENTS)

    assert statuses(responses) == [200] * CLIENTS, [r.text for r in responses if r.is_error]
    process_with_racing_processors()
    actions = sorted(results_of(r)[0]["action"] for r in responses)
    assert actions == ["deduplicated"] * (CLIENTS - 1) + ["opened"]
    incident = Incident.objects.get()
    assert incident.status == Status.TRIGGERED
    assert {results_of(r)[0]["incident"] for r in responses} == {incident.number}
    alert = Alert.objects.get()
    assert (alert.status, alert.occurrences, alert.incident_id) == (
        AlertStatus.FIRING,
        CLIENTS,
        incident.pk,
    )
    opened = TimelineEntry.objects.filter(kind=EntryKind.OPENED)
    assert [e.incident_id for e in opened] == [incident.pk]
    assert TimelineEntry.objects.filter(kind=EntryKind.ALERT_ATTACHED).count() == 1
    # The 10th repeat is a milestone on the timeline; the other 30 repeats write nothing.
    assert TimelineEntry.objects.filter(kind=EntryKind.ALERT_REPEATED).count() == 1
    assert integration.requests.count() == CLIENTS  # every 200 was stored


def test_32_alerts_of_one_group_at_once_are_one_incident(live_server, checkout):
    integration = Integration.objects.create(
        name="prometheus", kind=Kind.ALERTMANAGER, service=checkout
    )
    bodies = [alertmanager_body(f"fp{i:04d}", f"db-{i}") for i in range(CLIENTS)]

    responses = fire_at_once(live_server.url, integration.ingest_path, bodies)

    assert statuses(responses) == [200] * CLIENTS, [r.text for r in responses if r.is_error]
    process_with_racing_processors()
    actions = sorted(results_of(r)[0]["action"] for r in responses)
    assert actions == ["attached"] * (CLIENTS - 1) + ["opened"]
    incident = Incident.objects.get()
    assert incident.alerts.count() == CLIENTS
    assert set(incident.alerts.values_list("occurrences", flat=True)) == {1}
    assert incident.alerts.filter(status=AlertStatus.FIRING).count() == CLIENTS
    assert incident.timeline.filter(kind=EntryKind.OPENED).count() == 1
    assert incident.timeline.filter(kind=EntryKind.ALERT_ATTACHED).count() == CLIENTS


def test_20_pagerduty_triggers_with_one_dedup_key_at_once_are_one_incident(live_server, checkout):
    integration = Integration.objects.create(
        name="pagerduty", kind=Kind.PAGERDUTY, service=checkout
    )
    event = {
        "routing_key": integration.token,
        "event_action": "trigger",
        "dedup_key": "checkout-latency",
        "payload": {
            "summary": "Checkout p99 latency above 2s",
            "source": "checkout-1",
            "severity": "error",
        },
    }

    responses = fire_at_once(live_server.url, "/v2/enqueue", [event] * PD_CLIENTS)

    assert statuses(responses) == [202] * PD_CLIENTS, [r.text for r in responses if r.is_error]
    process_with_racing_processors()
    assert {r.json()["dedup_key"] for r in responses} == {"checkout-latency"}
    incident = Incident.objects.get()
    assert incident.severity == 2
    alert = Alert.objects.get()
    assert (alert.fingerprint, alert.occurrences, alert.incident_id) == (
        "checkout-latency",
        PD_CLIENTS,
        incident.pk,
    )
    assert incident.timeline.filter(kind=EntryKind.OPENED).count() == 1


def test_the_pipeline_raced_20_times_by_itself_keeps_one_alert_and_one_incident(checkout):
    integration = Integration.objects.create(name="heartbeats", kind=Kind.GENERIC, service=checkout)
    alert = NormalizedAlert(
        fingerprint="raced", status=FIRING, summary="Raced alert", severity=2, group_key="raced"
    )
    run_at_once(lambda: pipeline.ingest(integration, [alert], body=b""), PD_CLIENTS)

    stored = Alert.objects.get()
    incident = Incident.objects.get()
    assert (stored.occurrences, stored.incident_id) == (PD_CLIENTS, incident.pk)
    assert incident.timeline.filter(kind=EntryKind.OPENED).count() == 1

"""A 2xx means durably stored; raw bodies are kept for the retention period, the rest forever."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, IngestRequest, Kind, Outcome
from alerts.pending import pending_requests
from alerts.processor import process_pending
from alerts.tasks import purge_raw_payloads
from incidents.models import Incident, TimelineEntry
from tests.alerts.payloads import am_alert, am_batch, pd_event


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


@pytest.fixture
def now(time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    return start


def test_accepted_request_is_stored_with_its_whole_raw_body(client, url, am):
    body = json.dumps(am_batch(am_alert("fp-1"), am_alert("fp-2"))).encode()

    response = client.post(url, body, content_type="application/json")

    assert response.status_code == 200
    stored = IngestRequest.objects.get(integration=am)
    assert stored.outcome == Outcome.ACCEPTED
    assert stored.status_code == 200
    assert bytes(stored.body) == body
    assert stored.alert_count == 2
    assert stored.content_type == "application/json"


def test_every_sender_gets_its_request_stored(client, make_integration):
    pd = make_integration(Kind.PAGERDUTY, name="pd")
    og = make_integration(Kind.OPSGENIE, name="og")
    pd_body = json.dumps(pd_event(pd.token)).encode()
    og_body = json.dumps({"message": "disk full", "alias": "disk"}).encode()

    assert client.post("/v2/enqueue", pd_body, content_type="application/json").status_code == 202
    assert (
        client.post(
            "/v2/alerts",
            og_body,
            content_type="application/json",
            headers={"Authorization": f"GenieKey {og.token}"},
        ).status_code
        == 202
    )

    assert bytes(IngestRequest.objects.get(integration=pd).body) == pd_body
    assert IngestRequest.objects.get(integration=pd).status_code == 202
    assert bytes(IngestRequest.objects.get(integration=og).body) == og_body


def test_each_alert_keeps_its_own_part_of_the_payload(post_json, url):
    post_json(url, am_batch(am_alert("fp-1", instance="a"), am_alert("fp-2", instance="b")))

    raw = json.loads(bytes(Alert.objects.get(fingerprint="fp-1").raw))
    assert raw["fingerprint"] == "fp-1"
    assert raw["labels"]["instance"] == "a"


def test_a_retried_notification_opens_nothing_new(post_json, url):
    batch = am_batch(am_alert("fp-1"), am_alert("fp-2"))

    for _ in range(3):
        assert post_json(url, batch).status_code == 200

    assert Incident.objects.count() == 1
    assert Alert.objects.count() == 2
    assert IngestRequest.objects.filter(outcome=Outcome.ACCEPTED).count() == 3


def test_purge_drops_old_raw_payloads_but_keeps_incidents_and_timelines(
    client, post_json, url, am, now, time_machine
):
    post_json(url, am_batch(am_alert("fp-1")))
    client.post(url, b"{broken", content_type="application/json")
    incident = Incident.objects.get()
    entries = list(TimelineEntry.objects.filter(incident=incident).values_list("id", "message"))
    assert IngestRequest.objects.count() == 2

    time_machine.shift(timedelta(days=31))
    post_json(url, am_batch(am_alert("fp-fresh"), group_key="fresh"))  # recent: stays whole

    deleted = purge_raw_payloads()

    assert deleted == 2
    assert list(IngestRequest.objects.values_list("alert_count", flat=True)) == [1]
    old = Alert.objects.get(fingerprint="fp-1")
    assert bytes(old.raw) == b""
    assert old.labels["alertname"] == "InstanceDown"
    assert bytes(Alert.objects.get(fingerprint="fp-fresh").raw) != b""
    assert Incident.objects.filter(pk=incident.pk).exists()
    assert (
        list(TimelineEntry.objects.filter(incident=incident).values_list("id", "message"))
        == entries
    )


def test_purge_keeps_payloads_younger_than_the_retention_period(post_json, url, now, time_machine):
    post_json(url, am_batch(am_alert("fp-1")))

    time_machine.shift(timedelta(days=29))

    assert purge_raw_payloads() == 0
    assert IngestRequest.objects.count() == 1
    assert bytes(Alert.objects.get().raw) != b""


def test_purge_keeps_the_raw_payload_of_an_alert_that_keeps_firing(
    post_json, url, now, time_machine
):
    post_json(url, am_batch(am_alert("fp-1")))
    time_machine.shift(timedelta(days=30))
    post_json(url, am_batch(am_alert("fp-1")))
    time_machine.shift(timedelta(days=2))

    purge_raw_payloads()

    assert IngestRequest.objects.count() == 1
    assert bytes(Alert.objects.get().raw) != b""


def test_purge_follows_the_retention_setting(post_json, url, now, time_machine, settings):
    settings.RAW_PAYLOAD_RETENTION_DAYS = 7
    post_json(url, am_batch(am_alert("fp-1")))

    time_machine.shift(timedelta(days=6))
    assert purge_raw_payloads() == 0

    time_machine.shift(timedelta(days=2))
    assert purge_raw_payloads() == 1
    assert IngestRequest.objects.count() == 0
    assert bytes(Alert.objects.get().raw) == b""
    assert Incident.objects.count() == 1


def test_a_concurrent_burst_of_one_alert_processed_by_racing_processors_is_one_incident(
    transactional_db, make_integration
):
    am = make_integration(Kind.ALERTMANAGER, name="burst")
    path = f"/integrations/alertmanager/{am.token}/"
    body = json.dumps(am_batch(am_alert("fp-1"), am_alert("fp-2"))).encode()
    senders = 8
    barrier = threading.Barrier(senders)
    statuses: list[int] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            response = Client().post(path, body, content_type="application/json")
            statuses.append(response.status_code)
            process_pending()  # every sender's thread races to process, as workers would
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * senders
    assert not pending_requests().exists()
    assert Incident.objects.count() == 1
    assert Alert.objects.count() == 2
    assert sorted(Alert.objects.values_list("occurrences", flat=True)) == [senders, senders]
    assert IngestRequest.objects.filter(outcome=Outcome.ACCEPTED).count() == senders

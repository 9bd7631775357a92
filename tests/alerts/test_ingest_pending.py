"""A 2xx means stored; processing follows in order, in batches, and survives bad requests."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.utils import timezone

from alerts import pending, processor
from alerts.models import Alert, AlertStatus, IngestRequest, Kind, Outcome
from alerts.pending import kick_if_stuck, pending_requests
from alerts.processor import process_pending
from alerts.tasks import purge_raw_payloads
from incidents.models import Incident, Status
from tests.alerts.payloads import am_alert, am_batch, pd_event
from tests.helpers.api import METRICS_AUTH
from tests.helpers.celery_tasks import named, sent_tasks


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


def post(client, url: str, payload) -> dict:
    response = client.post(url, json.dumps(payload), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_answer_names_the_stored_request_which_waits_to_be_processed(client, url, am):
    body = post(client, url, am_batch(am_alert("fp-1"), am_alert("fp-2")))

    assert body == {"status": "success", "received": 2, "request": body["request"], "warnings": []}
    stored = IngestRequest.objects.get(pk=body["request"])
    assert (stored.outcome, stored.state, stored.results) == (Outcome.ACCEPTED, "pending", [])
    assert Alert.objects.count() == 0  # not processed yet: only stored

    assert process_pending() == 1

    stored.refresh_from_db()
    incident = Incident.objects.get()
    assert stored.state == "processed"
    assert stored.results == [
        {"fingerprint": "fp-1", "action": "opened", "incident": incident.number},
        {"fingerprint": "fp-2", "action": "attached", "incident": incident.number},
    ]


def test_the_api_shows_each_request_state_and_results(client, url, am, as_alice):
    first = post(client, url, am_batch(am_alert("fp-1")))["request"]
    process_pending()
    second = post(client, url, am_batch(am_alert("fp-1")))["request"]

    listed = as_alice.get(f"/api/v1/integrations/{am.pk}/requests/").json()["results"]

    by_id = {r["id"]: r for r in listed}
    assert by_id[second]["state"] == "pending"
    assert by_id[first]["state"] == "processed"
    assert by_id[first]["results"][0]["action"] == "opened"
    assert by_id[first]["processed_at"] is not None


def test_a_resolve_sent_after_its_trigger_is_processed_after_it(client, url):
    post(client, url, am_batch(am_alert("fp-1")))
    post(client, url, am_batch(am_alert("fp-1", status="resolved")))
    post(client, url, am_batch(am_alert("fp-1")))

    process_pending()  # all three in one batch

    alerts = list(Alert.objects.order_by("id").values_list("status", flat=True))
    assert alerts == [AlertStatus.RESOLVED, AlertStatus.FIRING]
    first, second = Incident.objects.order_by("number")
    assert (first.status, second.status) == (Status.RESOLVED, Status.TRIGGERED)


def test_requests_of_several_integrations_share_one_batch(client, url, make_integration):
    pd = make_integration(Kind.PAGERDUTY, name="pd")
    post(client, url, am_batch(am_alert("fp-1")))
    response = client.post("/v2/enqueue", pd_event(pd.token), content_type="application/json")
    assert response.status_code == 202

    assert process_pending() == 2

    assert Incident.objects.count() == 2
    assert not pending_requests().exists()


def test_a_keyless_pagerduty_trigger_keeps_the_dedup_key_it_was_answered(client, make_integration):
    pd = make_integration(Kind.PAGERDUTY, name="pd")
    event = pd_event(pd.token, dedup_key=None)

    response = client.post("/v2/enqueue", event, content_type="application/json")
    process_pending()

    assert Alert.objects.get().fingerprint == response.json()["dedup_key"]


def test_a_batch_links_its_new_alerts_before_anything_reads_them(client, url):
    # One batch, one transaction: the second request attaches a new alert to the incident and
    # the third resolves the incident's first alert. The new alert's link is written once per
    # batch, yet the resolve must see it (the incident still has a firing alert), and the
    # fourth request's repeat must find its incident.
    post(client, url, am_batch(am_alert("fp-1"), group_key="g"))
    process_pending()
    post(client, url, am_batch(am_alert("fp-2"), group_key="g"))
    post(client, url, am_batch(am_alert("fp-1", status="resolved"), group_key="g"))
    post(client, url, am_batch(am_alert("fp-2"), group_key="g"))

    assert process_pending() == 3

    incident = Incident.objects.get()
    assert incident.status == Status.TRIGGERED  # fp-2 still fires
    fp2 = Alert.objects.get(fingerprint="fp-2")
    assert (fp2.incident_id, fp2.occurrences) == (incident.pk, 2)
    assert not Alert.objects.filter(incident__isnull=True).exists()


def test_batches_are_cut_by_alert_count(client, url, monkeypatch):
    monkeypatch.setattr(processor, "BATCH_ALERTS", 3)
    for i in range(4):
        post(client, url, am_batch(am_alert(f"a{i}"), am_alert(f"b{i}"), group_key=f"g{i}"))

    assert process_pending() == 4  # one request (2 alerts) per batch: two would exceed 3

    assert Incident.objects.count() == 4
    assert Alert.objects.count() == 8


def test_a_request_that_cannot_be_processed_holds_up_no_other(client, url, am):
    good_before = post(client, url, am_batch(am_alert("fp-1"), group_key="a"))["request"]
    # Stored as accepted, but not a valid Alertmanager body: processing it raises.
    bad = pending.accept(
        am, body=b'{"alerts": 7}', content_type="application/json", alert_count=1, warnings=[]
    )
    good_after = post(client, url, am_batch(am_alert("fp-2"), group_key="b"))["request"]

    process_pending()

    bad.refresh_from_db()
    assert bad.state == "failed"
    assert bad.attempts == processor.MAX_ATTEMPTS
    assert "PayloadError" in bad.error
    assert bytes(bad.body) == b'{"alerts": 7}'  # stored raw and shown, never dropped
    for pk in (good_before, good_after):
        assert IngestRequest.objects.get(pk=pk).state == "processed"
    assert Incident.objects.count() == 2


def test_one_alert_that_cannot_be_processed_fails_on_its_own(client, url, am):

    # A poisoned alert: the database refuses to store it, every time.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION muster_test_poison() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF NEW.fingerprint = 'poison' THEN "
                "RAISE EXCEPTION 'poisoned alert'; END IF; RETURN NEW; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER muster_test_poison BEFORE INSERT ON alerts_alert "
                "FOR EACH ROW EXECUTE FUNCTION muster_test_poison()"
            )
        else:  # SQLite, as the embedded mode runs
            cursor.execute(
                "CREATE TRIGGER muster_test_poison BEFORE INSERT ON alerts_alert "
                "WHEN NEW.fingerprint = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned alert'); END"
            )
    batch = am_batch(am_alert("fp-1"), am_alert("poison"), am_alert("fp-2"), group_key="g")
    request = post(client, url, batch)["request"]

    process_pending()

    stored = IngestRequest.objects.get(pk=request)
    actions = {r["fingerprint"]: r["action"] for r in stored.results}
    assert actions == {"fp-1": "opened", "poison": "failed", "fp-2": "attached"}
    assert stored.state == "failed" and "1 of 3 alerts failed: poison" in stored.error
    assert "poisoned alert" in stored.error
    assert set(Alert.objects.values_list("fingerprint", flat=True)) == {"fp-1", "fp-2"}
    assert Incident.objects.count() == 1


def test_a_database_failure_mid_batch_leaves_everything_pending_for_the_next_try(
    client, url, monkeypatch
):
    post(client, url, am_batch(am_alert("fp-1")))
    post(client, url, am_batch(am_alert("fp-1")))

    def broken(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(processor, "_mark_processed", broken)  # the batch's last statement
        with pytest.raises(OperationalError):
            process_pending()

    assert pending_requests().count() == 2
    assert Alert.objects.count() == 0 and Incident.objects.count() == 0

    assert process_pending() == 2
    assert Alert.objects.get().occurrences == 2  # processed exactly once each
    assert Incident.objects.count() == 1


@pytest.fixture
def kicks(settings):
    """The processor tasks sent to the broker while the test runs (no worker takes them); one
    lane, whose kick key is lane 0's."""
    settings.INGEST_LANES = 1
    with sent_tasks() as sent:
        yield lambda: len(named(sent, "alerts.process_ingest_requests"))


def test_the_view_kicks_one_processor_for_a_burst(client, url, kicks):
    for i in range(5):
        post(client, url, am_batch(am_alert(f"fp-{i}")))

    assert kicks() == 1  # the key stays set until a processor has drained the queue
    process_pending()
    assert cache.get(pending.kick_key(0)) is None
    post(client, url, am_batch(am_alert("fp-late")))
    assert kicks() == 2


def test_within_the_memo_a_process_does_not_look_at_the_kick_again(
    client, url, monkeypatch, settings, kicks
):
    settings.INGEST_KICK_MEMO_SECONDS = 60  # the whole test is within it
    monkeypatch.setattr(pending, "_kick_seen_at", {})
    post(client, url, am_batch(am_alert("fp-0")))
    assert kicks() == 1
    cache.delete(pending.kick_key(0))  # as a processor does once it has drained the queue

    for i in range(1, 5):
        post(client, url, am_batch(am_alert(f"fp-{i}")))

    # Without the memo, the first of these would have found the key gone and kicked again.
    assert kicks() == 1
    assert cache.get(pending.kick_key(0)) is None


def test_a_request_stored_just_after_the_processor_cleared_the_kick_is_processed(
    client, url, monkeypatch, settings
):
    # The race the memo opens: a request that remembered the key as set commits just after a
    # processor cleared it. The processor's last look comes twice the memo's time after the
    # clear, so it sees the request; here the request lands during that wait.
    settings.INGEST_KICK_MEMO_SECONDS = 0.01
    post(client, url, am_batch(am_alert("fp-first"), group_key="a"))
    waits: list[float] = []

    def a_request_lands(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            post(client, url, am_batch(am_alert("fp-racing"), group_key="b"))

    monkeypatch.setattr(processor, "_sleep", a_request_lands)

    assert process_pending() == 2

    assert waits == [0.02, 0.02]
    assert not pending_requests().exists()
    assert set(Alert.objects.values_list("fingerprint", flat=True)) == {"fp-first", "fp-racing"}


def test_after_a_small_batch_the_processor_gathers_requests_for_the_next(
    client, url, monkeypatch, settings
):
    settings.INGEST_GATHER_SECONDS = 0.05
    post(client, url, am_batch(am_alert("fp-a")))
    process_pending()
    post(client, url, am_batch(am_alert("fp-a")))  # a repeat: not urgent
    waits: list[float] = []

    def requests_land(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            for _ in range(3):
                post(client, url, am_batch(am_alert("fp-a")))

    monkeypatch.setattr(processor, "_sleep", requests_land)

    assert process_pending() == 4

    # After each small batch, the rest of the 50 ms since it began; none after the empty look.
    assert len(waits) == 2 and all(0 < wait <= 0.05 for wait in waits)
    repeats = IngestRequest.objects.filter(alert_count=1).order_by("id")[1:]
    assert len({r.processed_at for r in repeats}) == 2  # the three that landed: one batch


def test_nothing_waits_behind_a_batch_that_left_requests_or_a_large_one(
    client, url, monkeypatch, settings
):
    settings.INGEST_GATHER_SECONDS = 0.05
    post(client, url, am_batch(am_alert("fp-a")))
    process_pending()
    for _ in range(3):
        post(client, url, am_batch(am_alert("fp-a")))
    post(client, url, am_batch(am_alert("sev1", severity="critical"), group_key="db"))
    pending_at_each_wait: list[int] = []
    monkeypatch.setattr(
        processor, "_sleep", lambda seconds: pending_at_each_wait.append(pending_requests().count())
    )

    # The urgent one goes first, alone, and the three repeats at once after it: one wait, once
    # nothing is left.
    assert process_pending() == 4
    assert pending_at_each_wait == [0]

    for _ in range(processor.SLICE_REQUESTS):
        post(client, url, am_batch(am_alert("fp-a")))
    assert process_pending() == processor.SLICE_REQUESTS
    assert pending_at_each_wait == [0]  # a batch of SLICE_REQUESTS is no small batch


def test_the_tick_kicks_again_when_a_request_waited_too_long(client, url, kicks):
    post(client, url, am_batch(am_alert("fp-1")))
    assert kicks() == 1

    assert kick_if_stuck() is False  # fresh: its own kick is on the way
    assert kick_if_stuck(timezone.now() + timedelta(seconds=3)) is True
    assert kicks() == 2
    process_pending()
    assert kick_if_stuck(timezone.now() + timedelta(seconds=3)) is False
    assert kicks() == 2


def test_purge_keeps_a_pending_request_whatever_its_age(client, url, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    post(client, url, am_batch(am_alert("fp-1")))
    time_machine.shift(timedelta(days=settings.RAW_PAYLOAD_RETENTION_DAYS + 1))

    assert purge_raw_payloads() == 0
    assert pending_requests().count() == 1


def test_metrics_show_the_ingest_backlog(client, url):
    post(client, url, am_batch(am_alert("fp-1")))

    text = client.get("/metrics", **METRICS_AUTH).content.decode()

    assert "muster_ingest_pending_requests 1.0" in text
    assert "muster_ingest_lag_seconds" in text
    process_pending()
    assert (
        "muster_ingest_pending_requests 0.0"
        in client.get("/metrics", **METRICS_AUTH).content.decode()
    )

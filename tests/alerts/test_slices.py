"""A batch in slices: a slice's firing alerts are upserted in one statement, and still each
request is processed as arrival order would have it (alerts.processor, alerts.upsert)."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts import context, processor
from alerts.models import Alert, AlertStatus, IngestRequest, Kind
from alerts.processor import process_pending
from incidents import services
from incidents.models import Service, Source
from tests.alerts.payloads import generic_alert
from tests.helpers.ingest import stored as send


@pytest.fixture
def generic(make_integration):
    return make_integration(Kind.GENERIC, name="scripts")


def fire(key: str) -> dict:
    return generic_alert(f"{key} is down", dedup_key=key, severity="warning")


def resolve(key: str) -> dict:
    return generic_alert(f"{key} is down", dedup_key=key, status="resolved")


def actions(*requests: IngestRequest) -> list[str]:
    return [r["action"] for req in requests for r in IngestRequest.objects.get(pk=req.pk).results]


@pytest.fixture
def no_fallback(caplog):
    """Fail if a batch fell back to processing its requests one by one."""
    caplog.set_level(logging.ERROR, logger="alerts.processor")
    yield
    failed = [r.getMessage() for r in caplog.get_records("call") if "processing its" in r.msg]
    assert failed == []


def firing_already(client, generic, *keys: str) -> None:
    """Fire `keys` and process them: sent again, they are repeats, which are not urgent, so
    they wait for one batch of the oldest together (a new alert would go ahead on its own)."""
    for key in keys:
        send(client, generic, fire(key))
    process_pending()


def test_a_resolve_then_a_refire_in_one_slice_keep_their_order(client, generic, no_fallback):
    firing_already(client, generic, "db", "web-0", "web-1", "web-2")
    resolved = send(client, generic, resolve("db"))
    refired = send(client, generic, fire("db"))
    others = [send(client, generic, fire(f"web-{i}")) for i in range(3)]

    process_pending()

    assert actions(resolved, refired) == ["resolved", "opened"]
    rows = list(Alert.objects.filter(fingerprint="db").order_by("pk"))
    assert [(a.status, a.occurrences) for a in rows] == [
        (AlertStatus.RESOLVED, 1),
        (AlertStatus.FIRING, 1),
    ]
    assert rows[1].incident_id not in (None, rows[0].incident_id)
    assert actions(*others) == ["deduplicated"] * 3


def test_one_fingerprint_twice_in_a_slice_counts_twice(client, generic, no_fallback):
    firing_already(client, generic, "db", "web-0", "web-1", "web-2")
    repeats = [send(client, generic, fire("db")) for _ in range(2)]
    others = [send(client, generic, fire(f"web-{i}")) for i in range(3)]

    process_pending()

    assert actions(*repeats) == ["deduplicated", "deduplicated"]
    assert Alert.objects.get(fingerprint="db").occurrences == 3
    assert actions(*others) == ["deduplicated"] * 3
    assert [Alert.objects.get(fingerprint=f"web-{i}").occurrences for i in range(3)] == [2] * 3


def test_a_repeat_after_a_resolve_in_a_later_slice_is_still_a_repeat(
    client, generic, settings, monkeypatch, no_fallback
):
    """The resolve writes the batch's links so far; the repeat's row, upserted ahead of it,
    must still know the incident its first copy joined earlier in the batch."""
    settings.INGEST_URGENT_FIRST = False  # arrival order: one batch for all of them
    monkeypatch.setattr(processor, "SLICE_REQUESTS", 3)
    firing_already(client, generic, "z", "y")
    first = send(client, generic, fire("x"))
    send(client, generic, fire("filler-1"))
    send(client, generic, fire("filler-2"))
    send(client, generic, resolve("z"))  # the next slice: a resolve, then two firing rows
    again = send(client, generic, fire("x"))
    send(client, generic, fire("y"))

    process_pending()

    assert actions(first, again) == ["opened", "deduplicated"]
    x = Alert.objects.get(fingerprint="x")
    assert x.occurrences == 2
    assert x.incident.timeline.filter(kind="alert_attached", data__fingerprint="x").count() == 1


def test_new_alerts_stored_ahead_in_an_incident_a_resolve_closes_first_open_a_new_one(
    client, generic, settings, no_fallback
):
    """A slice's new alerts go in stored in their group's open incident; the resolve arriving
    before them in the slice closes it (they are not counted: in arrival order they come
    after), and they open a new incident in their turn."""
    settings.INGEST_URGENT_FIRST = False  # arrival order: one batch for all of them
    send(client, generic, keyed("x", "g"))
    process_pending()
    first = Alert.objects.get(fingerprint="x").incident
    resolved = send(client, generic, keyed("x", "g", status="resolved"))
    new = [send(client, generic, keyed(key, "g")) for key in ("y1", "y2")]

    process_pending()

    first.refresh_from_db()
    assert not first.is_open
    assert actions(resolved, *new) == ["resolved", "opened", "attached"]
    [joined] = {Alert.objects.get(fingerprint=key).incident for key in ("y1", "y2")}
    assert joined.pk != first.pk and joined.is_open


def test_a_slice_of_repeats_locks_no_incident(client, generic, settings, no_fallback):
    """Requests of repeats only (not urgent at accept) lock no incident ahead: a storm of
    repeats holds its incidents no longer than processing each alert does."""
    settings.INGEST_URGENT_FIRST = False
    firing_already(client, generic, "db", "web-0", "web-1")
    repeats = [send(client, generic, fire(key)) for key in ("db", "web-0", "web-1")]
    assert not any(IngestRequest.objects.get(pk=r.pk).urgent for r in repeats)

    with CaptureQueriesContext(connection) as queries:
        process_pending()

    assert actions(*repeats) == ["deduplicated"] * 3
    assert [q["sql"] for q in queries if "FOR NO KEY UPDATE" in q["sql"]] == []


def test_a_repeat_of_an_alert_stored_ahead_in_an_incident_closed_before_its_turn(
    client, generic, settings, monkeypatch, no_fallback
):
    """Slice one: F1 and F2 are stored ahead in X; the resolve before them closes X, and they
    open Y in their turn (their rows still say X until the batch's links are written). Slice
    two repeats them: repeats of the alerts in Y, not new alerts."""
    settings.INGEST_URGENT_FIRST = False  # arrival order: one batch for all of them
    monkeypatch.setattr(processor, "SLICE_REQUESTS", 3)
    send(client, generic, keyed("a-g", "grp"))
    process_pending()
    closed = Alert.objects.get(fingerprint="a-g").incident
    first = [
        send(client, generic, keyed("a-g", "grp", status="resolved")),
        send(client, generic, keyed("f1", "grp")),
        send(client, generic, keyed("f2", "grp")),
    ]
    again = [send(client, generic, keyed(key, "grp")) for key in ("f1", "f2")]

    process_pending()

    assert actions(*first) == ["resolved", "opened", "attached"]
    assert actions(*again) == ["deduplicated", "deduplicated"]
    rows = list(Alert.objects.filter(fingerprint__in=["f1", "f2"]))
    assert [(a.status, a.occurrences) for a in rows] == [("firing", 2), ("firing", 2)]
    [joined] = {a.incident_id for a in rows}
    assert joined != closed.pk


def test_slices_are_bounded_by_requests_and_alerts(client, generic, monkeypatch):
    monkeypatch.setattr(processor, "SLICE_REQUESTS", 3)
    requests = [send(client, generic, fire(f"s-{i}")) for i in range(7)]
    slices = list(processor._slices(requests, isolate=False))
    assert [len(part) for part in slices] == [3, 3, 1]
    assert [len(part) for part in processor._slices(requests, isolate=True)] == [1] * 7
    big = [send(client, generic, [fire(f"b-{i}-{k}") for k in range(60)]) for i in range(3)]
    assert [len(part) for part in processor._slices(big, isolate=False)] == [1, 1, 1]


def test_a_slices_new_alerts_find_their_groups_incidents_in_one_statement(
    client, generic, no_fallback
):
    """The open incidents of a slice's new alerts are locked together (in id order), not once
    per group; each alert still joins its own group's incident, stored in it as it is inserted
    (no UPDATE links it afterwards)."""
    for group in range(6):
        send(
            client,
            generic,
            generic_alert(f"g{group} first", dedup_key=f"g{group}-0", group_key=f"g{group}"),
        )
    process_pending()
    opened = {
        a.fingerprint.split("-")[0]: a.incident_id
        for a in Alert.objects.filter(fingerprint__endswith="-0")
    }
    assert len(set(opened.values())) == 6
    later = [
        send(
            client, generic, generic_alert(f"g{g} again", dedup_key=f"g{g}-{n}", group_key=f"g{g}")
        )
        for n in (1, 2)
        for g in range(6)
    ]

    with CaptureQueriesContext(connection) as queries:
        process_pending()

    locks = [q["sql"] for q in queries if "FOR NO KEY UPDATE" in q["sql"]]
    assert len(locks) == 1, locks
    assert "ORDER BY" in locks[0]
    assert [q["sql"] for q in queries if 'SET "incident_id"' in q["sql"]] == []
    assert actions(*later) == ["attached"] * 12
    for alert in Alert.objects.exclude(fingerprint__endswith="-0"):
        assert alert.incident_id == opened[alert.fingerprint.split("-")[0]], alert.fingerprint


def test_two_integrations_and_services_lock_their_groups_incidents_in_one_statement(
    client, generic, make_integration, settings, no_fallback
):
    """Across the contexts (integrations) and services of a slice: still one statement, in id
    order, so that two processors lock the incidents they share in one order."""
    settings.INGEST_LANES = 1  # one batch for both integrations
    other = make_integration(Kind.GENERIC, name="other", service=Service.objects.create(name="b"))
    senders = {"a": generic, "b": other}

    def alert(name: str, group: int, n: int) -> dict:
        return generic_alert(
            f"{name}{group}", dedup_key=f"{name}{group}-{n}", group_key=f"g{group}"
        )

    for name, integration in senders.items():
        for group in range(3):
            send(client, integration, alert(name, group, 0))
    process_pending()
    opened = {a.fingerprint[:2]: a.incident_id for a in Alert.objects.all()}
    assert len(set(opened.values())) == 6
    later = [
        send(client, integration, alert(name, group, 1))
        for group in range(3)
        for name, integration in senders.items()
    ]

    with CaptureQueriesContext(connection) as queries:
        process_pending()

    locks = [q["sql"] for q in queries if "FOR NO KEY UPDATE" in q["sql"]]
    assert len(locks) == 1, locks
    assert locks[0].rstrip().endswith('ORDER BY "id" FOR NO KEY UPDATE')
    assert actions(*later) == ["attached"] * 6
    for alert_row in Alert.objects.filter(fingerprint__endswith="-1"):
        assert alert_row.incident_id == opened[alert_row.fingerprint[:2]]


def test_links_beyond_one_statements_worth_are_all_written(client, generic, monkeypatch):
    """An incident's new alerts are linked LINKS_A_STATEMENT a statement: every one of them."""
    monkeypatch.setattr(context, "LINKS_A_STATEMENT", 2)
    sent = [
        send(client, generic, generic_alert(f"n{i}", dedup_key=f"n{i}", group_key="one"))
        for i in range(5)
    ]

    process_pending()

    assert sorted(actions(*sent)) == ["attached"] * 4 + ["opened"]
    [incident_id] = {a.incident_id for a in Alert.objects.filter(fingerprint__startswith="n")}
    assert incident_id is not None
    assert Alert.objects.filter(incident_id=incident_id).count() == 5


def keyed(key: str, group: str, **fields) -> dict:
    return generic_alert(key, dedup_key=key, group_key=group, **fields)


@pytest.fixture
def merged_across(client, generic, make_integration, settings, django_capture_on_commit_callbacks):
    """(incident, other integration): the incident of `generic`'s group "ga", whose own alert
    a1 has resolved, holding the other integration's firing alert b1 (merged in). Its batches
    in arrival order, one lane."""
    settings.INGEST_LANES = 1
    settings.INGEST_URGENT_FIRST = False
    other = make_integration(Kind.GENERIC, name="other")
    send(client, generic, keyed("a1", "ga"))
    send(client, other, keyed("b1", "gb"))
    process_pending()
    kept = Alert.objects.get(fingerprint="a1").incident
    merged = Alert.objects.get(fingerprint="b1").incident
    with django_capture_on_commit_callbacks(execute=True):  # b1 moves to the kept incident
        services.merge_incidents(kept, [merged], by=None, source=Source.API)
    send(client, generic, keyed("a1", "ga", status="resolved"))
    process_pending()
    kept.refresh_from_db()
    assert kept.is_open  # b1 fires in it still
    return kept, other


def test_an_incident_resolved_through_another_integrations_alert_is_not_joined_after(
    client, generic, merged_across, no_fallback
):
    """In one slice, the other integration's resolve closes the merged incident, then a new
    alert of its own group arrives: it opens a new incident, not join the closed one that was
    locked ahead for it."""
    kept, other = merged_across
    send(client, other, keyed("b1", "gb", status="resolved"))  # closes it
    new = [send(client, generic, keyed(f"a{i}", "ga")) for i in (2, 3)]
    process_pending()

    kept.refresh_from_db()
    assert not kept.is_open
    assert actions(*new) == ["opened", "attached"]
    [joined] = {Alert.objects.get(fingerprint=f"a{i}").incident for i in (2, 3)}
    assert joined.pk != kept.pk and joined.is_open


def test_a_resolve_counts_another_integrations_alert_that_joined_earlier_in_the_batch(
    client, generic, merged_across, no_fallback, django_capture_on_commit_callbacks
):
    """In one batch, one integration's new alert joins the merged incident (its link is written
    at the batch's end), then the other's last alert resolves: the incident still has a firing
    alert, and stays open."""
    kept, other = merged_across
    joined = send(client, generic, keyed("a2", "ga"))
    send(client, other, keyed("b1", "gb", status="resolved"))
    with django_capture_on_commit_callbacks(execute=True):
        process_pending()

    kept.refresh_from_db()
    assert actions(joined) == ["attached"]
    assert kept.is_open
    a2 = Alert.objects.get(fingerprint="a2")
    assert (a2.incident_id, a2.status) == (kept.pk, "firing")

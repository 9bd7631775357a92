"""Urgent requests go first (a new alert, severity 1-2), and every sender's order holds.

The processor takes urgent requests ahead of a backlog of repeats, but never ahead of an older
pending request with their order key (or with none): a resolve is never handled before its
trigger. The property test runs random sequences with small batches and checks every alert
ends as its last event said, as arrival order would leave it.
"""

from __future__ import annotations

import itertools

import pytest
from django.core.cache import cache
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts import lanes, ordering, pending, processor
from alerts.models import Alert, AlertStatus, IngestRequest, Integration, Kind
from alerts.processor import process_pending
from alerts.sources.base import FIRING, RESOLVED, NormalizedAlert
from tests.alerts.payloads import am_alert, am_batch, generic_alert
from tests.helpers.ingest import stored as send

# --- the order key and urgency, pure ---------------------------------------------------------


def alert(fingerprint: str, *, status: str = FIRING, severity: int = 3, group: str | None = None):
    return NormalizedAlert(fingerprint, status, "s", severity, group_key=group)


def test_alertmanager_requests_are_ordered_by_their_group_whatever_their_size():
    one = ordering.order_key("alertmanager", [alert("a", group="g")])
    two = ordering.order_key("alertmanager", [alert("a", group="g"), alert("b", group="g")])
    assert one == two is not None
    assert ordering.order_key("grafana", [alert("a", group="g")]) == one
    assert ordering.order_key("alertmanager", [alert("a", group="h")]) != one


def test_other_formats_are_ordered_by_their_one_fingerprint():
    fired = ordering.order_key("generic", [alert("a")])
    resolved = ordering.order_key("pagerduty", [alert("a", status=RESOLVED)])
    assert fired == resolved is not None
    assert ordering.order_key("generic", [alert("a"), alert("a")]) == fired
    assert ordering.order_key("generic", [alert("b")]) != fired
    # A group key that is also a fingerprint names another thing: the prefixes keep them apart.
    assert ordering.order_key("alertmanager", [alert("x", group="a")]) != fired


def test_a_request_of_many_fingerprints_without_one_group_has_no_key():
    assert ordering.order_key("generic", [alert("a"), alert("b")]) is None
    assert ordering.order_key("alertmanager", [alert("a", group="g"), alert("b")]) is None
    assert ordering.order_key("generic", []) is None


def test_urgency_by_severity_counts_firing_alerts_only():
    assert ordering.urgent_by_severity([alert("a", severity=4), alert("b", severity=2)])
    assert not ordering.urgent_by_severity([alert("a", severity=1, status=RESOLVED)])
    assert not ordering.urgent_by_severity([alert("a", severity=3)])
    fingerprints = ordering.firing_fingerprints(
        [alert("a"), alert("b", status=RESOLVED), alert("a"), alert("c")]
    )
    assert fingerprints == ["a", "c"]
    many = ordering.firing_fingerprints([alert(str(i)) for i in range(1000)])
    assert len(many) == ordering.MAX_LOOKUPS


# --- what accept stores ---------------------------------------------------------------------


@pytest.fixture
def am(make_integration) -> Integration:
    return make_integration(Kind.ALERTMANAGER, name="prometheus")


@pytest.fixture
def generic(make_integration) -> Integration:
    return make_integration(Kind.GENERIC, name="scripts")


def warning(fingerprint: str, **fields) -> dict:
    return generic_alert(
        f"disk {fingerprint}", **{"dedup_key": fingerprint, "severity": "warning", **fields}
    )


def test_a_new_alert_is_urgent_and_its_repeat_is_not(client, generic):
    first = send(client, generic, warning("a"))
    assert first.urgent
    process_pending()
    assert not send(client, generic, warning("a")).urgent
    assert send(client, generic, warning("b")).urgent  # new
    assert not send(client, generic, warning("a", status="resolved")).urgent


def test_a_severe_repeat_is_urgent(client, generic):
    send(client, generic, warning("a"))
    process_pending()
    assert send(client, generic, {**warning("a"), "severity": "critical"}).urgent


def test_a_batch_with_one_new_alert_among_repeats_is_urgent(client, am):
    send(client, am, am_batch(am_alert("a"), am_alert("b")))
    process_pending()
    assert not send(client, am, am_batch(am_alert("a"), am_alert("b"))).urgent
    assert send(client, am, am_batch(am_alert("a"), am_alert("b"), am_alert("c"))).urgent


# --- what the processor takes first ----------------------------------------------------------


def processed(*requests: IngestRequest) -> list[bool]:
    return [IngestRequest.objects.get(pk=r.pk).processed_at is not None for r in requests]


def test_a_new_alert_behind_a_backlog_of_repeats_goes_first(client, generic):
    send(client, generic, warning("old"))
    process_pending()
    repeats = [send(client, generic, warning("old")) for _ in range(5)]
    sev1 = send(client, generic, generic_alert("db down", dedup_key="db", severity="critical"))

    assert processor._process_batch(urgent_first=True) == processor.Batch(1, True)

    assert processed(sev1, *repeats) == [True] + [False] * 5
    assert Alert.objects.get(fingerprint="db").incident is not None


def test_an_urgent_request_never_overtakes_an_older_one_with_its_key(client, generic):
    send(client, generic, warning("a", severity="critical"))
    process_pending()
    resolve = send(client, generic, warning("a", status="resolved"))
    refire = send(client, generic, generic_alert("disk a", dedup_key="a", severity="critical"))
    assert refire.urgent and not resolve.urgent

    # In arrival order:
    assert processor._process_batch(urgent_first=True) == processor.Batch(2, False, drained=True)

    assert processed(resolve, refire) == [True, True]
    assert Alert.objects.get(fingerprint="a", status=AlertStatus.FIRING).occurrences == 1


def test_a_request_without_a_key_holds_back_what_its_integration_sent_after(client, generic):
    send(client, generic, warning("a"))
    process_pending()
    mixed = send(client, generic, [warning("a", status="resolved"), warning("b")])
    refire = send(client, generic, generic_alert("disk a", dedup_key="a", severity="critical"))

    assert processor._process_batch(urgent_first=True) == processor.Batch(2, False, drained=True)
    assert processed(mixed, refire) == [True, True]
    assert Alert.objects.filter(fingerprint="a", status=AlertStatus.FIRING).count() == 1


def test_another_integrations_backlog_holds_back_nothing(client, generic, am):
    send(client, am, am_batch(am_alert("x")))
    process_pending()
    backlog = [send(client, am, am_batch(am_alert("x"))) for _ in range(3)]
    sev1 = send(client, generic, generic_alert("db down", dedup_key="db", severity="critical"))

    assert processor._process_batch(urgent_first=True) == processor.Batch(1, True)
    assert processed(sev1, *backlog) == [True, False, False, False]


def scan_urgent(monkeypatch, requests: int) -> None:
    """Let claims consider only the lane's `requests` oldest urgent requests."""
    monkeypatch.setattr(lanes, "URGENT_SCAN", requests)
    lanes._candidates_sql.cache_clear()  # built with the bound (and again after the test)


@pytest.fixture(autouse=True)
def _claims_built_afresh():
    yield
    lanes._candidates_sql.cache_clear()


def test_a_claim_considers_only_the_oldest_urgent_requests(client, generic, monkeypatch):
    scan_urgent(monkeypatch, 2)
    send(client, generic, warning("a"))
    process_pending()
    repeat = send(client, generic, warning("a"))  # holds back the two after it
    held = [send(client, generic, warning("a", severity="critical")) for _ in range(2)]
    sev1 = send(client, generic, generic_alert("db down", dedup_key="db", severity="critical"))

    # The two oldest urgent requests wait behind the repeat; the SEV1 is beyond the bound.
    assert processor._process_batch(urgent_first=True) == processor.Batch(4, False, drained=True)
    assert processed(repeat, *held, sev1) == [True] * 4

    scan_urgent(monkeypatch, 3)
    send(client, generic, warning("a"))
    held = [send(client, generic, warning("a", severity="critical")) for _ in range(2)]
    sev1 = send(client, generic, generic_alert("web down", dedup_key="web", severity="critical"))
    assert processor._process_batch(urgent_first=True) == processor.Batch(1, True)
    assert processed(*held, sev1) == [False, False, True]


def test_urgent_and_oldest_batches_take_turns(client, generic, monkeypatch):
    monkeypatch.setattr(processor, "URGENT_BATCH_REQUESTS", 1)
    monkeypatch.setattr(processor, "BATCH_REQUESTS", 1)
    send(client, generic, warning("old"))
    process_pending()
    repeat = send(client, generic, warning("old"))
    news = [send(client, generic, warning(f"new{i}")) for i in range(3)]
    order = []
    urgent_first = True
    while True:
        done, urgent, *_ = processor._process_batch(urgent_first=urgent_first)
        if not done:
            break
        urgent_first = not urgent
        order.append(urgent)
    # Two urgent requests, then the oldest (the repeat), then the last: no starving.
    assert order == [True, False, True, False]
    assert processed(repeat, *news) == [True] * 4


# --- any sequence: every alert ends as its last event said ---------------------------------

NAMES = itertools.count()
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # fingerprint
        st.sampled_from([FIRING, RESOLVED]),
        st.sampled_from(["critical", "warning"]),
        st.sampled_from(["single", "single", "list"]),  # a list carries "z" too: no key
    ),
    min_size=1,
    max_size=14,
)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=EVENTS,
    batch=st.integers(1, 3),
    urgent_batch=st.integers(1, 3),
    urgent_scan=st.integers(1, 4),
)
def test_any_sequence_ends_as_arrival_order_would(
    client, make_integration, monkeypatch, events, batch, urgent_batch, urgent_scan
):
    monkeypatch.setattr(processor, "BATCH_REQUESTS", batch)
    monkeypatch.setattr(processor, "URGENT_BATCH_REQUESTS", urgent_batch)
    scan_urgent(monkeypatch, urgent_scan)
    # A new integration each example: the examples share the test's database.
    integration = make_integration(Kind.GENERIC, name=f"scripts {next(NAMES)}")
    last: dict[str, str] = {}
    for i, (fingerprint, status, severity, shape) in enumerate(events):
        one = generic_alert(fingerprint, dedup_key=fingerprint, status=status, severity=severity)
        if shape == "list":
            other = generic_alert("z", dedup_key="z", severity="warning")
            send(client, integration, [one, other])
            last["z"] = FIRING
        else:
            send(client, integration, one)
        last[fingerprint] = status
        if i % 4 == 3:
            process_pending()  # some of it processed as it comes, the rest left as a backlog
    process_pending()

    firing = set(
        Alert.objects.filter(integration=integration, status=AlertStatus.FIRING).values_list(
            "fingerprint", flat=True
        )
    )
    assert firing == {f for f, status in last.items() if status == FIRING}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the query plan is PostgreSQL's")
@pytest.mark.parametrize("count", [1, 4])
def test_finding_what_may_go_ahead_probes_the_indexes(client, generic, count):
    # A backlog: new alerts (urgent), a few each of several keys, with statistics that know it.
    for i in range(60):
        send(client, generic, warning(f"f{i % 12}"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE alerts_ingestrequest")
        cursor.execute("SET LOCAL enable_seqscan = off")  # best for 60 rows, not for a storm's
        sql = lanes._urgent_sql(count)
        cursor.execute(f"EXPLAIN {sql}", [*lanes._in_lane(1 % count, count), 50])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # Each look behind a candidate is a probe with the candidate's values, in the indexes made
    # for it (an anti-join walked every pending request for each candidate instead).
    assert "Anti Join" not in plan
    assert "ingest_pending_by_key" in plan
    assert "ingest_pending_keyless" in plan
    assert "Index Cond: ((ROW(integration_id, order_key, id) < ROW(r.integration_id" in plan


def test_the_api_says_which_requests_were_urgent(client, generic, as_alice):
    new = send(client, generic, warning("a"))
    process_pending()
    repeat = send(client, generic, warning("a"))

    listed = as_alice.get(f"/api/v1/integrations/{generic.pk}/requests/").json()["results"]

    assert {r["id"]: r["urgent"] for r in listed} == {new.pk: True, repeat.pk: False}


def test_arrival_order_only_when_urgent_first_is_off(client, generic, settings):
    settings.INGEST_URGENT_FIRST = False
    send(client, generic, warning("old"))
    process_pending()
    repeat = send(client, generic, warning("old"))
    sev1 = send(client, generic, generic_alert("db down", dedup_key="db", severity="critical"))
    assert sev1.urgent  # still said; only the order changes

    assert processor._process_batch(urgent_first=True) == processor.Batch(2, False, drained=True)
    assert processed(repeat, sev1) == [True, True]


def test_an_urgent_request_ends_a_batch_of_the_oldest_early(client, generic, settings, monkeypatch):
    settings.INGEST_LANES = 1  # every request in lane 0, as _process_batch takes by default
    monkeypatch.setattr(processor, "SLICE_REQUESTS", 2)  # it looks every 2 requests
    send(client, generic, warning("old"))
    process_pending()
    repeats = [send(client, generic, warning("old")) for _ in range(4)]
    assert cache.get(pending.urgent_key(0)) is None
    sev1 = send(client, generic, generic_alert("db down", dedup_key="db", severity="critical"))
    assert cache.get(pending.urgent_key(0))  # the web process's hint to a processor at work

    # A batch of the oldest that was under way when it came: it stops after the slice in hand.
    assert processor._process_batch(urgent_first=False) == processor.Batch(2, False)
    assert processed(*repeats, sev1) == [True, True, False, False, False]
    # The next is the urgent one, which takes the hint down; then the rest, to their end.
    assert processor._process_batch(urgent_first=True) == processor.Batch(1, True)
    assert cache.get(pending.urgent_key(0)) is None
    assert processor._process_batch(urgent_first=False) == processor.Batch(2, False, drained=True)
    assert processed(*repeats, sev1) == [True] * 5


def test_an_urgent_request_received_mid_batch_ends_it_though_its_group_is_in_it(
    client, am, settings, monkeypatch
):
    """The requests a batch has taken hold back no urgent request of their group received
    meanwhile: the batch ends after its slice in hand, and the urgent one goes next."""
    settings.INGEST_LANES = 1
    monkeypatch.setattr(processor, "SLICE_REQUESTS", 2)
    send(client, am, am_batch(am_alert("old"), group_key="g"))
    send(client, am, am_batch(am_alert("other"), group_key="h"))
    process_pending()
    first_slice = [send(client, am, am_batch(am_alert("old"), group_key="g")) for _ in range(2)]
    rest = [send(client, am, am_batch(am_alert("other"), group_key="h")) for _ in range(4)]
    landed: list[IngestRequest] = []
    look = processor._urgent_hint

    def a_new_alert_of_g_lands(lane: int) -> bool:
        if not landed:
            new = am_batch(am_alert("old"), am_alert("new"), group_key="g")
            landed.append(send(client, am, new))
        return look(lane)

    monkeypatch.setattr(processor, "_urgent_hint", a_new_alert_of_g_lands)

    assert processor._process_batch(urgent_first=False) == processor.Batch(2, False)
    [new] = landed
    assert new.urgent and new.order_key == first_slice[0].order_key
    assert processed(*first_slice, *rest, new) == [True] * 2 + [False] * 5
    assert processor._process_batch(urgent_first=True) == processor.Batch(1, True)
    assert processed(new) == [True]


def test_without_the_cache_an_urgent_request_waits_for_the_batch_in_progress(
    client, generic, monkeypatch
):
    send(client, generic, warning("old"))
    process_pending()
    repeats = [send(client, generic, warning("old")) for _ in range(3)]

    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "set", down)
    monkeypatch.setattr(cache, "get", down)
    sev1 = send(client, generic, generic_alert("db down", dedup_key="db", severity="critical"))
    assert sev1.urgent  # stored, and urgent, without the hint

    # The batch under way goes to its end, which takes the urgent one along in arrival order.
    assert processor._process_batch(urgent_first=False) == processor.Batch(4, False, drained=True)
    assert processed(*repeats, sev1) == [True] * 4

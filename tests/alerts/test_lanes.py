"""Processing lanes: processors side by side, one per lane, and every sender's order kept.

A request's lane comes from its order key (else its integration); a lane is processed by one
processor at a time, in arrival order; a request without a key waits for what its integration
sent before it in other lanes, and holds back what it sent after. The property test processes
random lanes in random order and checks every alert ends as arrival order would leave it.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts import lanes, processor
from alerts.models import Alert, AlertStatus, IngestRequest, Integration, Kind
from alerts.pending import kick_key, urgent_key
from alerts.processor import process_pending
from alerts.sources.base import FIRING, RESOLVED
from tests.alerts.payloads import generic_alert
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.ingest import stored as send

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has one lane, under a process lock"
)
LANES = 4


@pytest.fixture(autouse=True)
def _four_lanes(settings):
    settings.INGEST_LANES = LANES


@pytest.fixture
def generic(make_integration) -> Integration:
    return make_integration(Kind.GENERIC, name="scripts")


def one(fingerprint: str, **fields) -> dict:
    return generic_alert(f"disk {fingerprint}", dedup_key=fingerprint, **fields)


def lane(request: IngestRequest) -> int:
    return lanes.lane_of(request.order_key, request.integration_id, LANES)


def in_lanes(client, integration, count: int) -> dict[int, IngestRequest]:
    """One single-alert request in each of `count` different lanes: {lane: request}."""
    found: dict[int, IngestRequest] = {}
    for i in itertools.count():
        request = send(client, integration, one(f"fp-{i}"))
        found.setdefault(lane(request), request)
        if len(found) == count:
            return found
    raise AssertionError  # unreachable: itertools.count never ends


@contextmanager
def lane_held_elsewhere(n: int) -> Iterator[None]:
    """Another processor (a thread, its own connection) holds lane `n` meanwhile."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with lanes.hold(n, wait=True):
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        holder.join(10)


def oldest(n: int) -> list[tuple[int, int]]:
    return lanes.candidates(n, LANES, urgent=0, oldest=100).oldest


def urgent(n: int) -> list[tuple[int, int]]:
    return lanes.candidates(n, LANES, urgent=100, oldest=0).ahead


def test_a_request_is_in_the_lane_its_key_says_whatever_the_key_s_sign(client, generic):
    requests = [send(client, generic, one(f"fp-{i}")) for i in range(40)]
    assert {r.order_key < 0 for r in requests} == {True, False}  # both signs are covered

    for n in range(LANES):
        ids = [pk for pk, _ in oldest(n)]
        assert ids == [r.pk for r in requests if lane(r) == n]


def test_one_statement_finds_a_lane_s_urgent_and_oldest_requests(
    client, generic, django_assert_num_queries
):
    new = [send(client, generic, one(f"fp-{i}")) for i in range(12)]
    # Sent again before the first were processed: new as well, but behind their own key.
    repeats = [send(client, generic, one(f"fp-{i}")) for i in range(12)]
    busiest = max(range(LANES), key=lambda n: sum(lane(r) == n for r in new))

    with django_assert_num_queries(1):
        found = lanes.candidates(busiest, LANES, urgent=100, oldest=100)
    ahead, oldest = found.ahead, found.oldest

    in_lane = [r for r in new + repeats if lane(r) == busiest]
    assert [pk for pk, _ in oldest] == [r.pk for r in in_lane]
    # The first request of each key is urgent (a new alert) and may go ahead; the second
    # waits for the first.
    assert all(r.urgent for r in in_lane)
    assert [pk for pk, _ in ahead] == [r.pk for r in new if lane(r) == busiest] != []
    assert not found.blocked
    assert lanes.candidates(busiest, LANES, urgent=0, oldest=2) == lanes.Candidates(
        [], oldest[:2], False
    )


def test_a_lane_is_processed_while_another_processor_holds_another(client, generic):
    by_lane = in_lanes(client, generic, 2)
    held, free = by_lane
    with lane_held_elsewhere(held):
        assert processor._process_batch(held, LANES, urgent_first=False) == processor.Batch(None)
        assert processor._process_batch(free, LANES, urgent_first=False) == processor.Batch(
            1, drained=True
        )
    assert IngestRequest.objects.get(pk=by_lane[free].pk).processed_at is not None
    assert IngestRequest.objects.get(pk=by_lane[held].pk).processed_at is None


def test_a_request_without_a_key_waits_for_older_ones_in_other_lanes(client, generic):
    # The first single-alert request in a lane other than the integration's (a keyless
    # request's lane).
    fingerprint, keyed = next(
        (f, r)
        for f, r in ((f"fp-{i}", send(client, generic, one(f"fp-{i}"))) for i in range(40))
        if lane(r) != generic.pk % LANES
    )
    resolve_and_more = [one(fingerprint, status="resolved"), one("b")]
    mixed = send(client, generic, resolve_and_more)  # no key
    assert mixed.order_key is None and lane(mixed) != lane(keyed)

    def may_go() -> bool:
        return mixed.pk in [pk for pk, _ in oldest(lane(mixed))]

    assert not may_go()  # it waits for `keyed` (and whatever else is older, elsewhere)
    for other in set(range(LANES)) - {lane(mixed)}:
        processor._process_lane(other, LANES, kicked=False)
    assert may_go()
    assert Alert.objects.get(fingerprint=fingerprint).status == AlertStatus.FIRING  # not yet


def test_a_request_without_a_key_holds_back_newer_ones_in_other_lanes(client, generic):
    mixed = send(client, generic, [one("a"), one("b")])
    # The first newer single-alert request in a lane other than the keyless one's.
    later = next(
        r
        for r in (send(client, generic, one(f"fp-{i}", status="resolved")) for i in range(40))
        if lane(r) != lane(mixed)
    )

    def ids(claimed: list[tuple[int, int]]) -> list[int]:
        return [pk for pk, _ in claimed]

    assert later.pk not in ids(oldest(lane(later)))
    assert later.pk not in ids(urgent(lane(later)))
    processor._process_lane(lane(mixed), LANES, kicked=False)
    assert later.pk in ids(oldest(lane(later)))


def test_a_lane_whose_oldest_request_waits_for_another_lane_is_looked_at_again_soon(
    client, generic
):
    # A single-alert request in a lane other than the integration's, then a request without
    # a key (in the integration's lane), which must wait for it.
    keyed = next(
        r
        for r in (send(client, generic, one(f"fp-{i}")) for i in range(40))
        if lane(r) != generic.pk % LANES
    )
    mixed = send(client, generic, [one("x"), one("y")])
    assert mixed.order_key is None and lane(mixed) != lane(keyed)

    with sent_tasks() as sent:
        before = timezone.now()
        process_pending(lane(mixed))  # what its own lane holds before it, then it waits
    assert IngestRequest.objects.get(pk=mixed.pk).processed_at is None
    # Nothing kicks its lane when the other lane is done: it asks for a look of its own, soon
    # (not the tick's re-kick, seconds later).
    [again] = named(sent, "alerts.process_ingest_requests")
    assert again.args == (lane(mixed),)
    assert again.eta is not None
    assert timedelta(0) < datetime.fromisoformat(again.eta) - before < timedelta(seconds=1)
    # Its looks keep the lane's kick: a request meanwhile starts no second processor.
    with sent_tasks() as sent:
        send(client, generic, [one("z1"), one("z2")])
        processor._process_lane(lane(mixed), LANES, kicked=False)  # the tick's: it asks nothing
    assert named(sent, "alerts.process_ingest_requests") == []

    process_pending(lane(keyed))
    with sent_tasks() as sent:
        assert process_pending(lane(mixed)) >= 1  # the look again
    assert IngestRequest.objects.get(pk=mixed.pk).processed_at is not None
    assert named(sent, "alerts.process_ingest_requests") == []


def test_processors_started_together_process_every_lane_once(transactional_db, generic):
    requests = [send(Client(), generic, one(f"fp-{i}")) for i in range(24)]
    barrier = threading.Barrier(3)
    counts: list[int] = []

    def work() -> None:
        try:
            barrier.wait(10)
            counts.append(process_pending())
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(counts) == len(requests)  # each request processed once, by one of them
    assert Alert.objects.filter(occurrences=1).count() == len(requests)


def test_a_request_kicks_a_processor_for_its_own_lane(client, generic):
    with sent_tasks() as sent:
        request = send(client, generic, one("a"))
    [task] = named(sent, "alerts.process_ingest_requests")
    assert task.args == (lane(request),)


def test_the_tick_s_processor_leaves_a_busy_lane_to_its_holder(client, generic):
    held = next(iter(in_lanes(client, generic, 2)))
    waiting = list(IngestRequest.objects.filter(processed_at__isnull=True))
    in_held = len([r for r in waiting if lane(r) == held])
    with lane_held_elsewhere(held):
        # The free lanes' requests; it does not wait for the busy one.
        assert process_pending() == len(waiting) - in_held
    assert process_pending(held) == in_held  # a processor kicked for the lane takes it


def test_a_processor_kicked_for_a_held_lane_asks_for_a_look_soon_instead_of_waiting(
    client, generic
):
    # Waiting for the lock held a worker's thread: under a steady load of repeats, three of
    # four threads waited so, and pages waited seconds for one (bench/paging.py).
    request = send(client, generic, one("a"))
    held = lane(request)
    with lane_held_elsewhere(held), sent_tasks() as sent:
        started = time.monotonic()
        before = timezone.now()
        assert process_pending(held) == 0
        assert time.monotonic() - started < 1  # it did not wait for the holder
    [again] = named(sent, "alerts.process_ingest_requests")
    assert again.args == (held,)
    assert timedelta(0) < datetime.fromisoformat(again.eta) - before < timedelta(seconds=1)
    assert cache.get(kick_key(held))  # its look keeps the lane's kick: no second processor
    assert IngestRequest.objects.get(pk=request.pk).processed_at is None

    assert process_pending(held) == 1  # the look, once the holder is done
    assert IngestRequest.objects.get(pk=request.pk).processed_at is not None


def test_a_kicked_processor_that_finds_its_lane_taken_midway_asks_for_a_look_too(db, monkeypatch):
    # It took a batch, then another processor took the lane, maybe on that one's last look,
    # begun before a request that found this processor's kick set (and kicked nothing) was
    # committed: without a look of its own, that request would wait for the tick's re-kick.
    batches = iter([processor.Batch(1), processor.Batch(None)])
    monkeypatch.setattr(processor, "_process_batch", lambda *a, **k: next(batches))
    with sent_tasks() as sent:
        before = timezone.now()
        assert process_pending(2) == 1
    [again] = named(sent, "alerts.process_ingest_requests")
    assert again.args == (2,)
    assert timedelta(0) < datetime.fromisoformat(again.eta) - before < timedelta(seconds=1)


def test_the_web_tells_the_processor_of_the_urgent_request_s_lane(client, generic):
    sev1 = send(client, generic, one("db", severity="critical"))
    assert cache.get(urgent_key(lane(sev1)))
    assert [cache.get(urgent_key(n)) for n in range(LANES) if n != lane(sev1)] == [None] * 3


# --- any sequence, any lanes in any order: every alert ends as its last event said ----------

NAMES = itertools.count()
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),  # fingerprint
        st.sampled_from([FIRING, RESOLVED]),
        st.sampled_from(["critical", "warning"]),
        st.sampled_from(["single", "single", "single", "list"]),  # a list has no key
    ),
    min_size=1,
    max_size=14,
)


@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=EVENTS, count=st.sampled_from([2, 3, 4]), seed=st.integers(0, 2**16))
def test_any_sequence_in_any_lanes_ends_as_arrival_order_would(
    client, make_integration, monkeypatch, settings, events, count, seed
):
    settings.INGEST_LANES = count
    monkeypatch.setattr(processor, "BATCH_REQUESTS", 2)
    monkeypatch.setattr(processor, "URGENT_BATCH_REQUESTS", 1)
    integration = make_integration(Kind.GENERIC, name=f"scripts {next(NAMES)}")
    rng = random.Random(seed)
    last: dict[str, str] = {}
    for fingerprint, status, severity, shape in events:
        alert = one(fingerprint, status=status, severity=severity)
        if shape == "list":
            other = "z" if fingerprint != "z" else "y"
            send(client, integration, [alert, one(other, severity="warning")])
            last[other] = FIRING
        else:
            send(client, integration, alert)
        last[fingerprint] = status
        # Some lane, one batch: processors that work on lanes in no particular order.
        if rng.random() < 0.5:
            n = rng.randrange(count)
            processor._process_batch(n, count, urgent_first=rng.random() < 0.5)
    process_pending()

    firing = set(
        Alert.objects.filter(integration=integration, status=AlertStatus.FIRING).values_list(
            "fingerprint", flat=True
        )
    )
    assert firing == {f for f, status in last.items() if status == FIRING}

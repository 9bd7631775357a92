"""core.json_rows: many rows in one statement, as one JSON document, store exactly what
bulk_create would, and each instance gets its own primary key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from alerts.models import IngestRequest, Integration
from core import json_rows
from incidents.models import EntryKind, Incident, Service, Source, TimelineEntry
from incidents.opening import open_incident
from tests.helpers.fuzz import fuzz_settings
from tests.helpers.fuzz_payloads import JSON_VALUES

START_OF_UPDATE = datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)
TEXTS = [
    'it\'s "quoted" \\ back\\slashed',
    "%s %(name)s %% {}",
    "Ünïcödé — 日本語 — 🚨",
    "line\nbreak\ttab",
]
DATA = [
    {},
    {"a": [1, 2.5, None, True]},
    {"nested": {"x": "it's"}, "big": 2**70, "small": -(2**63) - 1},  # beyond orjson's 64 bits
    {"emoji": "🚨", "n": -3},
]


def entries(incident: Incident, actor) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            incident=incident,
            at=datetime(2026, 12, 7, 3, 4, 5, 123456 + i, tzinfo=UTC),
            kind=EntryKind.ALERT_ATTACHED,
            actor=actor if i % 2 else None,
            actor_name=f"alertmanager {i}",
            source=Source.ALERT,
            message=text,
            data=DATA[i],
        )
        for i, text in enumerate(TEXTS)
    ]


@pytest.fixture
def incident(db) -> Incident:
    service = Service.objects.create(name="checkout")
    return open_incident(service, title="Disk full", severity=2, source=Source.API)


def stored(entry: TimelineEntry) -> tuple:
    return (
        entry.at,
        entry.kind,
        entry.actor_id,
        entry.actor_name,
        entry.source,
        entry.message,
        entry.data,
    )


def test_rows_are_stored_as_bulk_create_stores_them_and_get_their_ids_in_order(incident, bob):
    ours, theirs = entries(incident, bob), entries(incident, bob)
    json_rows.insert(ours)
    TimelineEntry.objects.bulk_create(theirs)

    assert all(entry.pk and not entry._state.adding for entry in ours)
    assert [e.pk for e in ours] == sorted(e.pk for e in ours)
    for mine, reference in zip(ours, theirs, strict=True):
        assert stored(TimelineEntry.objects.get(pk=mine.pk)) == stored(
            TimelineEntry.objects.get(pk=reference.pk)
        )
        assert TimelineEntry.objects.get(pk=mine.pk).message == mine.message


def test_a_value_too_long_for_its_column_is_refused_not_cut(incident):
    [entry] = entries(incident, None)[:1]
    entry.kind = "k" * 40  # kind is a varchar(32)
    with pytest.raises(DataError), transaction.atomic():
        json_rows.insert([entry])


def test_a_related_object_not_saved_yet_is_refused_as_bulk_create_refuses_it(incident):
    unsaved = Incident(number=99999, title="not saved", service=incident.service)
    [entry] = entries(incident, None)[:1]
    entry.incident = unsaved
    with pytest.raises(ValueError, match="unsaved related object"):
        json_rows.insert([entry])
    with pytest.raises(ValueError, match="unsaved related object"):
        TimelineEntry.objects.bulk_create([entry])


def test_nothing_to_insert_is_no_statement(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        json_rows.insert([])


def test_a_model_with_a_field_it_cannot_carry_goes_through_bulk_create(incident, monkeypatch):
    monkeypatch.setattr(json_rows, "_SUPPORTED", json_rows._SUPPORTED - {"TextField"})
    rows = entries(incident, None)
    with CaptureQueriesContext(connection) as captured:
        json_rows.insert(rows)
    assert all(entry.pk for entry in rows)
    assert not any("jsonb_array_elements" in q["sql"] for q in captured.captured_queries)
    assert TimelineEntry.objects.get(pk=rows[0].pk).message == TEXTS[0]


@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                JSON_VALUES,
                st.integers(min_value=-(2**70), max_value=2**70),
                st.datetimes(timezones=st.just(UTC)),
                st.binary(max_size=8),
            ),
            max_size=4,
        ),
        max_size=4,
    )
)
@fuzz_settings(ci_examples=200)
def test_the_document_says_what_the_standard_librarys_would(rows) -> None:
    ours = json.loads(json_rows.dumps(rows))
    theirs = json.loads(json.dumps(rows, default=json_rows._cell))

    assert repr(ours) == repr(theirs)  # repr tells 1 from 1.0


def test_a_value_neither_can_write_is_refused() -> None:
    with pytest.raises(TypeError, match="object is not a column's value"):
        json_rows.dumps([[object()]])


def test_a_key_that_is_not_a_string_is_written_as_the_standard_library_writes_it() -> None:
    rows = [[{1: "a", None: "b", 2.5: "c"}]]

    assert json.loads(json_rows.dumps(rows)) == json.loads(json.dumps(rows))


@pytest.fixture
def requests_(incident) -> list[IngestRequest]:
    integration = Integration.objects.create(
        name="am", kind="alertmanager", service=incident.service
    )
    return [
        IngestRequest.objects.create(
            integration=integration,
            received_at=START_OF_UPDATE,
            outcome="accepted",
            status_code=202,
            body=b"{}",
        )
        for _ in TEXTS
    ]


def processed(requests: list[IngestRequest]) -> list[IngestRequest]:
    for i, request in enumerate(requests):
        request.processed_at = START_OF_UPDATE.replace(microsecond=i)
        request.results = DATA[i]
        request.error = TEXTS[i]
        request.status_code = 500  # not written
    return requests


def written(requests: list[IngestRequest]) -> list[tuple]:
    return [
        (r.processed_at, r.results, r.error, r.status_code)
        for r in IngestRequest.objects.filter(pk__in=[r.pk for r in requests]).order_by("pk")
    ]


def test_update_writes_each_instances_own_values_in_one_statement(requests_):
    rows = processed(requests_)
    untouched = IngestRequest.objects.create(
        integration=rows[0].integration,
        received_at=START_OF_UPDATE,
        outcome="accepted",
        status_code=202,
    )

    with CaptureQueriesContext(connection) as captured:
        json_rows.update(rows, ["processed_at", "results", "error"])

    assert len(captured.captured_queries) == 1
    assert written(rows) == [
        (START_OF_UPDATE.replace(microsecond=i), DATA[i], TEXTS[i], 202) for i in range(len(TEXTS))
    ]
    assert IngestRequest.objects.get(pk=untouched.pk).processed_at is None


def test_update_without_json_rows_writes_the_same(requests_, monkeypatch):
    monkeypatch.setattr(json_rows, "_SUPPORTED", json_rows._SUPPORTED - {"TextField"})
    rows = processed(requests_)

    with CaptureQueriesContext(connection) as captured:
        json_rows.update(rows, ["processed_at", "results", "error"])

    assert not any("jsonb_array_elements" in q["sql"] for q in captured.captured_queries)
    assert written(rows) == [
        (START_OF_UPDATE.replace(microsecond=i), DATA[i], TEXTS[i], 202) for i in range(len(TEXTS))
    ]


def test_update_refuses_what_is_not_a_column(requests_):
    rows = requests_
    with pytest.raises(ValueError, match="id is not a column"):
        json_rows.update(rows, ["id"])
    with pytest.raises(FieldDoesNotExist):
        json_rows.update(rows, ["no_such_field"])


def test_nothing_to_update_is_no_statement(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        json_rows.update([], ["message"])

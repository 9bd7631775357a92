"""core.compiled: a lookup compiled once finds, for any datetimes, what the ORM finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.compiled import Lookup
from muster.models import Heartbeat

START = datetime(2026, 12, 7, tzinfo=UTC)
MINUTES = st.integers(min_value=-5, max_value=65)


def between(after: datetime, before: datetime):
    return Heartbeat.objects.filter(at__gt=after, at__lte=before).order_by("name")


@pytest.fixture
def beats(db) -> list[Heartbeat]:
    return [
        Heartbeat.objects.create(name=f"beat-{m:02d}", at=START + timedelta(minutes=m))
        for m in range(60)
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(after=MINUTES, before=MINUTES)
def test_it_finds_what_the_orm_finds_for_any_datetimes(beats, after, before):
    lookup = Lookup(lambda a, b: between(a, b).values_list("name"), datetimes=2)
    a, b = START + timedelta(minutes=after), START + timedelta(minutes=before)

    assert [name for (name,) in lookup.rows(a, b)] == list(
        between(a, b).values_list("name", flat=True)
    )


def test_it_is_built_once_and_run_as_one_statement(beats):
    built = []

    def build(at: datetime):
        built.append(at)
        return Heartbeat.objects.filter(at__lt=at).values_list("name")[:1]

    lookup = Lookup(build)
    assert not lookup.exists(START)
    with CaptureQueriesContext(connection) as queries:
        assert lookup.exists(START + timedelta(minutes=1))
        assert lookup.rows(START + timedelta(hours=2)) == [("beat-00",)]
    assert len(built) == 1
    assert len(queries) == 2


def test_a_datetime_used_twice_is_put_in_both_places(beats):
    lookup = Lookup(lambda at: Heartbeat.objects.filter(at__gte=at, at__lte=at).values_list("name"))
    assert lookup.rows(START + timedelta(minutes=7)) == [("beat-07",)]


def test_a_lookup_without_datetimes(beats):
    lookup = Lookup(lambda: Heartbeat.objects.filter(name="beat-03").values_list("at"), datetimes=0)
    assert lookup.rows() == [(START + timedelta(minutes=3),)]


def test_a_query_that_leaves_a_datetime_out_is_refused(db):
    lookup = Lookup(lambda at: Heartbeat.objects.values_list("name"))
    with pytest.raises(ValueError, match="does not use every datetime"):
        lookup.rows(START)


def test_the_number_of_datetimes_is_checked(db):
    lookup = Lookup(lambda a, b: between(a, b).values_list("name"), datetimes=2)
    with pytest.raises(TypeError, match="takes 2 datetimes"):
        lookup.rows(START)
    with pytest.raises(ValueError, match="0 to 8"):
        Lookup(lambda: Heartbeat.objects.all(), datetimes=9)

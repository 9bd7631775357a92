"""core.compiled: a lookup compiled once finds, for any values, what the ORM finds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.models import Alert, Integration
from core.compiled import Ids, Lookup, Update
from incidents.models import Incident, Service
from muster.models import Heartbeat
from tests.helpers.api import add_alert, open_incident
from warroom.models import Room

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
    lookup = Lookup(lambda a, b: between(a, b).values_list("name"), takes=(datetime, datetime))
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
    assert len(built) == 2  # once with each set of stand-ins, then never again
    assert len(queries) == 2


def test_a_datetime_used_twice_is_put_in_both_places(beats):
    lookup = Lookup(lambda at: Heartbeat.objects.filter(at__gte=at, at__lte=at).values_list("name"))
    assert lookup.rows(START + timedelta(minutes=7)) == [("beat-07",)]


def test_a_lookup_without_datetimes(beats):
    lookup = Lookup(lambda: Heartbeat.objects.filter(name="beat-03").values_list("at"), takes=())
    assert lookup.rows() == [(START + timedelta(minutes=3),)]


def test_a_query_that_leaves_a_value_out_is_refused(db):
    lookup = Lookup(lambda at: Heartbeat.objects.values_list("name"))
    with pytest.raises(ValueError, match="does not use every value"):
        lookup.rows(START)
    # A value the ORM rewrites (here wrapped in %...%) is not found either: refused, not wrong.
    contains = Lookup(lambda name: Heartbeat.objects.filter(name__contains=name), takes=(str,))
    with pytest.raises(ValueError, match="does not use every value"):
        contains.rows("beat")


REFUSED = r"does not use every value|drops a condition|rewrites a value"


def test_a_value_the_orm_rewrites_is_refused_not_run_wrong(incidents):
    """An int out of a small column's range makes the ORM drop or empty its condition (for one
    set of stand-ins, not the other): refused, where the SQL would silently differ."""
    for build in (
        lambda v: Incident.objects.filter(severity=v).values_list("number"),
        lambda v: Incident.objects.filter(severity__gt=v).values_list("number"),
        lambda v: Incident.objects.filter(Q(number=v) | Q(severity=v)).values_list("number"),
    ):
        with pytest.raises(ValueError, match=REFUSED):
            Lookup(build, takes=(int,)).rows(3)
    # A string the ORM escapes for LIKE is refused too.
    escaped = Lookup(lambda g: Incident.objects.filter(group_key__startswith=g), takes=(str,))
    with pytest.raises(ValueError, match=REFUSED):
        escaped.rows("g0")


def test_the_number_of_datetimes_is_checked(db):
    lookup = Lookup(lambda a, b: between(a, b).values_list("name"), takes=(datetime, datetime))
    with pytest.raises(TypeError, match="takes 2 values"):
        lookup.rows(START)
    with pytest.raises(TypeError, match="takes a datetime"):
        lookup.rows(START, "an hour later")
    with pytest.raises(ValueError, match="0 to 8"):
        Lookup(lambda: Heartbeat.objects.all(), takes=(int,) * 9)
    with pytest.raises(ValueError, match="not <class 'float'>"):
        Lookup(lambda x: Heartbeat.objects.all(), takes=(float,))


def open_after(service: int, group: str, after: datetime, number: int):
    return (
        Incident.objects.open()
        .filter(service_id=service, group_key__gte=group, triggered_at__gt=after, number__gt=number)
        .order_by("number")
    )


@pytest.fixture
def incidents(db) -> list[Incident]:
    service = Service.objects.create(name="compiled")
    found = []
    for i in range(12):
        incident = open_incident(service, title=f"incident {i}", group_key=f"g{i:02d}")
        Incident.objects.filter(pk=incident.pk).update(triggered_at=START + timedelta(minutes=i))
        found.append(incident)
    return found


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    group=st.sampled_from(["", "g03", "g07", "g1", "h"]),
    after=st.integers(min_value=-1, max_value=13),
    skip=st.integers(min_value=-1, max_value=13),
    other_service=st.booleans(),
)
def test_instances_are_what_the_orm_makes_for_any_values(
    incidents, group, after, skip, other_service
):
    lookup = Lookup(
        lambda service, group, at, number: open_after(service, group, at, number).locked(),
        takes=(int, str, datetime, int),
    )
    service = incidents[0].service_id + other_service
    at, number = START + timedelta(minutes=after), incidents[0].number + skip
    with transaction.atomic():
        found = lookup.instances(service, group, at, number)
    expected = list(open_after(service, group, at, number))
    assert [i.number for i in found] == [i.number for i in expected]
    for mine, theirs in zip(found, expected, strict=True):
        assert type(mine) is Incident and not mine._state.adding
        for field in Incident._meta.concrete_fields:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.name


def test_instances_run_the_fields_converters(db):
    """JSON, bytes and datetimes come back as the ORM gives them."""
    integration = Integration.objects.create(
        name="compiled", kind="generic", service=Service.objects.create(name="compiled")
    )
    alert = add_alert(
        integration,
        labels={"deep": [1, {"two": None}], "é": "ü"},
        links=[{"href": "https://example.com"}],
        starts_at=START,
    )
    lookup = Lookup(lambda pk: Alert.objects.filter(pk=pk), takes=(int,))
    (found,) = lookup.instances(alert.pk)
    expected = Alert.objects.get(pk=alert.pk)
    for field in Alert._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.labels == {"deep": [1, {"two": None}], "é": "ü"}
    assert bytes(found.raw) == bytes(expected.raw)


def test_instances_need_a_query_of_model_rows(db):
    lookup = Lookup(lambda: Heartbeat.objects.values_list("name"), takes=())
    with pytest.raises(TypeError, match="one model's rows"):
        lookup.instances()


def same_fields(mine, theirs) -> None:
    assert type(mine) is type(theirs) and not mine._state.adding
    for field in type(theirs)._meta.concrete_fields:
        assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.name


def test_instances_bring_their_select_related_models_as_the_orm_does(db, django_assert_num_queries):
    """Forward and reverse one-to-one joins, nested, and a nullable one left empty."""
    service = Service.objects.create(name="related", description="joined in")
    integration = Integration.objects.create(name="related", kind="generic", service=service)
    incident = open_incident(service)
    Room.objects.create(incident=incident, name="#1")
    with_incident = add_alert(integration, incident)
    without = add_alert(integration)
    lookup = Lookup(
        lambda pk: (
            Alert.objects.filter(pk__gte=pk)
            .select_related("integration__service", "incident__room")
            .order_by("pk")
        ),
        takes=(int,),
    )

    found = lookup.instances(with_incident.pk)
    expected = list(
        Alert.objects.filter(pk__gte=with_incident.pk)
        .select_related("integration__service", "incident__room")
        .order_by("pk")
    )

    assert [a.pk for a in found] == [with_incident.pk, without.pk]
    with django_assert_num_queries(0):  # every related model came with the rows
        for mine, theirs in zip(found, expected, strict=True):
            same_fields(mine, theirs)
            same_fields(mine.integration, theirs.integration)
            same_fields(mine.integration.service, theirs.integration.service)
        same_fields(found[0].incident, expected[0].incident)
        same_fields(found[0].incident.room, expected[0].incident.room)
        assert found[1].incident is None


def test_get_is_the_one_instance_or_the_models_does_not_exist(db):
    service = Service.objects.create(name="get")
    lookup = Lookup(lambda pk: Service.objects.filter(pk=pk), takes=(int,))

    assert lookup.get(service.pk) == service
    with pytest.raises(Service.DoesNotExist):
        lookup.get(service.pk + 1000)


@pytest.fixture
def services(db) -> list[Service]:
    return [Service.objects.create(name=f"ids-{i:02d}", description=f"{i}") for i in range(20)]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(picks=st.lists(st.integers(min_value=-3, max_value=19), max_size=12))
def test_ids_find_what_the_orms_in_finds_whatever_the_lists_length(services, picks):
    """A list of ids is one value: one compiled statement for every length, empty included,
    with repeats and ids that are not there."""
    absent = max(s.pk for s in services)  # plus 1 to 3: ids no row has
    ids = [services[p].pk if p >= 0 else absent - p for p in picks]
    lookup = Lookup(
        lambda text: Service.objects.filter(Ids("pk", text)).order_by("pk"), takes=(str,)
    )

    found = lookup.instances(json.dumps(ids))

    assert found == list(Service.objects.filter(pk__in=ids).order_by("pk"))
    assert [s.name for s in found] == sorted({services[p].name for p in picks if p >= 0})


def test_ids_in_a_deferring_lookup_leave_the_deferred_fields_to_load_later(services):
    lookup = Lookup(
        lambda text: Service.objects.filter(Ids("pk", text)).defer("description").order_by("pk"),
        takes=(str,),
    )
    first, second = lookup.instances(json.dumps([services[2].pk, services[1].pk]))

    assert [first.pk, second.pk] == [services[1].pk, services[2].pk]
    assert first.get_deferred_fields() == {"description"}
    assert first.description == "1"  # read when asked for, as the ORM's deferred fields are


# --- updates ---------------------------------------------------------------------------------


# Any text PostgreSQL stores (no NUL, no lone surrogate), LIKE's and quoting's characters too.
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(after=MINUTES, before=MINUTES, name=TEXT)
def test_an_update_changes_what_the_orm_changes_for_any_values(beats, after, before, name):
    update = Update(
        lambda a, b, n, at: (between(a, b), {"name": Concat(F("name"), Value(n)), "at": at}),
        takes=(datetime, datetime, str, datetime),
    )
    a, b = START + timedelta(minutes=after), START + timedelta(minutes=before)
    later = START + timedelta(days=1)
    with transaction.atomic():
        expected = list(between(a, b).values_list("pk", flat=True))
        by_orm = between(a, b).update(name=Concat(F("name"), Value(name)), at=later)
        orm_rows = sorted(Heartbeat.objects.filter(pk__in=expected).values_list("pk", "name", "at"))
        transaction.set_rollback(True)
    with transaction.atomic():
        assert update.run(a, b, name, later) == by_orm == len(expected)
        assert (
            sorted(Heartbeat.objects.filter(pk__in=expected).values_list("pk", "name", "at"))
            == orm_rows
        )
        transaction.set_rollback(True)


def test_an_update_sets_each_value_given_where_it_goes(incidents):
    update = Update(
        lambda number, title, at: (
            Incident.objects.filter(number=number),
            {"title": title, "acknowledged_at": at, "severity": F("severity") + 1},
        ),
        takes=(int, str, datetime),
    )
    target = incidents[3]
    severity = target.severity
    with CaptureQueriesContext(connection) as queries:
        assert update.run(target.number, "it's 50% down_", START) == 1
        assert update.run(-1, "nothing", START) == 0
    assert len(queries) == 2
    target.refresh_from_db()
    assert (target.title, target.acknowledged_at) == ("it's 50% down_", START)
    assert target.severity == severity + 1
    assert Incident.objects.filter(title="it's 50% down_").count() == 1


def test_an_update_takes_only_the_values_it_was_built_for(db):
    update = Update(lambda at: (Heartbeat.objects.filter(name="x"), {"at": at}))
    with pytest.raises(TypeError, match="takes a datetime"):
        update.run("now")
    leaves_out = Update(lambda at: (Heartbeat.objects.filter(name="x"), {"name": "y"}))
    with pytest.raises(ValueError, match="does not use every value"):
        leaves_out.run(START)

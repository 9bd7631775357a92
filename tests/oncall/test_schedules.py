"""Schedule selectors: specs from the database, who is on call, next, per service, per person,
and what deactivating someone leaves uncovered."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from incidents.models import Service
from oncall import schedules
from oncall.models import EscalationPolicy
from oncall.rotations import Restriction
from tests.oncall.builders import (
    add_layer,
    add_override,
    make_person,
    make_policy,
    make_schedule,
    make_team,
)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2025, 6, 2, 9, tzinfo=BERLIN)  # a Monday, 09:00 in Berlin
BUSINESS = [{"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]


@pytest.fixture
def ann(db):
    return make_person("ann")


@pytest.fixture
def ben(db):
    return make_person("ben")


@pytest.fixture
def cat(db):
    return make_person("cat")


@pytest.fixture
def weekly(ann, ben, cat):
    """A Berlin schedule: ann, ben, cat a week each from Monday 09:00."""
    schedule = make_schedule("primary", "Europe/Berlin")
    add_layer(schedule, [ann, ben, cat], start=MONDAY, rotation="weekly")
    return schedule


def names(users) -> list[str]:
    return [u.username for u in users]


def deactivate(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


# --- specs -------------------------------------------------------------------------------------


def test_a_schedule_spec_holds_layers_by_level_participants_in_order_and_overrides_oldest_first(
    ann, ben, cat
):
    schedule = make_schedule("primary", "Europe/Berlin")
    top = add_layer(schedule, [cat], start=MONDAY, level=3, restrictions=BUSINESS)
    bottom = add_layer(schedule, [ben, ann], start=MONDAY, rotation="daily", level=0)
    first = add_override(schedule, ann, MONDAY, MONDAY + timedelta(hours=2))
    second = add_override(schedule, ben, MONDAY, MONDAY + timedelta(hours=1))

    spec = schedules.schedule_spec(schedule)

    assert spec.time_zone == "Europe/Berlin"
    assert [layer.layer_id for layer in spec.layers] == [bottom.pk, top.pk]
    assert list(spec.layers[0].participants) == [ben.pk, ann.pk]
    assert spec.layers[1].restrictions == [Restriction((0, 1, 2, 3, 4), time(9), time(17))]
    assert [o.override_id for o in spec.overrides] == [first.pk, second.pk]


def test_an_unreadable_stored_restriction_is_ignored_rather_than_leaving_nobody_on_call(ann):
    schedule = make_schedule()
    add_layer(schedule, [ann], start=MONDAY, restrictions=[{"start": "nine", "end": "5"}])

    assert schedules.on_call_now(schedule, MONDAY + timedelta(hours=12)) == [ann]


def test_the_final_schedule_keeps_local_handoffs_across_the_october_dst_change(ann, ben):
    schedule = make_schedule("berlin", "Europe/Berlin")
    add_layer(schedule, [ann, ben], start=datetime(2025, 10, 20, 9, tzinfo=BERLIN))

    shifts = schedules.final_schedule(
        schedule, datetime(2025, 10, 20, 9, tzinfo=BERLIN), datetime(2025, 11, 3, 9, tzinfo=BERLIN)
    )

    assert [(s.user_id, s.start.astimezone(BERLIN).hour) for s in shifts] == [
        (ann.pk, 9),
        (ben.pk, 9),
    ]
    assert shifts[0].end - shifts[0].start == timedelta(hours=169)


# --- on call now, next ---------------------------------------------------------------------------


def test_on_call_now_names_whoever_the_rotation_has_at_that_moment(weekly, ann, ben, cat):
    assert schedules.on_call_now(weekly, MONDAY) == [ann]
    assert schedules.on_call_now(weekly, MONDAY + timedelta(days=7)) == [ben]
    assert schedules.on_call_now(weekly, MONDAY + timedelta(days=14, hours=3)) == [cat]
    assert schedules.on_call_now(weekly, MONDAY - timedelta(seconds=1)) == []


def test_on_call_now_defaults_to_the_current_time(weekly, ben):
    with time_machine.travel(MONDAY + timedelta(days=8), tick=False):
        assert schedules.on_call_now(weekly) == [ben]


def test_an_override_puts_its_person_on_call(weekly, cat):
    add_override(weekly, cat, MONDAY + timedelta(hours=1), MONDAY + timedelta(hours=3))
    assert schedules.on_call_now(weekly, MONDAY + timedelta(hours=2)) == [cat]


def test_a_deactivated_person_is_never_on_call_and_the_rotation_goes_on_without_them(
    weekly, ann, ben, cat
):
    add_override(weekly, ben, MONDAY + timedelta(hours=1), MONDAY + timedelta(hours=3))
    deactivate(ben)

    assert schedules.on_call_now(weekly, MONDAY + timedelta(hours=2)) == [ann]
    # Two left, counted from the start: ann, cat, ann, cat …
    assert [schedules.on_call_now(weekly, MONDAY + timedelta(days=7 * w)) for w in range(4)] == [
        [ann],
        [cat],
        [ann],
        [cat],
    ]
    shifts = schedules.final_schedule(weekly, MONDAY, MONDAY + timedelta(days=60))
    assert ben.pk not in {s.user_id for s in shifts}


def test_next_on_call_is_the_next_person_and_when_they_take_over(weekly, ben):
    assert schedules.next_on_call(weekly, MONDAY + timedelta(days=1)) == (
        ben,
        MONDAY + timedelta(days=7),
    )


def test_next_on_call_defaults_to_now_and_skips_the_current_person_carrying_straight_on(
    weekly, ann, cat
):
    # ann's own override right after her week is the same stretch of duty.
    add_override(weekly, ann, MONDAY + timedelta(days=7), MONDAY + timedelta(days=8))
    with time_machine.travel(MONDAY + timedelta(days=2), tick=False):
        person, start = schedules.next_on_call(weekly)
    assert person.username == "ben"
    assert start == MONDAY + timedelta(days=8)


def test_next_on_call_in_a_gap_is_the_next_shift_and_none_when_nobody_ever_comes(ann):
    business = make_schedule("business", "Europe/Berlin")
    add_layer(business, [ann], start=MONDAY, restrictions=BUSINESS)
    evening = MONDAY + timedelta(hours=10)  # 19:00

    assert schedules.on_call_now(business, evening) == []
    assert schedules.next_on_call(business, evening) == (ann, MONDAY + timedelta(days=1))
    assert schedules.next_on_call(make_schedule("empty"), evening) is None


def test_the_summary_says_until_when_and_who_is_next(weekly, ann, ben):
    (entry,) = schedules.on_call_summary([weekly], MONDAY + timedelta(days=3))

    assert entry.people == [ann]
    assert entry.until == MONDAY + timedelta(days=7)
    assert (entry.next_person, entry.next_start) == (ben, MONDAY + timedelta(days=7))


def test_the_summary_of_someone_on_call_for_good_has_no_end_and_nobody_next(ann):
    forever = make_schedule("forever")
    add_layer(forever, [ann], start=MONDAY, rotation="daily")

    (entry,) = schedules.on_call_summary([forever], MONDAY + timedelta(days=400))

    assert (entry.people, entry.until, entry.next_person) == ([ann], None, None)


def test_who_is_on_call_reads_a_fixed_number_of_queries_however_big_the_schedule(
    db, django_assert_max_num_queries
):
    schedule = make_schedule("big", "Europe/Berlin")
    crowd = [make_person(f"p{i}") for i in range(12)]
    for level in range(4):
        layer = add_layer(schedule, crowd, start=MONDAY, rotation="daily", level=level)
        add_override(schedule, crowd[level], MONDAY, MONDAY + timedelta(hours=1 + level))
        assert layer.participants.count() == 12

    with django_assert_max_num_queries(3):
        schedules.on_call_now(schedule, MONDAY + timedelta(days=30))
    with django_assert_max_num_queries(3):
        schedules.on_call_summary([schedule], MONDAY + timedelta(days=30))


# --- per service ------------------------------------------------------------------------------


def test_on_call_for_a_service_is_whom_its_policys_first_step_pages(weekly, ann, ben, cat):
    service = Service.objects.create(name="payments")
    dave = make_person("dave")
    eve = make_person("eve")
    gone = make_person("gone")
    deactivate(gone)
    team = make_team("dba", [eve, ann, gone])
    make_policy(
        "payments",
        {"users": [dave, gone], "schedules": [weekly], "teams": [team]},
        {"users": [cat]},
        service=service,
    )

    people = schedules.on_call_for_service(service, MONDAY + timedelta(days=7))

    assert names(people) == ["dave", "ben", "ann", "eve"]


def test_a_service_without_a_policy_or_with_an_empty_one_has_nobody(db):
    service = Service.objects.create(name="payments")
    assert schedules.on_call_for_service(service, MONDAY) == []
    make_policy("empty", service=service)
    assert EscalationPolicy.objects.get(name="empty").steps.count() == 0
    assert schedules.on_call_for_service(service, MONDAY) == []


# --- a person's shifts ------------------------------------------------------------------------


def test_a_persons_shifts_come_from_every_schedule_they_are_in_by_start(weekly, ann, ben):
    secondary = make_schedule("secondary", "America/New_York")
    add_layer(secondary, [ben, ann], start=MONDAY + timedelta(days=1), rotation="daily")
    third = make_schedule("third")
    add_override(third, ann, MONDAY + timedelta(hours=5), MONDAY + timedelta(hours=6))

    found = schedules.shifts_for_person(ann, MONDAY, MONDAY + timedelta(days=3))

    assert [(p.schedule.name, p.start, p.end) for p in found] == [
        ("primary", MONDAY, MONDAY + timedelta(days=3)),
        ("third", MONDAY + timedelta(hours=5), MONDAY + timedelta(hours=6)),
        ("secondary", MONDAY + timedelta(days=2), MONDAY + timedelta(days=3)),
    ]
    assert found[1].shift.is_override and not found[0].shift.is_override


def test_a_deactivated_person_has_no_shifts(weekly, ann):
    deactivate(ann)
    assert schedules.shifts_for_person(ann, MONDAY, MONDAY + timedelta(days=30)) == []


# --- deactivation -----------------------------------------------------------------------------


def test_deactivating_someone_shows_the_time_only_they_covered(ann, ben):
    primary = make_schedule("primary", "Europe/Berlin")
    add_layer(primary, [ann, ben], start=MONDAY, rotation="weekly")  # goes on with ben
    nights = make_schedule("nights", "Europe/Berlin")
    add_layer(nights, [ben], start=MONDAY)  # ann is not in it
    weekends = make_schedule("weekends", "Europe/Berlin")
    add_layer(
        weekends,
        [ann],
        start=MONDAY,
        restrictions=[{"weekdays": [5], "start": "08:00", "end": "20:00"}],
    )
    covered = make_schedule("covered", "Europe/Berlin")
    add_layer(covered, [ben], start=MONDAY, restrictions=BUSINESS)
    add_override(covered, ann, MONDAY + timedelta(hours=10), MONDAY + timedelta(hours=12))

    report = schedules.gaps_after_deactivation(ann, horizon_days=14, now=MONDAY)

    assert [(r.schedule.name, r.gaps) for r in report] == [
        ("covered", [(MONDAY + timedelta(hours=10), MONDAY + timedelta(hours=12))]),
        ("primary", []),
        (
            "weekends",
            [
                (datetime(2025, 6, 7, 8, tzinfo=BERLIN), datetime(2025, 6, 7, 20, tzinfo=BERLIN)),
                (
                    datetime(2025, 6, 14, 8, tzinfo=BERLIN),
                    datetime(2025, 6, 14, 20, tzinfo=BERLIN),
                ),
            ],
        ),
    ]


def test_the_gaps_are_the_same_before_and_after_the_deactivation(ann, ben):
    weekends = make_schedule("weekends", "Europe/Berlin")
    add_layer(
        weekends,
        [ann],
        start=MONDAY,
        restrictions=[{"weekdays": [6], "start": "00:00", "end": "00:00"}],
    )
    before = schedules.gaps_after_deactivation(ann, horizon_days=7, now=MONDAY)
    deactivate(ann)
    after = schedules.gaps_after_deactivation(ann, horizon_days=7, now=MONDAY)

    sunday = datetime(2025, 6, 8, tzinfo=BERLIN)
    assert (
        [r.gaps for r in before]
        == [r.gaps for r in after]
        == [[(sunday, sunday + timedelta(days=1))]]
    )


def test_subtracting_ranges_keeps_what_the_second_list_does_not_cover():
    t = [datetime(2025, 1, 1, h, tzinfo=UTC) for h in range(12)]
    assert schedules.subtract_ranges([(t[0], t[10])], [(t[2], t[3]), (t[5], t[11])]) == [
        (t[0], t[2]),
        (t[3], t[5]),
    ]
    assert schedules.subtract_ranges([(t[1], t[2])], []) == [(t[1], t[2])]

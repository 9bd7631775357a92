"""Pure schedule computation: rotations, DST, restrictions, layers, overrides (no database)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from oncall.rotations import (
    CUSTOM,
    DAILY,
    WEEKLY,
    LayerSpec,
    OverrideSpec,
    Restriction,
    RestrictionError,
    ScheduleSpec,
    Shift,
    final_shifts,
    layer_shifts,
    next_shifts,
    on_call_at,
    restriction_from_dict,
    uncovered,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = {"Europe/Berlin": BERLIN, "America/New_York": NEW_YORK}
A, B, C = 1, 2, 3
WEEKDAYS = (0, 1, 2, 3, 4)


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)


def hours(shift: Shift) -> float:
    return (shift.end - shift.start) / timedelta(hours=1)


def local_starts(shifts: list[Shift], zone: ZoneInfo) -> list[str]:
    return [s.start.astimezone(zone).strftime("%a %m-%d %H:%M") for s in shifts]


def spec(zone: str, *layers: LayerSpec, overrides: tuple[OverrideSpec, ...] = ()) -> ScheduleSpec:
    return ScheduleSpec(zone, list(layers), list(overrides))


def who(shifts: list[Shift]) -> list[int]:
    return [s.user_id for s in shifts]


# --- daily and weekly rotations keep their local handoff time across DST --------------------


@pytest.mark.parametrize(
    ("zone_name", "dst_day", "length"),
    [
        ("Europe/Berlin", date(2025, 3, 29), 23),  # spring forward on Sunday 30 March
        ("Europe/Berlin", date(2025, 10, 25), 25),  # fall back on Sunday 26 October
        ("America/New_York", date(2025, 3, 8), 23),  # spring forward on Sunday 9 March
        ("America/New_York", date(2025, 11, 1), 25),  # fall back on Sunday 2 November
    ],
)
def test_a_daily_rotation_hands_off_at_the_same_local_time_across_a_dst_change(
    zone_name, dst_day, length
):
    zone = ZONES[zone_name]
    first = datetime.combine(dst_day - timedelta(days=2), time(9), tzinfo=zone)
    layer = LayerSpec([A, B], DAILY, first)

    shifts = final_shifts(spec(zone_name, layer), first, first + timedelta(days=5))

    assert len(shifts) == 5
    assert all(s.start.astimezone(zone).time() == time(9) for s in shifts)
    assert shifts[-1].end.astimezone(zone).time() == time(9)
    assert who(shifts) == [A, B, A, B, A]
    assert [hours(s) for s in shifts] == [24, 24, length, 24, 24]


@pytest.mark.parametrize(
    ("zone_name", "monday", "length"),
    [
        ("Europe/Berlin", date(2025, 3, 24), 167),
        ("Europe/Berlin", date(2025, 10, 20), 169),
        ("America/New_York", date(2025, 3, 3), 167),
        ("America/New_York", date(2025, 10, 27), 169),
    ],
)
def test_a_weekly_rotation_hands_off_on_monday_morning_local_time_across_a_dst_change(
    zone_name, monday, length
):
    zone = ZONES[zone_name]
    first = datetime.combine(monday - timedelta(days=7), time(10), tzinfo=zone)
    layer = LayerSpec([A, B, C], WEEKLY, first)

    shifts = final_shifts(spec(zone_name, layer), first, first + timedelta(days=21))

    assert who(shifts) == [A, B, C]
    assert [s.start.astimezone(zone).strftime("%a %H:%M") for s in shifts] == ["Mon 10:00"] * 3
    assert [hours(s) for s in shifts] == [168, length, 168]


def test_a_custom_rotation_lasts_real_hours_so_its_local_handoff_moves_with_dst():
    first = at(BERLIN, 2025, 3, 29, 8)
    layer = LayerSpec([A, B, C], CUSTOM, first, shift_hours=12)

    # Aware arithmetic in Python is wall-clock arithmetic: add real hours in UTC.
    shifts = final_shifts(
        spec("Europe/Berlin", layer), first, first.astimezone(UTC) + timedelta(hours=48)
    )

    assert all(hours(s) == 12 for s in shifts)
    assert who(shifts) == [A, B, C, A]
    # 12 real hours after Saturday 20:00 CET is Sunday 09:00 CEST.
    assert local_starts(shifts, BERLIN) == [
        "Sat 03-29 08:00",
        "Sat 03-29 20:00",
        "Sun 03-30 09:00",
        "Sun 03-30 21:00",
    ]


def test_a_custom_rotation_across_the_new_york_fall_back_night_keeps_eight_real_hours():
    first = at(NEW_YORK, 2025, 11, 1, 16)
    layer = LayerSpec([A, B], CUSTOM, first, shift_hours=8)

    end = first.astimezone(UTC) + timedelta(hours=32)
    shifts = final_shifts(spec("America/New_York", layer), first, end)

    assert [hours(s) for s in shifts] == [8, 8, 8, 8]
    assert local_starts(shifts, NEW_YORK) == [
        "Sat 11-01 16:00",
        "Sun 11-02 00:00",
        "Sun 11-02 07:00",
        "Sun 11-02 15:00",
    ]


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York"])
def test_a_midnight_handoff_stays_at_local_midnight_through_both_dst_changes(zone_name):
    zone = ZONES[zone_name]
    first = at(zone, 2025, 1, 6)  # a Monday
    layer = LayerSpec([A, B], DAILY, first)

    shifts = final_shifts(spec(zone_name, layer), first, at(zone, 2026, 1, 5))

    assert len(shifts) == 364
    assert all(s.start.astimezone(zone).time() == time(0) for s in shifts)
    assert sorted({hours(s) for s in shifts}) == [23, 24, 25]
    assert [hours(s) for s in shifts].count(23) == 1
    assert [hours(s) for s in shifts].count(25) == 1


def test_a_handoff_at_a_time_the_spring_forward_night_skips_happens_an_hour_later_that_day():
    first = at(BERLIN, 2025, 3, 28, 2, 30)
    layer = LayerSpec([A, B], DAILY, first)

    shifts = final_shifts(spec("Europe/Berlin", layer), first, at(BERLIN, 2025, 4, 1, 2, 30))

    assert local_starts(shifts, BERLIN) == [
        "Fri 03-28 02:30",
        "Sat 03-29 02:30",
        "Sun 03-30 03:30",  # 02:30 does not exist that night
        "Mon 03-31 02:30",
    ]
    assert all(s.end == n.start for s, n in itertools.pairwise(shifts))


def test_a_handoff_at_a_time_the_fall_back_night_repeats_happens_at_its_first_occurrence():
    first = at(NEW_YORK, 2025, 11, 1, 1, 30)
    layer = LayerSpec([A, B], DAILY, first)

    end = first.astimezone(UTC) + timedelta(hours=49)
    shifts = final_shifts(spec("America/New_York", layer), first, end)

    assert shifts[1].start == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert [hours(s) for s in shifts] == [24, 25]


# --- restrictions -----------------------------------------------------------------------------


def test_a_business_hours_restriction_keeps_a_layer_to_weekdays_nine_to_five():
    business = Restriction(WEEKDAYS, time(9), time(17))
    first = at(BERLIN, 2025, 3, 24, 9)  # Monday; the week ends in the spring-forward night
    layer = LayerSpec([A, B], WEEKLY, first, restrictions=[business])

    shifts = final_shifts(spec("Europe/Berlin", layer), first, at(BERLIN, 2025, 4, 7))

    assert who(shifts) == [A] * 5 + [B] * 5
    assert all(hours(s) == 8 for s in shifts)
    assert [s.start.astimezone(BERLIN).strftime("%a %H:%M") for s in shifts] == [
        f"{day} 09:00" for day in ("Mon", "Tue", "Wed", "Thu", "Fri") * 2
    ]
    # The second week is in summer time: 09:00 CEST is 07:00 UTC.
    assert shifts[5].start == datetime(2025, 3, 31, 7, tzinfo=UTC)


def test_an_overnight_restriction_runs_from_ten_at_night_to_six_the_next_morning():
    nights = Restriction(WEEKDAYS, time(22), time(6))
    first = at(NEW_YORK, 2025, 6, 2)  # Monday
    layer = LayerSpec([A], DAILY, first, restrictions=[nights])

    shifts = final_shifts(spec("America/New_York", layer), first, first + timedelta(days=7))

    assert [(s.start.astimezone(NEW_YORK).strftime("%a %H:%M"), hours(s)) for s in shifts] == [
        (f"{day} 22:00", 8) for day in ("Mon", "Tue", "Wed", "Thu", "Fri")
    ]


def test_a_range_starting_in_the_small_hours_gets_the_rest_of_the_night_that_began_before_it():
    nights = Restriction(WEEKDAYS, time(22), time(6))
    layer = LayerSpec([A], DAILY, at(NEW_YORK, 2025, 6, 2), restrictions=[nights])

    shifts = final_shifts(
        spec("America/New_York", layer), at(NEW_YORK, 2025, 6, 3, 3), at(NEW_YORK, 2025, 6, 3, 12)
    )

    assert [(s.start, s.end) for s in shifts] == [
        (at(NEW_YORK, 2025, 6, 3, 3), at(NEW_YORK, 2025, 6, 3, 6))
    ]


@pytest.mark.parametrize(("saturday", "length"), [(date(2025, 3, 29), 7), (date(2025, 10, 25), 9)])
def test_an_overnight_restriction_through_a_dst_night_is_that_many_real_hours(saturday, length):
    nights = Restriction((5,), time(22), time(6))
    first = datetime.combine(saturday, time(12), tzinfo=BERLIN)
    layer = LayerSpec([A], DAILY, first, restrictions=[nights])

    shifts = final_shifts(spec("Europe/Berlin", layer), first, first + timedelta(days=2))

    assert [hours(s) for s in shifts] == [length]
    assert shifts[0].end.astimezone(BERLIN).time() == time(6)


def test_restrictions_come_from_stored_json_and_bad_ones_say_what_is_wrong():
    assert restriction_from_dict({"weekdays": [4, 0, 0], "start": "09:00", "end": "17:30"}) == (
        Restriction((0, 4), time(9), time(17, 30))
    )
    assert restriction_from_dict({"start": "22:00", "end": "24:00"}) == Restriction(
        tuple(range(7)), time(22), time(0)
    )
    bad = [
        ({"weekdays": [7], "start": "09:00", "end": "17:00"}, "weekdays"),
        ({"weekdays": [], "start": "09:00", "end": "17:00"}, "weekdays"),
        ({"weekdays": [True], "start": "09:00", "end": "17:00"}, "weekdays"),
        ({"weekdays": [0], "start": "9am", "end": "17:00"}, "start must be a time"),
        ({"weekdays": [0], "start": "09:00"}, "needs a start and an end"),
        ({"weekdays": [0], "start": "09:00", "end": 17}, "end must be a time"),
        ({"weekdays": [0], "start": "09:00+02:00", "end": "17:00"}, "no offset"),
        ({"days": [0], "start": "09:00", "end": "17:00"}, "unknown restriction fields: days"),
        (["09:00", "17:00"], "a restriction is"),
    ]
    for data, message in bad:
        with pytest.raises(RestrictionError, match=message):
            restriction_from_dict(data)


# --- layers and overrides ---------------------------------------------------------------------


def test_a_higher_layer_wins_only_where_it_has_someone_and_the_lower_layer_fills_the_rest():
    monday = at(BERLIN, 2025, 6, 2)
    around_the_clock = LayerSpec([C], DAILY, monday, level=0, layer_id=10)
    business = LayerSpec(
        [A, B],
        WEEKLY,
        monday + timedelta(hours=9),
        restrictions=[Restriction(WEEKDAYS, time(9), time(17))],
        level=1,
        layer_id=11,
    )

    shifts = final_shifts(
        spec("Europe/Berlin", business, around_the_clock), monday, monday + timedelta(days=7)
    )

    assert who(shifts) == [C, A, C, A, C, A, C, A, C, A, C]
    assert [s.layer_id for s in shifts] == [10, 11] * 5 + [10]
    # C's night and morning pieces join up: Monday 17:00 to Tuesday 09:00 is one shift.
    assert (shifts[2].start, shifts[2].end) == (
        at(BERLIN, 2025, 6, 2, 17),
        at(BERLIN, 2025, 6, 3, 9),
    )
    assert (shifts[-1].start, shifts[-1].end) == (
        at(BERLIN, 2025, 6, 6, 17),
        at(BERLIN, 2025, 6, 9),
    )


def test_without_a_lower_layer_the_time_outside_restrictions_is_a_gap():
    monday = at(BERLIN, 2025, 6, 2)
    business = LayerSpec(
        [A], WEEKLY, monday, restrictions=[Restriction(WEEKDAYS, time(9), time(17))]
    )
    shifts = final_shifts(spec("Europe/Berlin", business), monday, monday + timedelta(days=1))

    assert uncovered(shifts, monday, monday + timedelta(days=1)) == [
        (at(BERLIN, 2025, 6, 2, 0), at(BERLIN, 2025, 6, 2, 9)),
        (at(BERLIN, 2025, 6, 2, 17), at(BERLIN, 2025, 6, 3, 0)),
    ]
    assert on_call_at(spec("Europe/Berlin", business), at(BERLIN, 2025, 6, 2, 8, 59)) == []
    assert on_call_at(spec("Europe/Berlin", business), at(BERLIN, 2025, 6, 2, 9)) == [A]


def test_an_override_wins_over_every_layer_and_the_rotation_resumes_after_it():
    monday = at(NEW_YORK, 2025, 6, 2, 9)
    lower = LayerSpec([A, B], DAILY, monday, level=0)
    higher = LayerSpec([B], DAILY, monday + timedelta(hours=12), level=5)
    override = OverrideSpec(C, monday + timedelta(hours=10), monday + timedelta(hours=14), 7)
    schedule = spec("America/New_York", lower, higher, overrides=(override,))

    shifts = final_shifts(schedule, monday, monday + timedelta(hours=24))

    assert [(s.user_id, hours(s)) for s in shifts] == [(A, 10), (C, 4), (B, 10)]
    assert shifts[1].is_override and shifts[1].override_id == 7
    assert not shifts[0].is_override


def test_an_override_covers_time_no_layer_covers():
    monday = at(BERLIN, 2025, 6, 2)
    business = LayerSpec(
        [A], WEEKLY, monday, restrictions=[Restriction(WEEKDAYS, time(9), time(17))]
    )
    night = OverrideSpec(B, at(BERLIN, 2025, 6, 2, 20), at(BERLIN, 2025, 6, 3, 2))

    assert on_call_at(
        spec("Europe/Berlin", business, overrides=(night,)), at(BERLIN, 2025, 6, 2, 23)
    ) == [B]


def test_of_two_overlapping_overrides_the_later_one_wins():
    monday = at(BERLIN, 2025, 6, 2, 9)
    layer = LayerSpec([A], DAILY, monday)
    first = OverrideSpec(B, monday + timedelta(hours=1), monday + timedelta(hours=5), 1)
    second = OverrideSpec(C, monday + timedelta(hours=3), monday + timedelta(hours=4), 2)

    shifts = final_shifts(
        spec("Europe/Berlin", layer, overrides=(first, second)), monday, monday + timedelta(hours=6)
    )

    assert [(s.user_id, hours(s)) for s in shifts] == [(A, 1), (B, 2), (C, 1), (B, 1), (A, 1)]


def test_an_override_reaching_outside_the_range_is_clipped_to_it():
    monday = at(BERLIN, 2025, 6, 2, 9)
    override = OverrideSpec(B, monday - timedelta(days=3), monday + timedelta(hours=2))
    schedule = spec("Europe/Berlin", LayerSpec([A], DAILY, monday), overrides=(override,))

    shifts = final_shifts(schedule, monday, monday + timedelta(hours=4))

    assert [(s.user_id, s.start, s.end) for s in shifts] == [
        (B, monday, monday + timedelta(hours=2)),
        (A, monday + timedelta(hours=2), monday + timedelta(hours=4)),
    ]


def test_a_layer_has_nobody_before_its_start_or_after_its_end_or_without_participants():
    start = at(BERLIN, 2025, 6, 10, 9)
    layer = LayerSpec([A], DAILY, start, end=start + timedelta(days=2))
    schedule = spec("Europe/Berlin", layer, LayerSpec([], DAILY, start - timedelta(days=9)))

    shifts = final_shifts(schedule, start - timedelta(days=5), start + timedelta(days=5))

    assert [(s.start, s.end) for s in shifts] == [(start, start + timedelta(days=2))]


def test_a_person_on_call_several_shifts_in_a_row_gets_one_merged_shift():
    start = at(BERLIN, 2025, 6, 2, 9)
    shifts = final_shifts(
        spec("Europe/Berlin", LayerSpec([A], DAILY, start, layer_id=3)),
        start,
        start + timedelta(days=10),
    )
    assert [(s.user_id, s.layer_id, hours(s)) for s in shifts] == [(A, 3, 240)]


# --- leap day ---------------------------------------------------------------------------------


def test_a_daily_rotation_gives_the_leap_day_its_own_shift():
    first = at(BERLIN, 2028, 2, 27, 9)
    shifts = final_shifts(
        spec("Europe/Berlin", LayerSpec([A, B, C], DAILY, first)), first, first + timedelta(days=4)
    )
    assert [(s.start.astimezone(BERLIN).date(), s.user_id) for s in shifts] == [
        (date(2028, 2, 27), A),
        (date(2028, 2, 28), B),
        (date(2028, 2, 29), C),
        (date(2028, 3, 1), A),
    ]


def test_a_weekly_rotation_starting_on_the_leap_day_hands_off_the_next_tuesday():
    first = at(NEW_YORK, 2028, 2, 29, 9)  # a Tuesday
    shifts = final_shifts(
        spec("America/New_York", LayerSpec([A, B], WEEKLY, first)),
        first,
        first + timedelta(days=14),
    )
    assert [s.start for s in shifts] == [first, at(NEW_YORK, 2028, 3, 7, 9)]


def test_a_tuesday_restriction_includes_the_leap_day():
    first = at(BERLIN, 2028, 2, 28)
    layer = LayerSpec([A], WEEKLY, first, restrictions=[Restriction((1,), time(9), time(17))])
    shifts = final_shifts(spec("Europe/Berlin", layer), first, first + timedelta(days=3))
    assert [(s.start, s.end) for s in shifts] == [
        (at(BERLIN, 2028, 2, 29, 9), at(BERLIN, 2028, 2, 29, 17))
    ]


# --- speed ------------------------------------------------------------------------------------
# Counted in function calls, not seconds: the same on a loaded CI machine as on a laptop, and the
# algorithms these tests guard against make millions of calls where the sweep makes thousands.


CALLS_DECADES = 20_000  # 346 today
CALLS_SWEEP = 500_000  # 95,822 today; 4,320 pieces compared pairwise make 18 million


def calls_made(compute: Callable[[], object]) -> tuple[object, int]:
    """Run `compute` and return its result and how many Python and C functions it called."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        result = compute()
    finally:
        sys.setprofile(None)
    return result, calls


def test_a_range_decades_after_the_rotation_began_is_computed_without_walking_the_years():
    daily = LayerSpec([A, B, C], DAILY, at(BERLIN, 2000, 1, 1, 9))
    hourly = LayerSpec([A, B], CUSTOM, datetime(2000, 1, 1, tzinfo=UTC), shift_hours=1, level=1)
    business = LayerSpec(
        [B, C],
        WEEKLY,
        at(BERLIN, 2000, 1, 3, 9),
        restrictions=[Restriction(WEEKDAYS, time(9), time(17))],
        level=2,
    )
    far = at(BERLIN, 8999, 6, 1)

    (day, hour, week), calls = calls_made(
        lambda: (
            final_shifts(spec("Europe/Berlin", daily), far, far + timedelta(days=2)),
            layer_shifts(hourly, BERLIN, far, far + timedelta(hours=3)),
            final_shifts(spec("Europe/Berlin", business), far, far + timedelta(days=7)),
        )
    )

    assert calls < CALLS_DECADES  # walking would call millions: 2.6 million days, 61 million hours
    days_since = (date(8999, 6, 1) - date(2000, 1, 1)).days
    assert who(day) == [[A, B, C][(days_since - 1 + i) % 3] for i in range(3)]
    assert day[1].start == at(BERLIN, 8999, 6, 1, 9)
    hours_since = int((far - hourly.start) / timedelta(hours=1))
    assert who(hour) == [[A, B][(hours_since + i) % 2] for i in range(3)]
    assert len(week) == 5 and all(hours(s) == 8 for s in week)


# --- the small readers ------------------------------------------------------------------------


def test_on_call_at_names_the_person_at_that_moment_and_next_shifts_starts_with_the_current():
    first = at(BERLIN, 2025, 6, 2, 9)
    schedule = spec("Europe/Berlin", LayerSpec([A, B], DAILY, first))

    assert on_call_at(schedule, first - timedelta(seconds=1)) == []
    assert on_call_at(schedule, first) == [A]
    assert on_call_at(schedule, first + timedelta(hours=23, minutes=59)) == [A]
    assert on_call_at(schedule, first + timedelta(hours=24)) == [B]
    upcoming = next_shifts(schedule, first + timedelta(hours=12), horizon_days=2)
    assert who(upcoming) == [A, B, A]
    assert upcoming[0].start == first + timedelta(hours=12)


def test_naive_datetimes_and_unknown_rotations_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        final_shifts(spec("UTC"), datetime(2025, 1, 1), datetime(2025, 1, 2))
    layer = LayerSpec([A], "fortnightly", datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="rotation must be one of"):
        final_shifts(
            spec("UTC", layer), datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
        )


def test_an_empty_or_backwards_range_has_no_shifts():
    first = datetime(2025, 1, 1, tzinfo=UTC)
    schedule = spec("UTC", LayerSpec([A], DAILY, first))
    assert final_shifts(schedule, first, first) == []
    assert final_shifts(schedule, first + timedelta(days=1), first) == []
    assert uncovered([], first, first + timedelta(hours=1)) == [(first, first + timedelta(hours=1))]


def test_a_long_range_of_short_shifts_over_several_layers_is_computed_in_one_sweep():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    hourly = LayerSpec([A, B, C], CUSTOM, start, shift_hours=1, level=0)
    two_hourly = LayerSpec(
        [B, C],
        CUSTOM,
        start,
        shift_hours=2,
        level=1,
        restrictions=[Restriction(WEEKDAYS, time(9), time(17))],
    )
    overrides = tuple(
        OverrideSpec(C, start + timedelta(hours=h), start + timedelta(hours=h + 3), h)
        for h in range(0, 24 * 180, 50)
    )
    schedule = spec("Europe/Berlin", hourly, two_hourly, overrides=overrides)

    shifts, calls = calls_made(lambda: final_shifts(schedule, start, start + timedelta(days=180)))

    assert calls < CALLS_SWEEP  # comparing every piece with every candidate: tens of millions
    assert shifts[0].start == start and shifts[-1].end == start + timedelta(days=180)
    assert all(a.end == b.start for a, b in itertools.pairwise(shifts))

"""iCal feeds of schedules and people: they parse back to the same shifts, keep UIDs stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from icalendar import Calendar

from oncall import ical, people, schedules
from tests.oncall.builders import add_layer, add_override, make_person, make_schedule

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 6, 4, 12, tzinfo=UTC)
MONDAY = datetime(2025, 6, 2, 9, tzinfo=BERLIN)


@pytest.fixture
def ann(db):
    return make_person("ann", first_name="Ann", last_name="Lee")


@pytest.fixture
def ben(db):
    return make_person("ben")


@pytest.fixture
def primary(ann, ben):
    schedule = make_schedule("Primary", "Europe/Berlin")
    add_layer(schedule, [ann, ben], start=MONDAY - timedelta(days=70), rotation="weekly")
    add_override(schedule, ben, MONDAY + timedelta(days=1), MONDAY + timedelta(days=1, hours=4))
    return schedule


def fetch(client, url: str) -> Calendar:
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def events(calendar: Calendar) -> list:
    return list(calendar.walk("VEVENT"))


def as_tuples(calendar: Calendar) -> list[tuple[str, datetime, datetime]]:
    return [(str(e["SUMMARY"]), e.decoded("DTSTART"), e.decoded("DTEND")) for e in events(calendar)]


def test_a_schedule_feed_parses_back_to_its_final_shifts(client, primary, ann, ben):
    with time_machine.travel(NOW, tick=False):
        calendar = fetch(client, f"/oncall/ical/schedule/{primary.ical_token}.ics")
        start, end = ical.feed_window()
        expected = [
            s
            for s in schedules.final_schedule(primary, start - ical.LOOKBACK, end)
            if s.end > start
        ]

    label = {ann.pk: "On call: Ann Lee", ben.pk: "On call: ben"}
    assert as_tuples(calendar) == [(label[s.user_id], s.start, s.end) for s in expected]
    assert len(expected) > 15  # 17 weeks of shifts, the override splitting one
    assert str(calendar["X-WR-CALNAME"]) == "On call: Primary"
    for event in events(calendar):
        for name in ("DTSTART", "DTEND"):  # written in UTC: 20250505T070000Z
            assert event[name].to_ical().endswith(b"Z"), event[name].to_ical()
        assert "DTSTAMP" in event
    assert len({str(e["UID"]) for e in events(calendar)}) == len(expected)


def test_the_feed_covers_thirty_days_back_and_ninety_ahead(client, primary):
    with time_machine.travel(NOW, tick=False):
        calendar = fetch(client, f"/oncall/ical/schedule/{primary.ical_token}.ics")
    starts = [e.decoded("DTSTART") for e in events(calendar)]
    ends = [e.decoded("DTEND") for e in events(calendar)]
    assert min(ends) > NOW - timedelta(days=30)
    assert min(starts) <= NOW - timedelta(days=30)  # the shift under way then, whole
    assert max(ends) == NOW + timedelta(days=90)


def test_a_shift_keeps_its_uid_from_one_refresh_to_the_next(client, primary):
    url = f"/oncall/ical/schedule/{primary.ical_token}.ics"
    with time_machine.travel(NOW, tick=False):
        today = {e.decoded("DTSTART"): str(e["UID"]) for e in events(fetch(client, url))}
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        later = {e.decoded("DTSTART"): str(e["UID"]) for e in events(fetch(client, url))}
    shared = set(today) & set(later)
    assert len(shared) > 10
    assert all(today[start] == later[start] for start in shared)


def test_a_persons_feed_lists_their_shifts_across_schedules_named_after_each(
    client, primary, ann, ben
):
    secondary = make_schedule("Secondary")
    add_override(secondary, ann, NOW + timedelta(days=2), NOW + timedelta(days=3))
    token = people.person_settings(ann).ical_token

    with time_machine.travel(NOW, tick=False):
        calendar = fetch(client, f"/oncall/ical/person/{token}.ics")
        start, end = ical.feed_window()
        mine = schedules.shifts_for_person(ann, start - ical.LOOKBACK, end)

    got = as_tuples(calendar)
    assert ("On call: Secondary", NOW + timedelta(days=2), NOW + timedelta(days=3)) in got
    assert {summary for summary, _, _ in got} == {"On call: Primary", "On call: Secondary"}
    assert sorted((s, e) for _, s, e in got) == sorted(
        (p.start, p.end) for p in mine if p.end > start
    )
    assert str(calendar["X-WR-CALNAME"]) == "On call: Ann Lee"


@pytest.mark.parametrize(
    "path",
    [
        "/oncall/ical/schedule/not-a-token.ics",
        "/oncall/ical/person/not-a-token.ics",
        "/oncall/ical/schedule/" + "a" * 65 + ".ics",
    ],
)
def test_an_unknown_token_is_not_found(client, db, path):
    assert client.get(path).status_code == 404


def test_a_rotated_token_and_a_deactivated_persons_feed_are_gone(client, primary, ann):
    old = primary.ical_token
    primary.ical_token = "rotated-token"
    primary.save()
    assert client.get(f"/oncall/ical/schedule/{old}.ics").status_code == 404
    assert client.get("/oncall/ical/schedule/rotated-token.ics").status_code == 200

    token = people.person_settings(ann).ical_token
    assert client.get(f"/oncall/ical/person/{token}.ics").status_code == 200
    ann.is_active = False
    ann.save()
    assert client.get(f"/oncall/ical/person/{token}.ics").status_code == 404


def test_a_feed_only_answers_reads(client, primary):
    assert client.post(f"/oncall/ical/schedule/{primary.ical_token}.ics").status_code == 405

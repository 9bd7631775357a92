"""The on-call pages: who is on call now and next, a schedule's week, taking a shift in two
clicks, removing overrides, a person's shifts."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from accounts.models import AuditEntry
from oncall.models import Override, Schedule
from tests.oncall.builders import add_layer, add_override, make_person, make_policy, make_schedule

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2025, 6, 2, 9, tzinfo=BERLIN)
NOW = MONDAY + timedelta(days=2, hours=3)  # Wednesday 4 June, 12:00 in Berlin
WEEKDAYS_9_TO_5 = [{"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}]


def text(fragment: str) -> str:
    """Return the visible text of an HTML fragment, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def row_of(page: str, opening: str) -> str:
    found = re.search(re.escape(opening) + r"(.*?)</tr>", page, re.S)
    assert found, f"no {opening} in the page"
    return found.group(1)


def week_row(page: str, kind: str) -> list[list[str]]:
    """Return the pieces of a week row ("final", "overrides", "layer"), day by day."""
    row = row_of(page, f'<tr class="row-{kind}">')
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return [pieces_of(cell) for cell in cells]


def pieces_of(cell: str) -> list[str]:
    """Return the text of a week cell's pieces as seen (screen-reader-only text left out)."""
    cell = re.sub(r'<span class="sr-only">.*?</span>', "", cell)
    return [
        text(li) for li in re.findall(r'<li class="(?!empty)[^"]*"[^>]*>(.*?)</li>', cell, re.S)
    ]


def layer_rows(page: str) -> list[tuple[str, list[list[str]]]]:
    rows = re.findall(r'<tr class="row-layer">(.*?)</tr>', page, re.S)
    return [
        (
            text(re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1)),
            [pieces_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)],
        )
        for row in rows
    ]


def csrf_of(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def primary(alice, bob, charlie):
    """Berlin: alice, bob, charlie a week each from Monday 09:00; charlie covers weekdays 9–5
    on a higher layer."""
    schedule = make_schedule("primary", "Europe/Berlin")
    add_layer(schedule, [alice, bob, charlie], start=MONDAY, rotation="weekly")
    add_layer(
        schedule,
        [charlie],
        start=MONDAY,
        rotation="daily",
        level=1,
        restrictions=WEEKDAYS_9_TO_5,
        name="Business hours",
    )
    return schedule


def week_url(schedule, week: str = "2025-06-04") -> str:
    return f"/oncall/schedules/{schedule.pk}/?week={week}"


# --- who is on call ---------------------------------------------------------------------------


def test_the_on_call_page_shows_who_is_on_call_now_and_who_is_next(
    web_charlie, primary, alice, bob, service, at_noon
):
    make_schedule("empty", "UTC")
    make_policy("checkout", {"schedules": [primary]}, service=service)

    page = web_charlie.get("/oncall/").content.decode()

    row = row_of(page, f'<tr id="schedule-{primary.pk}">')
    assert text(row) == (
        "primary Europe/Berlin charlie until Wed 4 Jun 17:00 "
        "alice from Wed 4 Jun 17:00 (in 5 hours)"
    )
    assert f'href="/oncall/schedules/{primary.pk}/"' in row
    assert f'href="/oncall/people/{alice.pk}/"' in row
    empty = row_of(page, f'<tr id="schedule-{Schedule.objects.get(name="empty").pk}">')
    assert text(empty) == "empty UTC Nobody Nobody within 180 days"
    assert "checkout covers checkout" in text(page)


def test_the_page_needs_a_login(client, primary):
    response = client.get("/oncall/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- a schedule's week ------------------------------------------------------------------------


def test_the_week_shows_each_layer_the_overrides_and_the_final_schedule(
    web_charlie, primary, bob, alice, at_noon
):
    add_override(
        primary,
        bob,
        datetime(2025, 6, 5, 18, tzinfo=BERLIN),
        datetime(2025, 6, 6, 8, tzinfo=BERLIN),
    )

    page = web_charlie.get(week_url(primary)).content.decode()

    weekly = ["alice 00:00–24:00"]
    assert week_row(page, "final") == [
        ["Nobody 00:00–09:00", "charlie 09:00–17:00", "alice 17:00–24:00"],
        ["alice 00:00–09:00", "charlie 09:00–17:00", "alice 17:00–24:00"],
        ["alice 00:00–09:00", "charlie 09:00–17:00", "alice 17:00–24:00"],
        [
            "alice 00:00–09:00",
            "charlie 09:00–17:00",
            "alice 17:00–18:00",
            "bob 18:00–24:00 override",
        ],
        [
            "bob 00:00–08:00 override",
            "alice 08:00–09:00",
            "charlie 09:00–17:00",
            "alice 17:00–24:00",
        ],
        weekly,
        weekly,
    ]
    assert week_row(page, "overrides") == [
        [],
        [],
        [],
        ["bob 18:00–24:00"],
        ["bob 00:00–08:00"],
        [],
        [],
    ]
    assert layer_rows(page) == [
        ("Layer 1 weekly", [["alice 09:00–24:00"], *[weekly] * 6]),
        ("Business hours daily, level 1", [["charlie 09:00–17:00"]] * 5 + [[], []]),
    ]
    assert re.search(r'<span class="shift override">\s*<span class="who">bob', page)
    listed = text(page.split('<table id="week-overrides">')[1].split("</table>")[0])
    assert listed == "Who From Until Made by bob Thu 5 Jun 18:00 Fri 6 Jun 08:00 —"
    assert "Times in Europe/Berlin" in page


def test_the_week_defaults_to_this_week_in_the_schedules_zone_and_links_its_neighbours(
    web_charlie, primary
):
    # Sunday 23:30 in UTC is already Monday 01:30 in Berlin: the week is the next one there.
    with time_machine.travel(datetime(2025, 6, 8, 23, 30, tzinfo=UTC), tick=False):
        page = web_charlie.get(f"/oncall/schedules/{primary.pk}/").content.decode()
    assert "Week of Monday 9 June 2025" in page
    assert f'href="/oncall/schedules/{primary.pk}/?week=2025-06-02" rel="prev"' in page
    assert f'href="/oncall/schedules/{primary.pk}/?week=2025-06-16" rel="next"' in page
    assert week_row(page, "final")[0] == [
        "alice 00:00–09:00",
        "charlie 09:00–17:00",
        "bob 17:00–24:00",
    ]


def test_the_week_keeps_local_handoffs_across_a_dst_change(web_charlie, alice, bob):
    schedule = make_schedule("daily", "Europe/Berlin")
    add_layer(
        schedule, [alice, bob], start=datetime(2025, 3, 24, 9, tzinfo=BERLIN), rotation="daily"
    )
    with time_machine.travel(datetime(2025, 3, 20, tzinfo=UTC), tick=False):
        page = web_charlie.get(week_url(schedule, "2025-03-30")).content.decode()
    # Sunday 30 March has 23 hours in Berlin; the handoff stays at 09:00 on the clock.
    assert week_row(page, "final")[5:] == [
        ["alice 00:00–09:00", "bob 09:00–24:00"],
        ["bob 00:00–09:00", "alice 09:00–24:00"],
    ]


def test_a_shift_ending_between_minutes_is_taken_up_to_the_next_minute(web_bob, alice, bob):
    schedule = make_schedule("odd", "Europe/Berlin")
    add_layer(
        schedule,
        [alice, bob],
        start=datetime(2025, 6, 2, 9, 0, 30, tzinfo=BERLIN),
        rotation="daily",
    )
    with time_machine.travel(NOW, tick=False):
        page = web_bob.get(week_url(schedule)).content.decode()
    # No few seconds of alice's shift left uncovered when bob takes it.
    assert 'name="start" value="2025-06-04T12:00">' in page
    assert '<input type="hidden" name="end" value="2025-06-05T00:00">' in page
    assert '<input type="hidden" name="end" value="2025-06-05T09:01">' in page


def test_a_bad_week_shows_this_week(web_charlie, primary, at_noon):
    page = web_charlie.get(week_url(primary, "next-tuesday")).content.decode()
    assert "Week of Monday 2 June 2025" in page


def test_an_unknown_schedule_is_404(web_charlie, db):
    assert web_charlie.get("/oncall/schedules/999999/").status_code == 404


def test_only_shifts_not_yet_over_are_buttons_prefilled_from_now_on(web_bob, primary, at_noon):
    page = web_bob.get(week_url(primary)).content.decode()

    final = row_of(page, '<tr class="row-final">')
    buttons = re.findall(
        r'<form method="get" action="([^"]+)" class="take">(.*?)</form>', final, re.S
    )
    firsts = [
        (re.search(r'name="start" value="([^"]+)"', b).group(1), text(b)) for _, b in buttons[:3]
    ]
    assert firsts == [
        # under way: taken from now on
        ("2025-06-04T12:00", "Wednesday 4 June: charlie 09:00–17:00"),
        ("2025-06-04T17:00", "Wednesday 4 June: alice 17:00–24:00"),
        ("2025-06-05T00:00", "Thursday 5 June: alice 00:00–09:00"),
    ]
    assert {action for action, _ in buttons} == {f"/oncall/schedules/{primary.pk}/take/"}
    # Wednesday from noon to Sunday: 2 + 3 + 3 + 1 + 1 shifts
    assert len(re.findall(r'<button type="submit" class="shift', final)) == len(buttons) == 10
    # The whole shift alice's Wednesday evening belongs to runs until charlie's Thursday 09:00.
    assert 'data-whole-start="2025-06-04T17:00" data-whole-end="2025-06-05T09:00"' in buttons[1][1]


def test_an_observer_sees_the_shifts_but_no_buttons_to_take_them(web_charlie, primary, at_noon):
    page = web_charlie.get(week_url(primary)).content.decode()
    assert 'class="shift' in page
    assert "<button" not in row_of(page, '<tr class="row-final">')
    assert 'id="take-dialog"' not in page


# --- taking a shift ---------------------------------------------------------------------------


def test_a_responder_takes_a_shift_in_two_clicks_and_it_shows_as_an_override(bob, primary, at_noon):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    page = browser.get(week_url(primary)).content.decode()
    # Click 1: the shift's button carries its times (the dialog, or the form page, shows them).
    shift = re.search(
        r'name="start" value="(2025-06-04T17:00)">\s*<input type="hidden" name="end" '
        r'value="([^"]+)">',
        page,
    )
    start, end = shift.groups()
    dialog = page.split('<dialog id="take-dialog"')[1]
    assert f'<option value="{bob.pk}" selected>bob</option>' in dialog
    assert ">Take this shift</button>" in dialog

    # Click 2: "Take this shift".
    response = browser.post(
        f"/oncall/schedules/{primary.pk}/take/",
        {"csrfmiddlewaretoken": csrf_of(dialog), "user": bob.pk, "start": start, "end": end},
    )

    assert response.status_code == 302
    assert response["Location"] == week_url(primary, "2025-06-02")
    override = Override.objects.get()
    assert (override.user, override.created_by) == (bob, bob)
    assert (override.start, override.end) == (
        datetime(2025, 6, 4, 17, tzinfo=BERLIN),
        datetime(2025, 6, 5, 0, tzinfo=BERLIN),
    )
    assert AuditEntry.objects.filter(object_type="oncall.override", action="created").count() == 1
    page = browser.get(response["Location"]).content.decode()
    assert week_row(page, "final")[2] == [
        "alice 00:00–09:00",
        "charlie 09:00–17:00",
        "bob 17:00–24:00 override",
    ]
    assert re.search(r'<button type="submit" class="shift override"', page)
    assert "bob is on call for primary from Wed 4 Jun 17:00 until Thu 5 Jun 00:00" in page


def test_taking_a_shift_without_the_csrf_token_is_refused(bob, primary, at_noon):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    response = browser.post(
        f"/oncall/schedules/{primary.pk}/take/",
        {"user": bob.pk, "start": "2025-06-04T17:00", "end": "2025-06-05T00:00"},
    )
    assert response.status_code == 403
    assert not Override.objects.exists()


def test_without_javascript_a_shift_opens_the_form_prefilled(web_bob, bob, primary, at_noon):
    response = web_bob.get(
        f"/oncall/schedules/{primary.pk}/take/",
        {"start": "2025-06-04T17:00", "end": "2025-06-05T00:00"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'type="datetime-local" name="start" value="2025-06-04T17:00"' in page
    assert 'type="datetime-local" name="end" value="2025-06-05T00:00"' in page
    assert f'<option value="{bob.pk}" selected>bob</option>' in page
    assert "Take this shift</button>" in page


def test_a_responder_may_put_someone_else_on_call(web_bob, alice, primary, at_noon):
    response = web_bob.post(
        f"/oncall/schedules/{primary.pk}/take/",
        {"user": alice.pk, "start": "2025-06-10T09:00", "end": "2025-06-10T17:00"},
    )
    assert response["Location"] == week_url(primary, "2025-06-09")
    assert Override.objects.get().user == alice


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        ("2025-06-05T10:00", "2025-06-05T09:00", "Until: must be after start"),
        ("2025-06-01T10:00", "2025-06-01T12:00", "Until: an override must end in the future"),
        ("2025-06-05T10:00", "2026-07-01T00:00", "an override can last at most 366 days"),
        ("2025-06-05T10:00", "tomorrow", "Until: Enter a valid date/time."),
    ],
)
def test_a_bad_override_shows_what_is_wrong(web_bob, bob, primary, at_noon, start, end, problem):
    response = web_bob.post(
        f"/oncall/schedules/{primary.pk}/take/", {"user": bob.pk, "start": start, "end": end}
    )
    assert response.status_code == 400
    assert problem in text(response.content.decode())
    assert not Override.objects.exists()


def test_a_deactivated_person_cannot_take_a_shift(web_bob, primary, at_noon):
    gone = make_person("dave", is_active=False)
    response = web_bob.post(
        f"/oncall/schedules/{primary.pk}/take/",
        {"user": gone.pk, "start": "2025-06-05T10:00", "end": "2025-06-05T12:00"},
    )
    assert response.status_code == 400
    assert "This person cannot be on call." in response.content.decode()
    assert f'<option value="{gone.pk}"' not in response.content.decode()
    assert not Override.objects.exists()


def test_an_observer_cannot_take_or_remove_a_shift(web_charlie, charlie, primary, at_noon):
    override = add_override(primary, charlie, NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    take = f"/oncall/schedules/{primary.pk}/take/"
    times = {"user": charlie.pk, "start": "2025-06-05T10:00", "end": "2025-06-05T12:00"}
    assert web_charlie.post(take, times).status_code == 403
    assert web_charlie.get(take).status_code == 403
    assert web_charlie.post(f"/oncall/overrides/{override.pk}/remove/").status_code == 403
    assert list(Override.objects.all()) == [override]


# --- removing overrides -----------------------------------------------------------------------


def test_removing_overrides_deletes_a_future_one_ends_a_current_one_and_keeps_a_past_one(
    web_bob, charlie, primary, at_noon
):
    future = add_override(primary, charlie, NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    current = add_override(primary, charlie, NOW - timedelta(hours=1), NOW + timedelta(hours=2))
    past = add_override(primary, charlie, NOW - timedelta(hours=3), NOW - timedelta(hours=2))

    page = web_bob.get(week_url(primary)).content.decode()
    listed = text(page.split('<table id="week-overrides">')[1].split("</table>")[0])
    assert listed == (
        "Who From Until Made by Actions "
        "charlie Wed 4 Jun 09:00 Wed 4 Jun 10:00 — over "
        "charlie Wed 4 Jun 11:00 Wed 4 Jun 14:00 — End now "
        "charlie Wed 4 Jun 13:00 Wed 4 Jun 14:00 — Remove"
    )

    for override in (future, current, past):
        response = web_bob.post(f"/oncall/overrides/{override.pk}/remove/")
        assert response["Location"] == week_url(primary, "2025-06-02")

    assert not Override.objects.filter(pk=future.pk).exists()
    current.refresh_from_db()
    assert current.end == NOW
    assert Override.objects.filter(pk=past.pk).exists()
    page = web_bob.get(week_url(primary)).content.decode()
    assert "This override is over; it stays in the schedule&#x27;s history." in page
    assert web_bob.get(f"/oncall/overrides/{future.pk}/remove/").status_code == 405


# --- a person's shifts ------------------------------------------------------------------------


def test_a_person_sees_their_shifts_for_four_weeks_and_their_calendar_feed(
    web_bob, bob, primary, at_noon, settings
):
    settings.PUBLIC_URL = "https://muster.example.com"
    add_override(
        primary,
        bob,
        datetime(2025, 6, 5, 18, tzinfo=BERLIN),
        datetime(2025, 6, 6, 8, tzinfo=BERLIN),
    )

    response = web_bob.get("/oncall/me/", follow=True)

    assert response.redirect_chain == [(f"/oncall/people/{bob.pk}/", 302)]
    page = response.content.decode()
    table = page.split('id="person-shifts"')[1].split("</table>")[0]
    rows = [text(r) for r in re.findall(r"<tr[^>]*>\s*<td>(.*?)</tr>", table, re.S)]
    zone = "Europe/Berlin"
    assert rows == [
        f"primary override Thu 5 Jun 18:00 Fri 6 Jun 08:00 {zone}",
        # bob's week, around charlie's weekday business hours
        f"primary Mon 9 Jun 17:00 Tue 10 Jun 09:00 {zone}",
        f"primary Tue 10 Jun 17:00 Wed 11 Jun 09:00 {zone}",
        f"primary Wed 11 Jun 17:00 Thu 12 Jun 09:00 {zone}",
        f"primary Thu 12 Jun 17:00 Fri 13 Jun 09:00 {zone}",
        f"primary Fri 13 Jun 17:00 Mon 16 Jun 09:00 {zone}",
        # three weeks later, up to four weeks from now (Wednesday noon)
        f"primary Mon 30 Jun 17:00 Tue 1 Jul 09:00 {zone}",
        f"primary Tue 1 Jul 17:00 Wed 2 Jul 09:00 {zone}",
    ]
    assert f'href="/oncall/schedules/{primary.pk}/?week=2025-06-09"' in table
    assert "My calendar feed" in page and "https://muster.example.com/" in page


def test_someone_elses_shifts_show_without_their_feed(web_alice, bob, primary, at_noon):
    page = web_alice.get(f"/oncall/people/{bob.pk}/").content.decode()
    assert "Shifts of bob" in page
    assert "calendar feed" not in page and ".ics" not in page


# --- bounded queries --------------------------------------------------------------------------


@pytest.fixture
def busy(alice, bob, charlie, at_noon):
    """Eight schedules, each with three layers and six overrides."""
    people = [alice, bob, charlie, *(make_person(f"p{i}") for i in range(5))]
    found = []
    for n in range(8):
        schedule = make_schedule(f"s{n}", "Europe/Berlin")
        add_layer(schedule, people[:4], start=MONDAY, rotation="weekly", name="weekly")
        add_layer(schedule, people[2:6], start=MONDAY, rotation="daily", level=1)
        add_layer(
            schedule,
            people[4:],
            start=MONDAY,
            rotation="custom",
            shift_hours=8,
            level=2,
            restrictions=WEEKDAYS_9_TO_5,
        )
        for i in range(6):
            start = NOW + timedelta(hours=5 * i)
            add_override(schedule, people[i], start, start + timedelta(hours=3), by=alice)
        found.append(schedule)
    return found


def test_the_on_call_page_runs_a_fixed_number_of_queries(
    web_bob, busy, django_assert_max_num_queries
):
    make_policy("one", {"schedules": busy[:2]})
    with django_assert_max_num_queries(8):
        response = web_bob.get("/oncall/")
    assert response.content.decode().count('<tr id="schedule-') == 8


def test_the_week_runs_a_fixed_number_of_queries(web_bob, busy, django_assert_max_num_queries):
    with django_assert_max_num_queries(9):
        response = web_bob.get(week_url(busy[0]))
    page = response.content.decode()
    assert page.count('<tr id="override-') == 6
    assert len(layer_rows(page)) == 3


def test_a_persons_shifts_run_a_fixed_number_of_queries(
    web_bob, bob, busy, django_assert_max_num_queries
):
    # session, user, schedules, layers, participants, overrides; the feed's settings (created
    # on the first visit: a savepoint, an insert, a release)
    with django_assert_max_num_queries(10):
        response = web_bob.get(f"/oncall/people/{bob.pk}/")
    assert response.content.decode().count("<tr") > 8

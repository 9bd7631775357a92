"""iCal feeds: a schedule's final shifts, and one person's shifts across schedules.

The URL's secret token is the only credential (calendar apps cannot log in); rotating it (API)
revokes the old URL. A feed covers 30 days back and 90 ahead. Each shift is one VEVENT whose UID
comes from the schedule, the person, the layer or override and the shift's start, so a calendar
app keeps recognising a shift from one refresh to the next; shifts that began before the window
are computed from further back, so they keep their real start (and UID) rather than starting
at the window's edge.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe
from icalendar import Calendar, Event

from accounts.models import User
from oncall import rotations, schedules
from oncall.models import PersonSettings, Schedule

DAYS_BACK = 30
DAYS_AHEAD = 90
# Computed further back than shown, so a shift under way at the window's edge keeps its start.
LOOKBACK = timedelta(days=35)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def ical_url(kind: str, token: str) -> str:
    """Return the public URL of a feed: `kind` "schedule" or "person", and its token."""
    return settings.PUBLIC_URL + reverse(f"ical-{kind}", kwargs={"token": token})


def feed_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    return now - timedelta(days=DAYS_BACK), now + timedelta(days=DAYS_AHEAD)


def shift_uid(schedule_id: int, shift: rotations.Shift) -> str:
    """Return the UID of a shift: the same shift always gets the same one."""
    source = (
        f"override-{shift.override_id}"
        if shift.override_id is not None
        else f"layer-{shift.layer_id}"
    )
    key = f"{schedule_id}:{shift.user_id}:{source}:{shift.start.astimezone(UTC).isoformat()}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    host = urlsplit(settings.PUBLIC_URL).hostname or "muster"
    return f"{digest}@{host}"


def _display_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def _calendar(name: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", "-//Muster//On-call schedules//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    return calendar


def _event(uid: str, shift: rotations.Shift, summary: str, description: str, stamp) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", shift.start.astimezone(UTC))
    event.add("dtend", shift.end.astimezone(UTC))
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
    return event


def _shifts_in_window(
    entry: schedules.LoadedSchedule, start: datetime, end: datetime
) -> Iterable[rotations.Shift]:
    for shift in rotations.final_shifts(entry.spec, start - LOOKBACK, end):
        if shift.end > start:
            yield shift


def schedule_calendar(schedule: Schedule, now: datetime | None = None) -> Calendar:
    """Return the schedule's final shifts in the feed window as a calendar."""
    start, end = feed_window(now)
    entry = schedules.load_schedules([schedule], start - LOOKBACK, end)[schedule.pk]
    calendar = _calendar(f"On call: {schedule.name}")
    stamp = now or timezone.now()
    for shift in _shifts_in_window(entry, start, end):
        person = entry.people[shift.user_id]
        calendar.add_component(
            _event(
                shift_uid(schedule.pk, shift),
                shift,
                f"On call: {_display_name(person)}",
                f"{_display_name(person)} is on call for {schedule.name}.",
                stamp,
            )
        )
    return calendar


def person_calendar(user: User, now: datetime | None = None) -> Calendar:
    """Return the person's shifts in the feed window across every schedule as a calendar.

    Each event is named after its schedule ("On call: Payments"): in one's own calendar, the
    person is always oneself.
    """
    start, end = feed_window(now)
    calendar = _calendar(f"On call: {_display_name(user)}")
    stamp = now or timezone.now()
    if not user.is_active:
        return calendar
    found = list(schedules.schedules_of(user, start - LOOKBACK, end).order_by("name"))
    loaded = schedules.load_schedules(found, start - LOOKBACK, end)
    for schedule in found:
        for shift in _shifts_in_window(loaded[schedule.pk], start, end):
            if shift.user_id != user.pk:
                continue
            calendar.add_component(
                _event(
                    shift_uid(schedule.pk, shift),
                    shift,
                    f"On call: {schedule.name}",
                    f"{_display_name(user)} is on call for {schedule.name}.",
                    stamp,
                )
            )
    return calendar


def _ics(calendar: Calendar, filename: str) -> HttpResponse:
    response = HttpResponse(calendar.to_ical(), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response


def _checked(token: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise Http404("unknown calendar")
    return token


@require_safe
def schedule_feed(request: HttpRequest, token: str) -> HttpResponse:
    """GET /oncall/ical/schedule/<token>.ics"""
    schedule = Schedule.objects.filter(ical_token=_checked(token)).first()
    if schedule is None:
        raise Http404("unknown calendar")
    return _ics(schedule_calendar(schedule), f"schedule-{schedule.pk}")


@require_safe
def person_feed(request: HttpRequest, token: str) -> HttpResponse:
    """GET /oncall/ical/person/<token>.ics; a deactivated person's feed is gone."""
    prefs = (
        PersonSettings.objects.filter(ical_token=_checked(token), user__is_active=True)
        .select_related("user")
        .first()
    )
    if prefs is None:
        raise Http404("unknown calendar")
    return _ics(person_calendar(prefs.user), f"person-{prefs.user_id}")

"""Web UI: who is on call, a schedule's week, taking a shift as an override, a person's shifts.

Every page computes its schedules once per request with `oncall.schedules` (a fixed number of
queries whatever the number of layers, shifts and overrides); overrides are created and removed
only through `oncall.overrides`, the same functions the API calls.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Role, User
from oncall import overrides, people, rotations, schedules
from oncall.ical import ical_url
from oncall.models import EscalationPolicy, Layer, Override, Schedule, ServicePolicy
from web.access import role_required

MAX_SCHEDULES = 200
MAX_POLICIES = 100
PERSON_DAYS = 28
# A week view computes this much around the week, so a shift crossing its edges keeps its real
# start and end (a weekly shift lasts at most seven days).
MARGIN = timedelta(days=8)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def _zone_of(schedule: Schedule) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.time_zone)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _week_url(schedule_id: int, monday: date) -> str:
    return reverse("web-schedule", args=[schedule_id]) + f"?week={monday.isoformat()}"


def _when(moment: datetime) -> str:
    """Return "Wed 4 Jun 17:00", as the pages show times."""
    return f"{moment:%a} {moment.day} {moment:%b %H:%M}"


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


# --- who is on call ---------------------------------------------------------------------------


@role_required(read=Role.OBSERVER)
def oncall_home(request: HttpRequest) -> HttpResponse:
    """Show who is on call now and next for every schedule, and what each policy covers."""
    found = list(Schedule.objects.order_by("name")[: MAX_SCHEDULES + 1])
    more = len(found) > MAX_SCHEDULES
    now = timezone.now()
    rows = []
    for entry in schedules.on_call_summary(found[:MAX_SCHEDULES], now):
        zone = _zone_of(entry.schedule)
        rows.append(
            {
                "entry": entry,
                "zone": zone.key,
                "until": entry.until.astimezone(zone) if entry.until else None,
                "next_start": entry.next_start.astimezone(zone) if entry.next_start else None,
            }
        )
    policies = list(EscalationPolicy.objects.order_by("name")[:MAX_POLICIES])
    covers: dict[int, list] = {p.pk: [] for p in policies}
    bindings = (
        ServicePolicy.objects.filter(policy_id__in=covers)
        .select_related("service")
        .order_by("service__name")
    )
    for binding in bindings:
        covers[binding.policy_id].append(binding.service)
    return render(
        request,
        "web/oncall/home.html",
        {
            "rows": rows,
            "more_schedules": more,
            "policies": [(p, covers[p.pk]) for p in policies],
            "now": now,
        },
    )


# --- a schedule's week ------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A shift's part within one day of the week, with the whole shift it belongs to."""

    user: User | None  # None for a gap nobody covers
    start: datetime  # local, clipped to the day
    end: datetime
    whole_start: datetime  # local, the whole shift (from now on, if under way)
    whole_end: datetime
    override_id: int | None
    label: str  # "09:00–24:00"
    take_start: datetime  # local: where taking it starts (not in the past)
    take_end: datetime  # local: `end` up to the minute the form's inputs hold

    @property
    def is_override(self) -> bool:
        return self.override_id is not None


def _minute_up(moment: datetime) -> datetime:
    """Return `moment` rounded up to the minute: the form's inputs hold minutes, and taking a
    few seconds of the next shift beats leaving a few seconds of this one uncovered."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _label(start: datetime, end: datetime, day_end: datetime) -> str:
    until = "24:00" if end == day_end else f"{end:%H:%M}"
    return f"{start:%H:%M}–{until}"


def _by_day(
    shifts: list[rotations.Shift],
    bounds: list[datetime],
    zone: ZoneInfo,
    who: dict[int, User],
    now: datetime,
) -> list[list[Piece]]:
    """Return, for each of the seven days between `bounds`, the parts of `shifts` in it."""
    days: list[list[Piece]] = [[] for _ in range(7)]
    # Taking a shift under way starts now, to the minute: the past stays as it was.
    from_now = now.astimezone(zone).replace(second=0, microsecond=0)
    for shift in shifts:
        for i in range(7):
            lo, hi = max(shift.start, bounds[i]), min(shift.end, bounds[i + 1])
            if lo >= hi:
                continue
            lo, hi = lo.astimezone(zone), hi.astimezone(zone)
            days[i].append(
                Piece(
                    user=who.get(shift.user_id),
                    start=lo,
                    end=hi,
                    whole_start=max(shift.start.astimezone(zone), from_now),
                    whole_end=_minute_up(shift.end.astimezone(zone)),
                    override_id=shift.override_id,
                    label=_label(lo, hi, bounds[i + 1].astimezone(zone)),
                    take_start=max(lo, from_now),
                    take_end=_minute_up(hi),
                )
            )
    return days


def _gaps(shifts: list[rotations.Shift], start: datetime, end: datetime) -> list[rotations.Shift]:
    return [rotations.Shift(0, s, e) for s, e in rotations.uncovered(shifts, start, end)]


def _week_of(request: HttpRequest, zone: ZoneInfo) -> date:
    """Return the Monday of ?week= (any day of it), or of this week in `zone`."""
    try:
        day = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = None
    if day is None or not 1971 <= day.year <= 9998:
        day = timezone.now().astimezone(zone).date()
    return _monday(day)


@role_required(read=Role.OBSERVER)
def schedule_week(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """Show a schedule's week: each layer's shifts, the overrides and the final schedule."""
    schedule = get_object_or_404(Schedule.objects.select_related("team"), pk=schedule_id)
    zone = _zone_of(schedule)
    monday = _week_of(request, zone)
    days = [monday + timedelta(days=i) for i in range(7)]
    bounds = [_midnight(d, zone) for d in [*days, monday + timedelta(days=7)]]
    start, end = bounds[0], bounds[-1]
    now = timezone.now()

    entry = schedules.load_schedules([schedule], start - MARGIN, end + MARGIN)[schedule.pk]
    who = entry.people
    final = rotations.final_shifts(entry.spec, start - MARGIN, end + MARGIN)
    names = dict(Layer.objects.filter(schedule=schedule).values_list("pk", "name").order_by())
    week_overrides = list(
        Override.objects.filter(schedule=schedule, end__gt=start, start__lt=end)
        .select_related("user", "created_by")
        .order_by("start", "id")
    )
    in_week = [s for s in final if s.end > start and s.start < end]
    final_days = _by_day(in_week + _gaps(in_week, start, end), bounds, zone, who, now)
    for pieces in final_days:
        pieces.sort(key=lambda p: p.start)
    rows = [{"kind": "final", "name": "Final schedule", "days": final_days}]
    if week_overrides:
        override_shifts = [
            rotations.Shift(o.user_id, o.start, o.end, override_id=o.pk) for o in week_overrides
        ]
        everyone = {o.user_id: o.user for o in week_overrides} | who
        rows.append(
            {
                "kind": "overrides",
                "name": "Overrides",
                "days": _by_day(override_shifts, bounds, zone, everyone, now),
            }
        )
    for number, layer in enumerate(entry.spec.layers, start=1):
        alone = rotations.ScheduleSpec(entry.spec.time_zone, layers=[layer])
        rows.append(
            {
                "kind": "layer",
                "name": names.get(layer.layer_id) or f"Layer {number}",
                "rotation": layer.rotation,
                "level": layer.level,
                "days": _by_day(rotations.final_shifts(alone, start, end), bounds, zone, who, now),
            }
        )
    for row in rows:
        row["cells"] = list(zip(days, row.pop("days"), strict=True))
    can_take = request.user.has_role(Role.RESPONDER)
    for override in week_overrides:
        override.local_start = override.start.astimezone(zone)
        override.local_end = override.end.astimezone(zone)
        override.is_over = override.end <= now
    return render(
        request,
        "web/oncall/week.html",
        {
            "schedule": schedule,
            "zone": zone.key,
            "days": days,
            "today": now.astimezone(zone).date(),
            "now": now.astimezone(zone),
            "rows": rows,
            "week_overrides": week_overrides,
            "can_take": can_take,
            "form": TakeShiftForm(initial={"user": request.user.pk}) if can_take else None,
            "prev_url": _week_url(schedule.pk, monday - timedelta(days=7)),
            "next_url": _week_url(schedule.pk, monday + timedelta(days=7)),
            "this_week_url": reverse("web-schedule", args=[schedule.pk]),
            "take_url": reverse("web-take-shift", args=[schedule.pk]),
        },
    )


# --- taking a shift ---------------------------------------------------------------------------


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format=LOCAL_INPUT)


class TakeShiftForm(forms.Form):
    """Who takes which time; times are local to the schedule's zone (the view activates it)."""

    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        label="Who takes it",
        error_messages={"invalid_choice": "This person cannot be on call."},
    )
    start = forms.DateTimeField(
        label="From", input_formats=[LOCAL_INPUT, "%Y-%m-%dT%H:%M:%S"], widget=LocalDateTimeInput()
    )
    end = forms.DateTimeField(
        label="Until", input_formats=[LOCAL_INPUT, "%Y-%m-%dT%H:%M:%S"], widget=LocalDateTimeInput()
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].label_from_instance = _person_label


def _person_label(user: User) -> str:
    name = user.get_full_name()
    return f"{name} ({user.get_username()})" if name else user.get_username()


@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
def take_shift(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """Show a form prefilled from ?start=&end= (GET), or create the override it describes and
    go back to its week (POST)."""
    schedule = get_object_or_404(Schedule, pk=schedule_id)
    zone = _zone_of(schedule)
    status = 200
    if request.method == "POST":
        form = TakeShiftForm(request.POST)
        # Times in the form are local to the schedule, wherever the person taking it is.
        with timezone.override(zone):
            valid = form.is_valid()
        if valid:
            data = form.cleaned_data
            try:
                override = overrides.create_override(
                    schedule, data["user"], data["start"], data["end"], by=request.user
                )
            except overrides.OverrideError as exc:
                form.add_error(exc.field, exc.message)
            else:
                start = override.start.astimezone(zone)
                messages.success(
                    request,
                    f"{_person_label(override.user)} is on call for {schedule.name} "
                    f"from {_when(start)} until {_when(override.end.astimezone(zone))} "
                    f"({zone.key}).",
                )
                return redirect(_week_url(schedule.pk, _monday(start.date())))
        status = 400
    else:
        initial = {"user": request.user.pk}
        for name in ("start", "end"):
            with contextlib.suppress(ValueError):  # a bad prefill is left for the person to type
                initial[name] = datetime.strptime(request.GET.get(name, "")[:16], LOCAL_INPUT)
        form = TakeShiftForm(initial=initial)
    picked = getattr(form, "cleaned_data", {}).get("start") or form.initial.get("start")
    week = picked or timezone.now().astimezone(zone)
    return render(
        request,
        "web/oncall/take.html",
        {
            "schedule": schedule,
            "zone": zone.key,
            "form": form,
            "back_url": _week_url(schedule.pk, _monday(week.date())),
        },
        status=status,
    )


@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
@require_POST
def remove_override(request: HttpRequest, override_id: int) -> HttpResponse:
    """Remove an override (end it now if it is under way) and go back to its week."""
    override = get_object_or_404(
        Override.objects.select_related("schedule", "user"), pk=override_id
    )
    schedule = override.schedule
    zone = _zone_of(schedule)
    week = _monday(override.start.astimezone(zone).date())
    try:
        kept = overrides.remove_override(override, by=request.user)
    except overrides.OverrideError as exc:
        messages.error(request, exc.message)
    else:
        who = _person_label(override.user)
        messages.success(
            request,
            f"{who}'s override ends now." if kept else f"{who}'s override is removed.",
        )
    return redirect(_week_url(schedule.pk, week))


# --- a person's shifts ------------------------------------------------------------------------


@role_required(read=Role.OBSERVER)
def person_shifts(request: HttpRequest, user_id: int) -> HttpResponse:
    """Show a person's final shifts over the next four weeks, and their iCal feed to themself."""
    person = request.user if user_id == request.user.pk else get_object_or_404(User, pk=user_id)
    now = timezone.now()
    rows = []
    for found in schedules.shifts_for_person(person, now, now + timedelta(days=PERSON_DAYS)):
        zone = _zone_of(found.schedule)
        start = found.start.astimezone(zone)
        rows.append(
            {
                "schedule": found.schedule,
                "start": start,
                "end": found.end.astimezone(zone),
                "zone": zone.key,
                "is_override": found.shift.is_override,
                "now": found.start <= now,
                "week_url": _week_url(found.schedule.pk, _monday(start.date())),
            }
        )
    feed = None
    if person.pk == request.user.pk:
        feed = ical_url("person", people.person_settings(person).ical_token)
    return render(
        request,
        "web/oncall/person.html",
        {"person": person, "rows": rows, "feed": feed, "days": PERSON_DAYS},
    )


@role_required(read=Role.OBSERVER)
def my_shifts(request: HttpRequest) -> HttpResponse:
    """Go to the signed-in person's shifts."""
    return redirect("web-person", user_id=request.user.pk)


urlpatterns = [
    path("oncall/", oncall_home, name="web-oncall"),
    path("oncall/me/", my_shifts, name="web-my-shifts"),
    path("oncall/people/<int:user_id>/", person_shifts, name="web-person"),
    path("oncall/schedules/<int:schedule_id>/", schedule_week, name="web-schedule"),
    path("oncall/schedules/<int:schedule_id>/take/", take_shift, name="web-take-shift"),
    path(
        "oncall/overrides/<int:override_id>/remove/",
        remove_override,
        name="web-remove-override",
    ),
]

"""Reads about schedules: who is on call when, built from the database for `oncall.rotations`.

Every function here loads what it needs in a fixed number of queries (layers, participants,
overrides) and leaves the computing to `oncall.rotations`.

A deactivated person (`is_active=False`) is never on call. They are taken out of every rotation:
each layer rotates through its remaining participants, counted from the layer's start as if they
had never been in it (the same as an admin removing them from the layer), and their overrides no
longer count. A layer left with nobody has no one; `gaps_after_deactivation` shows, before or
after someone leaves, which time nobody covers any more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from incidents.models import Service
from oncall import rotations
from oncall.models import (
    EscalationStep,
    Layer,
    LayerParticipant,
    Override,
    Schedule,
)
from oncall.policies import policy_of, policy_steps
from oncall.rotations import LayerSpec, OverrideSpec, ScheduleSpec, Shift

log = logging.getLogger(__name__)

# How far ahead `next_on_call` looks for the next handoff, in growing windows.
NEXT_WINDOWS_DAYS = (7, 35, 180)
# Seconds an answer to "whom does this service's policy page first" is reused (see
# `first_on_call_names`).
FIRST_ON_CALL_TTL = 30


@dataclass
class LoadedSchedule:
    """A schedule's spec for `oncall.rotations`, and the people its user ids stand for."""

    schedule: Schedule
    spec: ScheduleSpec
    people: dict[int, User] = field(default_factory=dict)


@dataclass(frozen=True)
class OnCall:
    """Who is on call for a schedule at a moment, until when, and who comes next."""

    schedule: Schedule
    at: datetime
    people: list[User]
    until: datetime | None  # the end of the current shift, if someone is on call
    next_person: User | None
    next_start: datetime | None


@dataclass(frozen=True)
class PersonShift:
    """One of a person's final shifts, in one schedule."""

    schedule: Schedule
    shift: Shift

    @property
    def start(self) -> datetime:
        return self.shift.start

    @property
    def end(self) -> datetime:
        return self.shift.end


@dataclass(frozen=True)
class ScheduleGaps:
    """A schedule someone appears in, and the ranges nobody covers once they are out."""

    schedule: Schedule
    gaps: list[tuple[datetime, datetime]]


# --- building specs ---------------------------------------------------------------------------


def _is_on_call_material(user: User) -> bool:
    return user.is_active


def _zone_name(schedule: Schedule) -> str:
    try:
        ZoneInfo(schedule.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning(
            "schedule %s has an unknown time zone %r; using UTC", schedule.pk, schedule.time_zone
        )
        return "UTC"
    return schedule.time_zone


def _restrictions(layer: Layer) -> list[rotations.Restriction]:
    try:
        return [rotations.restriction_from_dict(r) for r in layer.restrictions or []]
    except rotations.RestrictionError as exc:
        # Paging too many people beats paging nobody: an unreadable restriction is ignored.
        log.warning("layer %s has an unreadable restriction (%s); ignoring it", layer.pk, exc)
        return []


def load_schedules(
    schedules: Iterable[Schedule],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    keep: Callable[[User], bool] = _is_on_call_material,
) -> dict[int, LoadedSchedule]:
    """Return each schedule's spec (keyed by schedule id) in three queries.

    `start`/`end` narrow what is loaded (overrides and ended layers) to a range; `keep` decides
    which people take part (by default, active ones).
    """
    by_id = {s.pk: s for s in schedules}
    loaded = {
        pk: LoadedSchedule(schedule, ScheduleSpec(_zone_name(schedule)))
        for pk, schedule in by_id.items()
    }
    if not by_id:
        return loaded
    layer_query = Layer.objects.filter(schedule_id__in=by_id).order_by("schedule_id", "level", "id")
    overrides = Override.objects.filter(schedule_id__in=by_id).select_related("user")
    if start is not None:
        layer_query = layer_query.filter(Q(end__isnull=True) | Q(end__gt=start))
        overrides = overrides.filter(end__gt=start)
    if end is not None:
        layer_query = layer_query.filter(start__lt=end)
        overrides = overrides.filter(start__lt=end)
    layers = list(layer_query)
    people_of: dict[int, list[int]] = {layer.pk: [] for layer in layers}
    schedule_of = {layer.pk: layer.schedule_id for layer in layers}
    participants = (
        LayerParticipant.objects.filter(layer_id__in=people_of)
        .select_related("user")
        .order_by("layer_id", "position", "id")
    )
    for participant in participants:
        if keep(participant.user):
            people_of[participant.layer_id].append(participant.user_id)
            people = loaded[schedule_of[participant.layer_id]].people
            people[participant.user_id] = participant.user
    for layer in layers:
        loaded[layer.schedule_id].spec.layers.append(
            LayerSpec(
                participants=people_of[layer.pk],
                rotation=layer.rotation,
                start=layer.start,
                shift_hours=layer.shift_hours,
                restrictions=_restrictions(layer),
                end=layer.end,
                level=layer.level,
                layer_id=layer.pk,
            )
        )
    for override in overrides.order_by("created_at", "id"):  # the later override wins
        if keep(override.user):
            entry = loaded[override.schedule_id]
            entry.people[override.user_id] = override.user
            entry.spec.overrides.append(
                OverrideSpec(override.user_id, override.start, override.end, override.pk)
            )
    return loaded


def schedule_spec(
    schedule: Schedule, start: datetime | None = None, end: datetime | None = None
) -> ScheduleSpec:
    """Return the schedule as `oncall.rotations` takes it (active people only)."""
    return load_schedules([schedule], start, end)[schedule.pk].spec


# --- who is on call ---------------------------------------------------------------------------


def final_schedule(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """Return the schedule's final shifts over [start, end): layers, restrictions, overrides."""
    return rotations.final_shifts(schedule_spec(schedule, start, end), start, end)


def _now(at: datetime | None) -> datetime:
    return at if at is not None else timezone.now()


def on_call_now(schedule: Schedule, at: datetime | None = None) -> list[User]:
    """Return the people on call for `schedule` at `at` (default now): one, or none."""
    at = _now(at)
    entry = load_schedules([schedule], at, at + timedelta(seconds=1))[schedule.pk]
    return [entry.people[pk] for pk in rotations.on_call_at(entry.spec, at)]


def next_on_call(schedule: Schedule, after: datetime | None = None) -> tuple[User, datetime] | None:
    """Return who takes over next after `after` (default now) and when; None if nobody does
    within 180 days.

    The next shift is the first one starting after `after` that is not the same person carrying
    straight on (their weekly shift followed by their own override is one stretch of duty).
    """
    after = _now(after)
    entry = _load_ahead([schedule], after)[schedule.pk]
    _, _, upcoming = _now_and_next(entry, after)
    return (entry.people[upcoming.user_id], upcoming.start) if upcoming else None


def _load_ahead(schedules: Sequence[Schedule], at: datetime) -> dict[int, LoadedSchedule]:
    return load_schedules(schedules, at, at + timedelta(days=NEXT_WINDOWS_DAYS[-1]))


def _now_and_next(
    entry: LoadedSchedule, at: datetime
) -> tuple[Shift | None, datetime | None, Shift | None]:
    """Return the shift at `at`, when its person's stretch of duty ends, and the next shift."""
    current = until = None
    for days in NEXT_WINDOWS_DAYS:
        shifts = rotations.final_shifts(entry.spec, at, at + timedelta(days=days))
        current = shifts[0] if shifts and shifts[0].start <= at else None
        previous = current
        for shift in shifts[1:] if current else shifts:
            if previous and previous.user_id == shift.user_id and previous.end == shift.start:
                previous = shift  # the same person carrying straight on
                continue
            return current, previous.end if previous else None, shift
        until = previous.end if previous else None
    return current, until, None


def on_call_summary(schedules: Sequence[Schedule], at: datetime | None = None) -> list[OnCall]:
    """Return who is on call now, until when, and who is next, for each of `schedules`.

    `until` is None when nobody is on call, or when the same person stays on for the next 180
    days.
    """
    at = _now(at)
    loaded = _load_ahead(schedules, at)
    summary = []
    for schedule in schedules:
        entry = loaded[schedule.pk]
        current, until, upcoming = _now_and_next(entry, at)
        horizon = at + timedelta(days=NEXT_WINDOWS_DAYS[-1])
        summary.append(
            OnCall(
                schedule=schedule,
                at=at,
                people=[entry.people[current.user_id]] if current else [],
                until=until if until != horizon else None,
                next_person=entry.people[upcoming.user_id] if upcoming else None,
                next_start=upcoming.start if upcoming else None,
            )
        )
    return summary


def step_targets(step: EscalationStep, at: datetime | None = None) -> list[User]:
    """Return the active people an escalation step reaches at `at`, each once, in order: its
    users, then whoever is on call in its schedules, then every member of its teams."""
    at = _now(at)
    people: dict[int, User] = {u.pk: u for u in step.users.all() if u.is_active}
    schedules = list(step.schedules.all())
    loaded = load_schedules(schedules, at, at + timedelta(seconds=1))
    for schedule in schedules:
        entry = loaded[schedule.pk]
        for pk in rotations.on_call_at(entry.spec, at):
            people.setdefault(pk, entry.people[pk])
    for team in step.teams.all():
        for person in team.members.filter(is_active=True).order_by("username"):
            people.setdefault(person.pk, person)
    return list(people.values())


def describe_targets(step: EscalationStep, at: datetime | None = None) -> str:
    """Say whom a step reaches, in words: its people, its schedules with who is on call on
    them at `at`, its teams."""
    parts = [u.get_username() for u in step.users.all() if u.is_active]
    for schedule in step.schedules.all():
        names = ", ".join(p.get_username() for p in on_call_now(schedule, at))
        parts.append(f"{schedule.name} ({names or 'nobody on call'})")
    parts += [f"team {team.name}" for team in step.teams.all()]
    return ", ".join(parts) or "nobody"


def on_call_for_service(service: Service, at: datetime | None = None) -> list[User]:
    """Return who the service's escalation policy would page first at `at`: its first step's
    targets. Nobody when the service has no policy or the policy has no steps."""
    policy = policy_of(service.pk)
    steps = policy_steps(policy) if policy is not None else []
    return step_targets(steps[0], at) if steps else []


def first_on_call_names(service: Service) -> list[str]:
    """Return the usernames `on_call_for_service` gives now, as found within the last
    FIRST_ON_CALL_TTL seconds: a storm opening many incidents of one service asks once, and a
    new incident's escalation, which works this out anyway, answers it for the war room's
    opening post (`note_first_on_call`): five statements fewer a new incident."""
    names = cache.get(_first_on_call_key(service.pk))
    if names is None:
        names = note_first_on_call(service.pk, on_call_for_service(service))
    return names


def note_first_on_call(service_id: int, people: list[User]) -> list[str]:
    """Remember whom the service's policy pages first now (its first level's targets, in
    order); return their usernames. The cache is a hint: an error here is logged, not raised."""
    names = [p.get_username() for p in people]
    try:
        cache.set(_first_on_call_key(service_id), names, FIRST_ON_CALL_TTL)
    except Exception:
        log.warning("could not note who is on call first for service %s", service_id, exc_info=True)
    return names


def _first_on_call_key(service_id: int) -> str:
    return f"oncall:first:{service_id}"


# --- a person's view --------------------------------------------------------------------------


def schedules_of(user: User, start: datetime | None = None, end: datetime | None = None):
    """Return the schedules `user` is in: as a layer participant, or with an override in range."""
    overrides = Q(overrides__user=user)
    if start is not None:
        overrides &= Q(overrides__end__gt=start)
    if end is not None:
        overrides &= Q(overrides__start__lt=end)
    return Schedule.objects.filter(Q(layers__participants__user=user) | overrides).distinct()


def feed_schedule_ids(user: User) -> set[int] | None:
    """Return the ids of the schedules whose shared iCal feed `user` may read, or None for all.

    The feed's URL is a secret anyone holding it can follow: admins read every schedule's, a
    person only those of the schedules they take shifts in (a layer, an override) or whose team
    they are in. Everyone has their own feed (the person feed), which ends with their account.
    """
    if user.has_role(Role.ADMIN):
        return None
    return set(
        Schedule.objects.filter(
            Q(layers__participants__user=user) | Q(overrides__user=user) | Q(team__members=user)
        ).values_list("pk", flat=True)
    )


def shifts_for_person(user: User, start: datetime, end: datetime) -> list[PersonShift]:
    """Return the person's final shifts over [start, end) across every schedule, by start."""
    if not user.is_active:
        return []
    schedules = list(schedules_of(user, start, end))
    loaded = load_schedules(schedules, start, end)
    found = []
    for schedule in schedules:
        for shift in rotations.final_shifts(loaded[schedule.pk].spec, start, end):
            if shift.user_id == user.pk:
                found.append(PersonShift(schedule, shift))
    found.sort(key=lambda p: (p.start, p.schedule.name))
    return found


def gaps_after_deactivation(
    user: User, horizon_days: int = 30, *, now: datetime | None = None
) -> list[ScheduleGaps]:
    """For each schedule `user` appears in, return the ranges within the next `horizon_days`
    that were covered with them and that nobody covers once they are out.

    Works before and after deactivation: they count as in (whatever `is_active` says) for the
    "with" side, and as out for the other.
    """
    start = _now(now)
    end = start + timedelta(days=horizon_days)
    schedules = list(schedules_of(user, start, end).order_by("name"))
    with_them = load_schedules(schedules, start, end, keep=lambda u: u.is_active or u.pk == user.pk)
    without = load_schedules(schedules, start, end, keep=lambda u: u.is_active and u.pk != user.pk)
    report = []
    for schedule in schedules:
        before = rotations.uncovered(
            rotations.final_shifts(with_them[schedule.pk].spec, start, end), start, end
        )
        after = rotations.uncovered(
            rotations.final_shifts(without[schedule.pk].spec, start, end), start, end
        )
        report.append(ScheduleGaps(schedule, subtract_ranges(after, before)))
    return report


def subtract_ranges(
    ranges: list[tuple[datetime, datetime]], remove: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """Return the parts of sorted, disjoint `ranges` outside sorted, disjoint `remove`."""
    out = []
    for start, end in ranges:
        cursor = start
        for r_start, r_end in remove:
            if r_end <= cursor or r_start >= end:
                continue
            if r_start > cursor:
                out.append((cursor, r_start))
            cursor = max(cursor, r_end)
        if cursor < end:
            out.append((cursor, end))
    return out

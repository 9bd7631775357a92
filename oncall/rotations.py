"""Who is on call when: pure computation of a schedule's final shifts.

A schedule has layers; each layer rotates through its participants, handing off at a wall-clock
time in the schedule's IANA zone (daily and weekly rotations keep their local handoff time across
DST changes; custom rotations last a fixed number of real hours). Restrictions limit a layer to
windows of the local week (e.g. 09:00–17:00 on weekdays). Higher layers win where they have
someone; overrides win over every layer. No database here: callers pass plain values.

Where a handoff's wall-clock time does not exist (02:30 on a spring-forward night) the handoff
happens an hour later by the clock (03:30); where it exists twice (fall-back) it is the first.
Ties: of two layers on the same level the later one in `ScheduleSpec.layers` wins, and of two
overlapping overrides the later one in `ScheduleSpec.overrides` (callers pass them oldest first).

Every computation jumps straight to the range asked for, so its cost grows with the length of
the range, never with the time since a rotation began.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAILY = "daily"
WEEKLY = "weekly"
CUSTOM = "custom"
ROTATIONS = (DAILY, WEEKLY, CUSTOM)


@dataclass(frozen=True)
class Restriction:
    """A window of the local week: on `weekdays` (0 Monday … 6 Sunday), `start` to `end`.

    An `end` at or before `start` runs past midnight into the next day (so 22:00–06:00 on
    Monday covers Monday night until Tuesday 06:00, and 00:00–00:00 covers the whole day).
    """

    weekdays: tuple[int, ...]
    start: time
    end: time

    def to_dict(self) -> dict:
        return {
            "weekdays": list(self.weekdays),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }


class RestrictionError(ValueError):
    """A restriction as stored or sent is not `{"weekdays": [...], "start": "HH:MM", "end": …}`."""


def _clock(value: object, name: str) -> time:
    if not isinstance(value, str):
        raise RestrictionError(f"{name} must be a time like 09:00")
    if value in ("24:00", "24:00:00"):
        return time(0)  # the end of the day: an end at or before the start runs into the next
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise RestrictionError(f"{name} must be a time like 09:00, not {value!r}") from None
    if parsed.tzinfo is not None:
        raise RestrictionError(f"{name} is a local time in the schedule's zone: no offset")
    return parsed


def restriction_from_dict(data: Mapping) -> Restriction:
    """Return the restriction `data` describes; raise RestrictionError saying what is wrong.

    A missing `weekdays` means every day.
    """
    if not isinstance(data, Mapping):
        raise RestrictionError('a restriction is {"weekdays": [0, …], "start": …, "end": …}')
    unknown = set(data) - {"weekdays", "start", "end"}
    if unknown:
        raise RestrictionError(f"unknown restriction fields: {', '.join(sorted(unknown))}")
    weekdays = data.get("weekdays", list(range(7)))
    if (
        not isinstance(weekdays, list | tuple)
        or not weekdays
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays)
    ):
        raise RestrictionError("weekdays must be a non-empty list of 0 (Monday) … 6 (Sunday)")
    if "start" not in data or "end" not in data:
        raise RestrictionError("a restriction needs a start and an end, like 09:00 and 17:00")
    return Restriction(
        tuple(sorted(set(weekdays))), _clock(data["start"], "start"), _clock(data["end"], "end")
    )


@dataclass(frozen=True)
class LayerSpec:
    participants: Sequence[int]  # user ids, in rotation order
    rotation: str  # DAILY | WEEKLY | CUSTOM
    start: datetime  # aware: the first handoff; the rotation counts from here
    shift_hours: int = 24  # CUSTOM only
    restrictions: Sequence[Restriction] = ()
    end: datetime | None = None
    level: int = 0  # higher wins
    layer_id: int | None = None


@dataclass(frozen=True)
class OverrideSpec:
    user_id: int
    start: datetime
    end: datetime
    override_id: int | None = None


@dataclass(frozen=True)
class Shift:
    user_id: int
    start: datetime
    end: datetime
    layer_id: int | None = None  # None for an override
    override_id: int | None = None

    @property
    def is_override(self) -> bool:
        return self.override_id is not None


@dataclass
class ScheduleSpec:
    time_zone: str
    layers: list[LayerSpec] = field(default_factory=list)
    overrides: list[OverrideSpec] = field(default_factory=list)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


def _local_handoff(anchor_local: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Return the anchor's wall-clock time `days` later, in `zone`, as UTC (DST-correct)."""
    wall = anchor_local.replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def layer_shifts(layer: LayerSpec, zone: ZoneInfo, start: datetime, end: datetime) -> list[Shift]:
    """Return the layer's shifts overlapping [start, end), clipped to it, before restrictions."""
    if layer.rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of {', '.join(ROTATIONS)}, not {layer.rotation!r}")
    start, end = _utc(start), _utc(end)
    if layer.end is not None:
        end = min(end, _utc(layer.end))
    people = list(layer.participants)
    first = _utc(layer.start)
    if not people or end <= start or end <= first:
        return []
    shifts: list[Shift] = []
    if layer.rotation == CUSTOM:
        length = timedelta(hours=max(1, layer.shift_hours))
        index = max(0, (start - first) // length)  # straight to the shift holding `start`
        while (s := first + index * length) < end:
            shifts.append(_clip(people[index % len(people)], s, s + length, start, end, layer))
            index += 1
        return shifts
    step_days = 1 if layer.rotation == DAILY else 7
    anchor_local = _utc(layer.start).astimezone(zone)
    # Jump near `start` without walking every day since the rotation began: real days and
    # local days differ by at most the DST shift, so starting a few days early is always safe.
    elapsed_days = max(0, (start - first).days - 2)
    index = elapsed_days // step_days
    s = _local_handoff(anchor_local, index * step_days, zone)
    while s < end:
        e = _local_handoff(anchor_local, (index + 1) * step_days, zone)
        if e > start:
            shifts.append(_clip(people[index % len(people)], s, e, start, end, layer))
        index += 1
        s = e
    return shifts


def _clip(user: int, s: datetime, e: datetime, lo: datetime, hi: datetime, layer) -> Shift:
    return Shift(user, max(s, lo), min(e, hi), layer_id=layer.layer_id)


def restriction_windows(
    restrictions: Iterable[Restriction], zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Return the UTC windows the restrictions allow within [start, end), merged and sorted."""
    start, end = _utc(start), _utc(end)
    restrictions = list(restrictions)
    windows: list[tuple[datetime, datetime]] = []
    # From the day before: an overnight window that began then may still be open at `start`.
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date()
    while day <= last_day:
        for r in restrictions:
            if day.weekday() not in r.weekdays:
                continue
            s = datetime.combine(day, r.start).replace(tzinfo=zone).astimezone(UTC)
            end_day = day if r.end > r.start else day + timedelta(days=1)
            e = datetime.combine(end_day, r.end).replace(tzinfo=zone).astimezone(UTC)
            s, e = max(s, start), min(e, end)
            if s < e:
                windows.append((s, e))
        day += timedelta(days=1)
    return _merge_windows(windows)


def _merge_windows(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(windows):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def restricted(shifts: list[Shift], windows: list[tuple[datetime, datetime]]) -> list[Shift]:
    """Return the parts of `shifts` that fall inside `windows` (both sorted by start)."""
    out: list[Shift] = []
    first = 0  # windows ending before the current shift can never matter again
    for shift in shifts:
        while first < len(windows) and windows[first][1] <= shift.start:
            first += 1
        for s, e in windows[first:]:
            if s >= shift.end:
                break
            lo, hi = max(shift.start, s), min(shift.end, e)
            if lo < hi:
                out.append(Shift(shift.user_id, lo, hi, shift.layer_id, shift.override_id))
    return out


def final_shifts(schedule: ScheduleSpec, start: datetime, end: datetime) -> list[Shift]:
    """Return who is on call over [start, end): overrides over higher layers over lower ones.

    Shifts come sorted and never overlap; one person's back-to-back shifts from the same layer
    (or the same override) are merged into one.
    """
    start, end = _utc(start), _utc(end)
    if end <= start:
        return []
    zone = ZoneInfo(schedule.time_zone)
    # (rank, shift): the highest rank covering a moment wins. Overrides outrank every layer.
    candidates: list[tuple[tuple[int, int, int], Shift]] = []
    for order, layer in enumerate(schedule.layers):
        shifts = layer_shifts(layer, zone, start, end)
        if layer.restrictions:
            shifts = restricted(shifts, restriction_windows(layer.restrictions, zone, start, end))
        candidates += [((0, layer.level, order), s) for s in shifts]
    for order, override in enumerate(schedule.overrides):
        s, e = max(_utc(override.start), start), min(_utc(override.end), end)
        if s < e:
            shift = Shift(override.user_id, s, e, override_id=override.override_id)
            candidates.append(((1, 0, order), shift))

    # Sweep the boundaries once, keeping the few candidates covering each piece.
    starting: dict[datetime, list[int]] = defaultdict(list)
    ending: dict[datetime, list[int]] = defaultdict(list)
    for i, (_, shift) in enumerate(candidates):
        starting[shift.start].append(i)
        ending[shift.end].append(i)
    points = sorted({start, end, *starting, *ending})
    active: set[int] = set()
    result: list[Shift] = []
    for lo, hi in itertools.pairwise(points):
        active.difference_update(ending.get(lo, ()))
        active.update(starting.get(lo, ()))
        if not active:
            continue
        winner = candidates[max(active, key=lambda i: candidates[i][0])][1]
        piece = Shift(winner.user_id, lo, hi, winner.layer_id, winner.override_id)
        if result and _same_owner(result[-1], piece) and result[-1].end == lo:
            result[-1] = Shift(
                piece.user_id, result[-1].start, hi, piece.layer_id, piece.override_id
            )
        else:
            result.append(piece)
    return result


def _same_owner(a: Shift, b: Shift) -> bool:
    return (a.user_id, a.layer_id, a.override_id) == (b.user_id, b.layer_id, b.override_id)


def uncovered(
    shifts: Iterable[Shift], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Return the parts of [start, end) that no shift covers (the schedule's gaps)."""
    start, end = _utc(start), _utc(end)
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for shift in sorted(shifts, key=lambda s: s.start):
        if shift.start > cursor:
            gaps.append((cursor, min(shift.start, end)))
        cursor = max(cursor, shift.end)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(s, e) for s, e in gaps if s < e]


def on_call_at(schedule: ScheduleSpec, at: datetime) -> list[int]:
    """Return the user ids on call at `at` (one, or none when nobody covers it)."""
    at = _utc(at)
    shifts = final_shifts(schedule, at, at + timedelta(seconds=1))
    return [s.user_id for s in shifts if s.start <= at < s.end]


def next_shifts(schedule: ScheduleSpec, after: datetime, *, horizon_days: int = 60) -> list[Shift]:
    """Return the final shifts from `after` for `horizon_days`, the current one first."""
    return final_shifts(schedule, after, _utc(after) + timedelta(days=horizon_days))

"""Overrides: someone on call instead, for a while. The one way to create and remove them, for
the API and the web UI alike: validation, the write and its audit entry in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import User
from oncall.models import Override, Schedule

# The longest override, in days (the same bound as any range the API reads).
MAX_OVERRIDE_DAYS = 366


class OverrideError(ValueError):
    """An override that cannot be created or removed; `field` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def in_zone(moment: datetime, zone_name: str) -> datetime:
    """Return `moment`, read as local to `zone_name` when it has no offset."""
    if timezone.is_aware(moment):
        return moment
    return moment.replace(tzinfo=ZoneInfo(zone_name))


def check_override(
    schedule: Schedule, user: User, start: datetime, end: datetime, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """Return the override's start and end made aware (naive ones are local to the schedule's
    zone); raise OverrideError saying what is wrong with it."""
    if not user.is_active:
        raise OverrideError(f"{user.get_username()} is deactivated and cannot be on call", "user")
    start, end = in_zone(start, schedule.time_zone), in_zone(end, schedule.time_zone)
    if end <= start:
        raise OverrideError("must be after start", "end")
    if end <= (now or timezone.now()):
        raise OverrideError("an override must end in the future", "end")
    if end - start > timedelta(days=MAX_OVERRIDE_DAYS):
        raise OverrideError(f"an override can last at most {MAX_OVERRIDE_DAYS} days")
    return start, end


@transaction.atomic
def create_override(
    schedule: Schedule, user: User, start: datetime, end: datetime, *, by: User
) -> Override:
    """Put `user` on call for `schedule` over [start, end), as `by` asked; audit it."""
    start, end = check_override(schedule, user, start, end)
    override = Override.objects.create(
        schedule=schedule, user=user, start=start, end=end, created_by=by
    )
    record_change(by, CREATED, override, snapshot(override))
    return override


@transaction.atomic
def remove_override(override: Override, *, by: User) -> Override | None:
    """Delete an override that has not started; end one under way now (the past stays as it
    was); refuse one already over. Return the shortened override, or None once deleted."""
    now = timezone.now()
    if override.end <= now:
        raise OverrideError("This override is over; it stays in the schedule's history.")
    if override.start < now:
        before = snapshot(override)
        override.end = now
        override.save(update_fields=["end"])
        record_change(by, UPDATED, override, diff(before, snapshot(override)))
        return override
    before, pk = snapshot(override), override.pk
    override.delete()
    record_change(by, DELETED, override, before, object_id=pk)
    return None

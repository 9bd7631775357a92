"""What the on-call API modules share: references, ranges, id filters, local date-times."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from accounts.models import User
from core.api_errors import Conflict, check_query_text
from core.moments import parse_moment
from oncall.models import EscalationPolicy, Schedule

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 7
MAX_PARTICIPANTS = 100
MAX_RESTRICTIONS = 28


def active_users():
    return User.objects.filter(is_active=True)


def user_ref(user: User) -> dict:
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name()}


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class ScheduleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


def schedule_ref(schedule: Schedule) -> dict:
    return {"id": schedule.pk, "name": schedule.name}


class LocalDateTimeField(serializers.DateTimeField):
    """A date-time that may come without an offset: it is then local to the schedule's zone
    (the serializer's `validate` makes it aware). Output is always UTC with its offset."""

    def enforce_timezone(self, value):
        return value if timezone.is_naive(value) else super().enforce_timezone(value)


def in_zone(value: datetime | None, zone_name: str) -> datetime | None:
    if value is None or timezone.is_aware(value):
        return value
    return value.replace(tzinfo=ZoneInfo(zone_name))


def protect_targets(obj, field: str) -> None:
    """Refuse to delete a schedule or team an escalation step still pages."""
    policies = sorted(
        EscalationPolicy.objects.filter(**{f"steps__{field}": obj})
        .values_list("name", flat=True)
        .distinct()
    )
    if policies:
        raise Conflict(
            f"{obj} is a target of the escalation policies {', '.join(policies)}; "
            "take it out of their steps first."
        )


def filter_ids(queryset, params, **fields):
    """Apply ?name=<id> filters, refusing values that are not ids."""
    check_query_text(params)
    for name, lookup in fields.items():
        value = params.get(name)
        if value is None:
            continue
        if not value.isdigit():
            raise ValidationError(f"{name} must be an id")
        queryset = queryset.filter(**{lookup: int(value)})
    return queryset


class RangeSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


def parse_range(params, default_days: int = DEFAULT_RANGE_DAYS) -> tuple[datetime, datetime]:
    """Return ?start=&end= (default: now and `default_days` later), at most a year apart."""
    check_query_text(params)
    problems = []
    bounds = {}
    for name in ("start", "end"):
        value = params.get(name)
        if value is None:
            continue
        moment = parse_moment(value)
        if moment is None:
            problems.append(f"{name} must be an ISO 8601 date-time, like 2025-03-01T12:00:00Z")
        bounds[name] = moment
    if problems:
        raise ValidationError(problems)
    start = bounds.get("start") or timezone.now()
    end = bounds.get("end") or start + timedelta(days=default_days)
    if end <= start:
        raise ValidationError("end must be after start")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise ValidationError(f"a range can span at most {MAX_RANGE_DAYS} days")
    return start, end


RANGE_PARAMS = [
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Default: now."),
    OpenApiParameter(
        "end", OpenApiTypes.DATETIME, description="Default: a week after start; at most a year."
    ),
]


def find_by_id_or_name(model, value: str, name_field: str, what: str):
    if "\x00" in value:  # no name holds one, and PostgreSQL text cannot: refused, not a 500
        raise ValidationError(f"{what} cannot contain NUL characters")
    # ASCII digits only: "²" is a digit to str.isdigit, and int() refuses it.
    lookup = {"pk": int(value)} if value.isascii() and value.isdigit() else {name_field: value}
    found = model.objects.filter(**lookup).first()
    if found is None:
        raise ValidationError(f"there is no {what} {value}")
    return found

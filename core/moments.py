"""Reading a moment someone wrote: ISO 8601 date-times (and bare dates) in query parameters."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def parse_moment(value: str) -> datetime | None:
    """Return the aware date-time an ISO 8601 value names (a bare date is its midnight, UTC;
    a date-time without an offset is UTC), or None if it names none."""
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:  # well-formed but impossible, like month 13
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment

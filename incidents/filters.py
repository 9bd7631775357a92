"""Incident filters: the one query behind the API's list parameters and the web list's form."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet

from incidents.models import OPEN_STATUSES, Incident

OPEN = "open"  # stands for both open statuses, triggered and acknowledged


def filter_incidents(
    incidents: QuerySet[Incident],
    *,
    statuses: Iterable[str] | None = None,
    service_ids: Iterable[int] | None = None,
    service_names: Iterable[str] | None = None,
    severities: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    title: str = "",
) -> QuerySet[Incident]:
    """Return `incidents` narrowed to those in `statuses` (`OPEN` for both open ones), on the
    services named, of `severities`, created in [`since`, `until`) and with `title` in their
    title. None (or "") leaves a criterion out."""
    if statuses is not None:
        named = list(statuses)
        wanted = [s for s in named if s != OPEN]
        if OPEN in named:
            wanted += OPEN_STATUSES
        incidents = incidents.filter(status__in=wanted)
    if service_ids is not None:
        incidents = incidents.filter(service_id__in=service_ids)
    if service_names is not None:
        incidents = incidents.filter(service__name__in=service_names)
    if severities is not None:
        incidents = incidents.filter(severity__in=severities)
    if since is not None:
        incidents = incidents.filter(created_at__gte=since)
    if until is not None:
        incidents = incidents.filter(created_at__lt=until)
    if title:
        incidents = incidents.filter(title__icontains=title)
    return incidents

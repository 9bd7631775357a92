"""Celery tasks of war rooms."""

from __future__ import annotations

from celery import shared_task

from incidents.models import TimelineEntry
from warroom.receivers import tell


@shared_task(name="warroom.follow_entry", ignore_result=True)
def follow_entry_later(entry_id: int) -> None:
    """What the bot does for an entry written by ingest processing (see receivers)."""
    entry = TimelineEntry.objects.filter(pk=entry_id).first()
    if entry is not None:
        tell(entry)

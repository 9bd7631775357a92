"""Celery tasks of war rooms."""

from __future__ import annotations

from celery import shared_task

from incidents.models import TimelineEntry
from warroom import replay
from warroom.receivers import INCIDENT_RELATED, tell


def _entries(entry_ids: list[int]) -> list[TimelineEntry]:
    """The entries, each with its incident as the bot reads it (one statement for both)."""
    related = [f"incident__{name}" for name in INCIDENT_RELATED]
    return list(
        TimelineEntry.objects.filter(pk__in=entry_ids).select_related(*related).order_by("pk")
    )


@shared_task(name="warroom.follow_entry", ignore_result=True)
def follow_entry_later(entry_id: int) -> None:
    """What the bot does for an entry written by ingest processing (see receivers)."""
    for entry in _entries([entry_id]):
        tell(entry, entry.incident)


@shared_task(name="warroom.follow_entries", ignore_result=True)
def follow_entries_later(entry_ids: list[int]) -> None:
    """The same for the alert entries of one ingest batch, one per incident and kind."""
    for entry in _entries(entry_ids):
        tell(entry, entry.incident)


@shared_task(name="warroom.forget_twilio_requests", ignore_result=True)
def forget_twilio_requests() -> int:
    """Forget the Twilio requests seen before the replay window (warroom.replay)."""
    return replay.forget_old()

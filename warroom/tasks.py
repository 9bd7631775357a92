"""Celery tasks of war rooms."""

from __future__ import annotations

from celery import shared_task

from warroom import replay, status_updates
from warroom.receivers import tell_entries


@shared_task(name="warroom.follow_entry", ignore_result=True)
def follow_entry_later(entry_id: int) -> None:
    """What the bot does for an entry written by ingest processing (see receivers)."""
    tell_entries([entry_id])


@shared_task(name="warroom.follow_entries", ignore_result=True)
def follow_entries_later(entry_ids: list[int]) -> None:
    """The same for the alert entries of one ingest batch, one per incident and kind."""
    tell_entries(entry_ids)


@shared_task(name="warroom.forget_twilio_requests", ignore_result=True)
def forget_twilio_requests() -> int:
    """Forget the Twilio requests seen before the replay window (warroom.replay)."""
    return replay.forget_old()


@shared_task(name=status_updates.MAIL_TASK, ignore_result=True)
def mail_status_update(subject: str, body: str, addresses: list, key: str) -> None:
    """Mail a status update to its email subscribers (see status_updates)."""
    status_updates.mail(subject, body, [(name, address) for name, address in addresses], key)

"""Celery tasks of oncall: interfaces that fetch by id and call one service function."""

from __future__ import annotations

from celery import shared_task

from oncall import delivery, escalation


@shared_task(name="oncall.follow_entry", ignore_result=True, acks_late=True)
def follow_entry(entry_id: int) -> None:
    # Idempotent: a run is unique per causing entry.
    escalation.follow(entry_id)


@shared_task(name="oncall.start_escalation", ignore_result=True, acks_late=True)
def start_escalation(incident_id: int) -> None:
    """Kept for tasks queued before an upgrade: start what the incident's latest entry asks."""
    escalation.recover(incident_id)


@shared_task(name="oncall.stop_escalations", ignore_result=True, acks_late=True)
def stop_escalations(incident_id: int, reason: str) -> None:
    escalation.stop_escalations(incident_id, reason=reason)


@shared_task(name="oncall.deliver_page", ignore_result=True, acks_late=True)
def deliver_page(page_id: int) -> None:
    # Idempotent: the claim is a conditional update, so a redelivered task does nothing.
    delivery.deliver(page_id)

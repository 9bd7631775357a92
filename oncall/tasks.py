"""Celery tasks of oncall: interfaces that fetch by id and call one engine function."""

from __future__ import annotations

from celery import shared_task

from oncall import engine


@shared_task(name="oncall.start_escalation", ignore_result=True, acks_late=True)
def start_escalation(incident_id: int) -> None:
    engine.start_escalation(incident_id)


@shared_task(name="oncall.escalate_now", ignore_result=True, acks_late=True)
def escalate_now(incident_id: int) -> None:
    engine.escalate_now(incident_id)


@shared_task(name="oncall.stop_escalations", ignore_result=True, acks_late=True)
def stop_escalations(incident_id: int, reason: str) -> None:
    engine.stop_escalations(incident_id, reason=reason)


@shared_task(name="oncall.deliver_page", ignore_result=True, acks_late=True)
def deliver_page(page_id: int) -> None:
    # Idempotent: the claim is a conditional update, so a redelivered task does nothing.
    engine.deliver(page_id)


@shared_task(name="oncall.page_assignee", ignore_result=True, acks_late=True)
def page_assignee(incident_id: int, user_id: int, by_id: int | None) -> None:
    """Page the new assignee of a reassigned incident."""
    from accounts.models import User
    from incidents.models import Incident, Source

    incident = Incident.objects.select_related("service").get(pk=incident_id)
    person = User.objects.get(pk=user_id)
    by = User.objects.filter(pk=by_id).first() if by_id else None
    engine.page_person(incident, person, by=by, source=Source.SYSTEM)

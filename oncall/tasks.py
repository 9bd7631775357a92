"""Celery tasks of oncall: interfaces that fetch by id and call one service function."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from oncall import delivery, escalation, verify_limits

# A deadlock or a dropped connection is the database in trouble for a moment: try again soon
# (every task here is idempotent). What is still lost after that, the sweep recovers.
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": 1, "max_retries": 3}


@shared_task(name="oncall.follow_entry", ignore_result=True, acks_late=True, **RETRY)
def follow_entry(entry_id: int) -> None:
    # Idempotent: a run is unique per causing entry.
    escalation.follow(entry_id)


# The names tasks had before runs had causes, for tasks queued before an upgrade: each starts
# what the incident's latest starting entry asks (an opening, an escalation, a reassignment).
@shared_task(name="oncall.start_escalation", ignore_result=True, acks_late=True)
def start_escalation(incident_id: int) -> None:
    escalation.recover(incident_id)


@shared_task(name="oncall.escalate_now", ignore_result=True, acks_late=True)
def escalate_now(incident_id: int) -> None:
    escalation.recover(incident_id)


@shared_task(name="oncall.page_assignee", ignore_result=True, acks_late=True)
def page_assignee(incident_id: int, user_id: int, by_id: int | None) -> None:
    escalation.recover(incident_id)


@shared_task(name="oncall.stop_escalations", ignore_result=True, acks_late=True, **RETRY)
def stop_escalations(incident_id: int, reason: str) -> None:
    escalation.stop_escalations(incident_id, reason=reason)


@shared_task(name="oncall.deliver_page", bind=True, ignore_result=True, acks_late=True, **RETRY)
def deliver_page(self, page_id: int) -> None:
    # Idempotent: the claim is a conditional update, so a redelivered task does nothing. Run
    # eagerly (in process, in tests), the delivery is done before the task returns.
    delivery.hand_over(page_id, inline=bool(self.request.is_eager))


@shared_task(name="oncall.forget_verification_budgets", ignore_result=True)
def forget_verification_budgets() -> int:
    """Delete per-address verification limits nobody has touched for a day."""
    return verify_limits.forget_old_budgets(timezone.now())

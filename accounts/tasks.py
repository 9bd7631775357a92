"""Celery tasks of accounts."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.signin import sweep

log = logging.getLogger(__name__)


@shared_task(name="accounts.sweep_signins", ignore_result=True)
def sweep_signins() -> None:
    """Delete expired sessions and old sign-in records (hourly, from the beat)."""
    sessions, logs = sweep()
    if sessions or logs:
        log.info("deleted %d expired sessions and %d old sign-in records", sessions, logs)

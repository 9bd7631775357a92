"""The beat tick: about once a second, every app's time-driven work, then a heartbeat of its own."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.core.cache import cache

from alerts.heartbeats import check_heartbeats
from alerts.pending import kick_if_stuck
from alerts.silencing import refire_unsilenced
from incidents.services import retrigger_due_incidents
from oncall.escalation import run_due_escalations
from oncall.sweep import sweep_outbox

log = logging.getLogger(__name__)

LAST_TICK_KEY = "muster:last-tick"


@shared_task(name="muster.tick", ignore_result=True, expires=5)
def tick() -> None:
    """Run the periodic work, most urgent first; `/readyz` checks that this ran recently."""
    for work in (
        run_due_escalations,
        sweep_outbox,
        retrigger_due_incidents,
        check_heartbeats,
        refire_unsilenced,  # alerts a silence held, once it reaches its end
        kick_if_stuck,
    ):
        try:
            work()
        except Exception:  # one failing part must not stop the others, nor the next tick
            log.exception("tick: %s failed", work.__name__)
    cache.set(LAST_TICK_KEY, time.time(), timeout=None)


def seconds_since_last_tick() -> float | None:
    last = cache.get(LAST_TICK_KEY)
    return None if last is None else max(0.0, time.time() - last)

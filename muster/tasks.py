"""The beat tick: about once a second, every app's time-driven work, then a heartbeat of its own."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now

from alerts.heartbeats import check_heartbeats
from alerts.pending import kick_if_stuck
from alerts.silencing import refire_unsilenced
from incidents.services import retrigger_due_incidents
from muster.models import Heartbeat
from oncall.escalation import run_due_escalations
from oncall.sweep import sweep_outbox

log = logging.getLogger(__name__)

TICK_HEARTBEAT = "tick"


@shared_task(name="muster.tick", ignore_result=True, expires=5)
def tick() -> None:
    """Run the periodic work, most urgent first; `/readyz?role=worker` checks that this ran."""
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
    record_tick()


def record_tick() -> None:
    """Record that the tick ran, in the database (Redis is a cache: a flush must not hide it)."""
    if not Heartbeat.objects.filter(name=TICK_HEARTBEAT).update(at=Now()):
        Heartbeat.objects.update_or_create(name=TICK_HEARTBEAT, defaults={"at": Now()})


def seconds_since_last_tick() -> float | None:
    """Return how long ago the tick last ran, by the database's clock (None: never)."""
    age = (
        Heartbeat.objects.filter(name=TICK_HEARTBEAT)
        .annotate(age=ExpressionWrapper(Now() - F("at"), output_field=DurationField()))
        .values_list("age", flat=True)
        .first()
    )
    return None if age is None else max(0.0, age.total_seconds())

"""The outbox sweep, each tick: crash recovery for pages and runs, never a normal flow.

- A page claimed but never handed to the provider (its worker died first) is queued again.
- A page handed over with no answer past the deadline becomes `unknown`: never sent again,
  and the person's next contact method is tried.
- Due pages that no task picked up are enqueued again.
- A triggered incident whose latest starting entry started no run (the process died before
  the task that would start it ran) gets the run that entry asked for: the sweep never
  restarts a policy that a change of course replaced.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from core.compiled import Lookup
from incidents.models import STARTING_KINDS, Incident, Status, TimelineEntry
from oncall import delivery, escalation, metrics
from oncall.models import Escalation, EscalationStatus, Page, PageStatus

log = logging.getLogger(__name__)


def _orphans(cutoff: datetime):
    """Triggered incidents whose latest starting entry, older than `cutoff`, started no run:
    its task was lost (the process died after the commit, or the broker was down). Only those
    whose latest run is not active: with one active, the policy still pages (a lost
    reassignment there is not recovered, but nobody is left unpaged)."""
    latest_run = Escalation.objects.filter(incident=OuterRef("pk")).order_by("-id")
    # The latest by id, not by time: a clock that jumped back must not make an older entry
    # look newer.
    latest_start = TimelineEntry.objects.filter(
        incident=OuterRef("pk"), kind__in=STARTING_KINDS
    ).order_by("-id")
    return (
        Incident.objects.filter(status=Status.TRIGGERED)
        .annotate(
            run_status=Subquery(latest_run.values("status")[:1]),
            run_cause=Subquery(latest_run.values("cause_id")[:1]),
            run_created=Subquery(latest_run.values("created_at")[:1]),
            start_id=Subquery(latest_start.values("id")[:1]),
            start_at=Subquery(latest_start.values("at")[:1]),
        )
        .filter(start_at__lt=cutoff)
        .filter(
            Q(run_status__isnull=True)
            | (
                ~Q(run_status=EscalationStatus.ACTIVE)
                & (
                    Q(run_cause__lt=F("start_id"))
                    # A run from before runs had causes: started after its trigger, or not.
                    | Q(run_cause__isnull=True, run_created__lt=F("start_at"))
                )
            )
        )
        .order_by("pk")
    )


def _reclaimable(cutoff: datetime) -> QuerySet[Page]:
    return Page.objects.filter(
        status=PageStatus.SENDING, handed_at__isnull=True, claimed_at__lt=cutoff
    )


def _unanswered(deadline: datetime) -> QuerySet[Page]:
    return Page.objects.filter(
        status=PageStatus.SENDING, carried_by__isnull=True, handed_at__lt=deadline
    )


def _due(now: datetime, cutoff: datetime) -> QuerySet[Page]:
    return Page.objects.filter(status=PageStatus.QUEUED, send_after__lte=now).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
    )


# The tick's lookups, compiled once (core.compiled): twice a second, and most find nothing.
_ANY_RECLAIMABLE = Lookup(lambda cutoff: _reclaimable(cutoff).values_list("pk")[:1])
_ANY_UNANSWERED = Lookup(lambda deadline: _unanswered(deadline).values_list("pk")[:1])
_DUE = Lookup(
    lambda now, cutoff: _due(now, cutoff).values_list("pk")[:1000], takes=(datetime, datetime)
)
_ORPHANS = Lookup(lambda cutoff: _orphans(cutoff).values_list("pk")[:100])


def sweep_outbox(now: datetime | None = None) -> dict[str, int]:
    """Requeue lost work and settle pages stuck in sending; return what it did."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAGE_REQUEUE_AFTER_SECONDS)
    deadline = now - timedelta(seconds=settings.PAGE_SENDING_DEADLINE_SECONDS)
    # Claimed but never handed to the provider (the worker died first): safe to send again.
    reclaimed = 0
    if _ANY_RECLAIMABLE.exists(cutoff):
        reclaimed = _reclaimable(cutoff).update(
            status=PageStatus.QUEUED, claimed_at=None, enqueued_at=None
        )
    # Handed over and never answered: maybe sent. Never again; the escalation moves on.
    stuck = []
    if _ANY_UNANSWERED.exists(deadline):
        stuck = list(_unanswered(deadline).select_related("person"))
    for page in stuck:
        if Page.objects.filter(pk=page.pk, status=PageStatus.SENDING).update(
            status=PageStatus.UNKNOWN, finished_at=now, error="no answer from the provider"
        ):
            metrics.PAGES.labels(page.channel, "unknown").inc()
            delivery.record_unknown(page)
    due = [pk for (pk,) in _DUE.rows(now, cutoff)]
    delivery.enqueue(due)
    orphans = [pk for (pk,) in _ORPHANS.rows(cutoff)]
    for incident_id in orphans:
        try:
            escalation.recover(incident_id)
        except Exception:  # one incident that cannot be recovered holds up no other
            log.exception("could not recover the escalation of incident %s", incident_id)
    return {
        "reclaimed": reclaimed,
        "unknown": len(stuck),
        "enqueued": len(due),
        "orphans": len(orphans),
    }

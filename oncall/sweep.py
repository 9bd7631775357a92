"""The outbox sweep, each tick: crash recovery for pages and runs, never a normal flow.

- A page claimed but never handed to the provider (its worker died first) is queued again.
- A page handed over with no answer past the deadline becomes `unknown`: never sent again,
  and the person's next contact method is tried.
- Due pages that no task picked up are enqueued again.
- A triggered incident whose latest run was stopped, or that has none (the process died
  before the task that would start it ran), gets the run its latest cause asked for: the sweep
  never restarts a policy that a change of course replaced.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from incidents.models import Incident, Status
from oncall import delivery, escalation, metrics
from oncall.models import Escalation, EscalationStatus, Page, PageStatus


def sweep_outbox(now: datetime | None = None) -> dict[str, int]:
    """Requeue lost work and settle pages stuck in sending; return what it did."""
    now = now or timezone.now()
    requeue_after = timedelta(seconds=settings.PAGE_REQUEUE_AFTER_SECONDS)
    # Claimed but never handed to the provider (the worker died first): safe to send again.
    reclaimed = Page.objects.filter(
        status=PageStatus.SENDING, handed_at__isnull=True, claimed_at__lt=now - requeue_after
    ).update(status=PageStatus.QUEUED, claimed_at=None, enqueued_at=None)
    # Handed over and never answered: maybe sent. Never again; the escalation moves on.
    stuck = list(
        Page.objects.filter(
            status=PageStatus.SENDING,
            carried_by__isnull=True,
            handed_at__lt=now - timedelta(seconds=settings.PAGE_SENDING_DEADLINE_SECONDS),
        ).select_related("person")
    )
    for page in stuck:
        if Page.objects.filter(pk=page.pk, status=PageStatus.SENDING).update(
            status=PageStatus.UNKNOWN, finished_at=now, error="no answer from the provider"
        ):
            metrics.PAGES.labels(page.channel, "unknown").inc()
            delivery.record_unknown(page)
    due = list(
        Page.objects.filter(status=PageStatus.QUEUED, send_after__lte=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - requeue_after))
        .values_list("pk", flat=True)[:1000]
    )
    delivery.enqueue(due)
    # A triggered incident whose latest run was stopped (or that has none) waits for a run
    # that a lost task should have started.
    latest_run = Escalation.objects.filter(incident=OuterRef("pk")).order_by("-id")
    orphans = list(
        Incident.objects.filter(status=Status.TRIGGERED, triggered_at__lt=now - requeue_after)
        .annotate(run=Subquery(latest_run.values("status")[:1]))
        .filter(Q(run__isnull=True) | Q(run=EscalationStatus.STOPPED))
        .values_list("pk", flat=True)[:100]
    )
    for incident_id in orphans:
        escalation.recover(incident_id)
    return {
        "reclaimed": reclaimed,
        "unknown": len(stuck),
        "enqueued": len(due),
        "orphans": len(orphans),
    }

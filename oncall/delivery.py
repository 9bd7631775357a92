"""Delivery: handing each page to its channel at most once, at the pace a person can take.

- A delivery task claims its page with a conditional update, re-checks under the incident's
  lock that it may still be sent, commits `handed_at`, and only then calls the provider. A page
  claimed but never handed over goes back to the queue (the sweep); one handed over with no
  answer becomes `unknown` and counts as failed: the escalation moves on rather than risk
  calling twice (Twilio has no idempotency key).
- SMS and calls are rate limited per person; above the limit, pages are held and bundled
  (oncall.pacing). What providers report later is oncall.callbacks'.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from celery import current_app, current_task
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import faults, json_rows, pools, slots
from incidents.models import EntryKind, Incident, Source, Status
from incidents.services import flag_unpaged
from incidents.timeline import record
from oncall import delivery_statements as statements
from oncall import messages, metrics, pacing
from oncall.channels.base import Delivery, DeliveryError, Message
from oncall.channels.registry import CHANNELS
from oncall.models import (
    Escalation,
    EscalationStatus,
    Page,
    PageStatus,
)

log = logging.getLogger(__name__)

DELIVER_TASK = "oncall.deliver_page"
RETRY_BACKOFF_SECONDS = (30, 120, 300)
CHANNEL_LABEL = {"sms": "SMS", "voice": "voice call", "email": "email", "console": "console"}


# Pages a worker's thread hands to the providers' threads itself, at most; a longer list (the
# sweep's, after an outage) goes through the broker, shared by every worker process.
HAND_OVER_AT_MOST = 4


def enqueue(page_ids: list[int]) -> None:
    """Hand due pages on, noting when, so the sweep can tell a lost hand-over from a slow one.

    On a worker's own thread (a task's, or a provider's), a few pages go straight to this
    process's threads for their provider: a task through the broker costs a worker about 1 ms
    of CPU, and the page its wait in the queue. Anywhere else (a web request, an eager task run
    inline by its caller), for many pages, and for a page these threads cannot take now, one
    `deliver_page` task each: the broker shares them among every worker process.
    """
    if not page_ids:
        return
    statements.ENQUEUED.run(json.dumps(page_ids), timezone.now())
    if len(page_ids) > HAND_OVER_AT_MOST or not _on_a_worker_thread():
        _send_tasks(page_ids)
        return
    for n, page_id in enumerate(page_ids):
        try:
            handed = _to_providers_threads(page_id)
        except Exception:  # the database, most likely: the broker's way for the rest
            log.exception("could not hand page %s over; sending its task", page_id)
            _send_tasks(page_ids[n:])
            return
        if not handed:
            _send_tasks([page_id])


def _send_tasks(page_ids: list[int]) -> None:
    deliver_page = current_app.signature(DELIVER_TASK)
    for page_id in page_ids:
        deliver_page.clone(args=(page_id,)).delay()


def _on_a_worker_thread() -> bool:
    """Whether this thread is a worker's own: a Celery task's (not an eager one, run inline by
    whoever called it) or one of a provider's threads."""
    if pools.inside():
        return True
    return bool(current_task) and not current_task.request.is_eager


def _to_providers_threads(page_id: int) -> bool:
    """Hand a page straight to its provider's threads; return False when it must go through
    the broker instead: its channel calls no one (the console: delivered in a task of its own,
    not in the middle of the caller's work), or this process's threads for it are all taken
    (another worker's may be free). A page no longer due, or taken, needs nothing."""
    provider = _due_provider(page_id)
    if provider is None:
        return True
    return bool(provider) and pools.submit(
        "PAGING_THREADS", provider, deliver, page_id, key=page_id
    )


def _due_provider(page_id: int) -> str | None:
    """The party whose threads deliver the page ("" for none: the console), read with its
    channel; None if it is not due, or taken."""
    found = statements.CHANNEL.rows(page_id, timezone.now())
    if not found:
        return None
    channel = CHANNELS.get(found[0][0])  # one it does not know fails in _send, for good
    return channel.provider if channel is not None else ""


# --- handing a page over ---------------------------------------------------------------------


def hand_over(page_id: int, *, inline: bool = False) -> str:
    """Deliver the page on one of this process's threads for its provider (core.pools), so
    that the task's thread goes back to its queues at once; `inline`, or for a channel that
    calls no one (the console), in this thread. When the provider's threads are all taken,
    with as many pages waiting again (a provider that hangs), the page stays queued and its
    task asks again shortly. Return what happened (for logs and tests)."""
    provider = _due_provider(page_id)
    if provider is None:
        return "not due or taken"
    if inline or not provider:
        return deliver(page_id)
    if pools.submit("PAGING_THREADS", provider, deliver, page_id, key=page_id):
        return "handed to the provider's threads"
    _ask_again(page_id)
    return "no thread free"


def _ask_again(page_id: int) -> None:
    """Send the page's task again in a moment; noted as enqueued now, so that the sweep leaves
    it to that task meanwhile (and enqueues it again if that task is lost)."""
    Page.objects.filter(pk=page_id, status=PageStatus.QUEUED).update(enqueued_at=timezone.now())
    deliver_page = current_app.signature(DELIVER_TASK)
    slots.ask_again_later(
        f"{DELIVER_TASK}:{page_id}",
        lambda countdown: deliver_page.clone(args=(page_id,)).apply_async(countdown=countdown),
    )


def deliver(page_id: int) -> str:
    """Send one page, at most once; return what happened (for logs and tests)."""
    now = timezone.now()
    if not statements.CLAIM.run(page_id, now, now):
        return "not due or taken"
    faults.point("after_claim")
    with transaction.atomic():
        page = statements.PAGE.get(page_id)
        paced = page.channel in pacing.PACED
        if paced:
            pacing.serialize_person(page.person_id)
        candidates = pacing.waiting_pages(page, now) if paced else []
        ids = sorted({page.incident_id, *(p.incident_id for p in candidates)})
        locked = {i.pk: i for i in statements.LOCKED.instances(json.dumps(ids))}
        incident = locked[page.incident_id]
        # Still our claim? One that stalled past PAGE_REQUEUE_AFTER_SECONDS (a lock wait, a
        # paused process) was taken back by the sweep and may be sent by another delivery.
        # Locked until the hand-over commits, so the sweep cannot take it back meanwhile. Read
        # with it: its run's status as it is now that the incident is locked (a change of
        # course stops a run under its incident's lock); the run's row is not locked.
        ours = statements.OURS.rows(page_id, now)
        if not ours:
            return "not due or taken"
        if page.escalation is not None:
            page.escalation.status = ours[0][1]
        _fresh_runs(candidates)
        if not _still_wanted(page, incident):
            Page.objects.filter(pk=page_id).update(
                status=PageStatus.CANCELLED, finished_at=now, error=f"incident {incident.status}"
            )
            return "cancelled"
        pace = pacing.pace(page, incident, now) if paced else pacing.Pace()
        if pace.hold_until is not None:
            _hold(page, incident, pace.hold_until)
            return "held"
        riders = [
            p
            for p in pacing.riders_of(page, pace, candidates)
            if _still_wanted(p, locked[p.incident_id])
        ]
        riders = pacing.board(riders, page, now)
        incidents = [incident, *(locked[p.incident_id] for p in riders)]
        message = (
            messages.for_bundle(_distinct(incidents))
            if len(_distinct(incidents)) > 1
            else messages.for_incident(incident)
        )
        page.handed_at, page.body, page.bundle = timezone.now(), message.sms, pace.bundle
        json_rows.update([page], ["handed_at", "body", "bundle"])  # one statement, compiled once
    # Committed: from here on this page (and its riders) are never sent again.
    if pools.inside():
        # The provider may take its whole timeout: on a provider's thread, the database
        # connection goes back to the pool meanwhile (a worker has few: DATABASE_POOL_MAX).
        connection.close()
    faults.point("before_send")
    try:
        provider_id = _send(page, message)
    except DeliveryError as exc:
        return delivery_failed(page, exc)
    faults.point("after_send")
    sent_at = timezone.now()
    statements.SENT.run(page_id, provider_id[:64], sent_at)
    if riders:
        Page.objects.filter(carried_by_id=page_id, status=PageStatus.SENDING).update(
            status=PageStatus.SENT, provider_id=provider_id[:64], sent_at=sent_at
        )
    metrics.PAGES.labels(page.channel, "sent").inc()
    metrics.PAGE_LATENCY.observe(max(0.0, (sent_at - incident.triggered_at).total_seconds()))
    carried = f" (with {len(riders)} more incidents bundled)" if riders else ""
    note_page(
        page,
        f"Paged {page.person.get_username()} by {label_of(page)}{carried}",
        "sent",
        incident=incident,
    )
    return "sent"


def _send(page: Page, message: Message) -> str:
    """Hand the message to the page's channel. Anything the channel raises besides a
    DeliveryError (a header it refused, a bug) fails this page for good, so the person's next
    contact method is tried now instead of the page turning `unknown` a minute later."""
    try:
        return CHANNELS[page.channel].send(Delivery.of_page(page), message)
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("channel %s failed on page %s", page.channel, page.pk)
        raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True) from exc


def _still_wanted(page: Page, incident: Incident) -> bool:
    """An automatic page goes out only while its incident is triggered and its run is not
    stopped (acknowledged, or superseded by a change of course); one a person asked for
    ("page @bob") until the incident is resolved."""
    if page.manual:
        return incident.status != Status.RESOLVED
    run = page.escalation
    return incident.status == Status.TRIGGERED and (
        run is None or run.status != EscalationStatus.STOPPED
    )


def _fresh_runs(pages: list[Page]) -> None:
    """Re-read the status of the pages' runs."""
    runs = [p.escalation for p in pages if p.escalation is not None]
    statuses = dict(
        Escalation.objects.filter(pk__in={r.pk for r in runs}).values_list("pk", "status")
    )
    for run in runs:
        run.status = statuses.get(run.pk, run.status)


def _hold(page: Page, incident: Incident, until: datetime) -> None:
    first = page.held_at is None
    Page.objects.filter(pk=page.pk).update(
        status=PageStatus.QUEUED,
        send_after=until,
        held_at=page.held_at or page.send_after,
        claimed_at=None,
        enqueued_at=None,
        error="rate limited",
    )
    if first:
        record(
            incident,
            EntryKind.PAGE,
            message=f"Page to {page.person.get_username()} by {label_of(page)} held until "
            f"{until:%H:%M:%S} UTC by the rate limit; the next message to them carries it",
            source=Source.SYSTEM,
            data={"page": page.pk, "status": "held"},
        )


def _distinct(incidents: list[Incident]) -> list[Incident]:
    return sorted({i.pk: i for i in incidents}.values(), key=lambda i: i.number)


# --- when a send fails -----------------------------------------------------------------------


def delivery_failed(page: Page, exc: DeliveryError) -> str:
    """Settle a page whose send failed: unknown when it may have gone out, else retried with
    backoff while the failure may pass, else failed; return which. A page that will not go
    out falls back to the person's next contact method."""
    now = timezone.now()
    who = page.person.get_username()
    if exc.maybe_sent:
        Page.objects.filter(pk=page.pk).update(
            status=PageStatus.UNKNOWN, finished_at=now, error=str(exc)[:2000]
        )
        metrics.PAGES.labels(page.channel, "unknown").inc()
        note_page(page, f"Page to {who} by {label_of(page)}: outcome unknown ({exc})", "unknown")
        for rider in _riders(page):
            _settle_rider(rider, PageStatus.UNKNOWN, str(exc))
        _fall_back(page)
        return "unknown"
    _release_riders(page)
    if not exc.permanent and page.attempts < settings.PAGE_MAX_ATTEMPTS:
        backoff = RETRY_BACKOFF_SECONDS[min(page.attempts, len(RETRY_BACKOFF_SECONDS)) - 1]
        # The provider refused it: nothing was sent, so sending again is safe.
        Page.objects.filter(pk=page.pk).update(
            status=PageStatus.QUEUED,
            send_after=now + timedelta(seconds=backoff),
            handed_at=None,
            claimed_at=None,
            enqueued_at=None,
            error=str(exc)[:2000],
        )
        metrics.PAGES.labels(page.channel, "retried").inc()
        note_page(
            page,
            f"Page to {who} by {label_of(page)} failed ({exc}); retrying in {backoff} s",
            "retry",
        )
        return "retry"
    Page.objects.filter(pk=page.pk).update(
        status=PageStatus.FAILED, finished_at=now, error=str(exc)[:2000]
    )
    metrics.PAGES.labels(page.channel, "failed").inc()
    note_page(page, f"Page to {who} by {label_of(page)} failed: {exc}", "failed")
    _fall_back(page)
    return "failed"


def record_unknown(page: Page) -> None:
    """Say that a handed-over page never got an answer (the sweep made it `unknown`), settle
    what it carried likewise, and try the person's next contact method."""
    note_page(
        page,
        f"Page to {page.person.get_username()} by {label_of(page)}: outcome unknown "
        "(the send never finished); not sending it again",
        "unknown",
    )
    for rider in _riders(page):
        _settle_rider(rider, PageStatus.UNKNOWN, "no answer from the provider")
    _fall_back(page)


def _riders(page: Page) -> list[Page]:
    return list(Page.objects.filter(carried_by=page).select_related("person"))


def _release_riders(page: Page) -> None:
    """The carrier's message did not go out: what it carried is held again, due now, for the
    next message to the person (the carrier's retry, or one of them)."""
    now = timezone.now()
    released = Page.objects.filter(
        carried_by=page, status__in=[PageStatus.SENDING, PageStatus.SENT]
    ).update(
        status=PageStatus.QUEUED,
        carried_by=None,
        claimed_at=None,
        handed_at=None,
        enqueued_at=None,
        sent_at=None,
        send_after=now,
        error="rate limited",
    )
    if released:
        ids = list(
            Page.objects.filter(
                person_id=page.person_id, status=PageStatus.QUEUED, held_at__isnull=False
            ).values_list("pk", flat=True)
        )
        transaction.on_commit(lambda: enqueue(ids))


def _settle_rider(rider: Page, status: str, error: str) -> None:
    Page.objects.filter(pk=rider.pk).update(
        status=status, finished_at=timezone.now(), error=error[:2000]
    )
    if status in (PageStatus.FAILED, PageStatus.UNKNOWN):
        _fall_back(rider)


def _fall_back(page: Page) -> None:
    """After a page fails for good, use the person's next contact method now."""
    if page.escalation_id is None:
        return
    later = (
        Page.objects.filter(
            escalation_id=page.escalation_id,
            step=page.step,
            cycle=page.cycle,
            person_id=page.person_id,
            status=PageStatus.QUEUED,
        )
        .exclude(pk=page.pk)
        .order_by("send_after")
        .first()
    )
    now = timezone.now()
    if later is not None:
        if later.send_after > now:
            Page.objects.filter(pk=later.pk, status=PageStatus.QUEUED).update(send_after=now)
        transaction.on_commit(lambda: enqueue([later.pk]))
        return
    open_pages = Page.objects.filter(
        escalation_id=page.escalation_id, step=page.step, cycle=page.cycle
    ).exclude(status__in=[PageStatus.FAILED, PageStatus.UNKNOWN, PageStatus.CANCELLED])
    if not open_pages.exists():
        incident = Incident.objects.get(pk=page.incident_id)
        if incident.status == Status.TRIGGERED and not incident.unpaged:
            flag_unpaged(incident, reason=f"every page of level {page.step + 1} failed")
            metrics.UNPAGED.inc()


def label_of(page: Page) -> str:
    """Return how the page's channel is named in words ("SMS", "voice call", …)."""
    return CHANNEL_LABEL.get(page.channel, page.channel)


def note_page(page: Page, message: str, status: str, *, incident: Incident | None = None) -> None:
    """Say on the incident's timeline what became of a page (`status`: sent, failed, …).
    `incident`, the page's, read already by the caller (only its key is written)."""
    if incident is None or incident.pk != page.incident_id:
        incident = Incident.objects.get(pk=page.incident_id)
    record(
        incident,
        EntryKind.PAGE,
        message=message,
        source=Source.SYSTEM,
        data={
            "page": page.pk,
            "person": page.person_id,
            "channel": page.channel,
            "status": status,
            # The level that paged (none for a page sent by hand): the war room's line says it.
            **({"level": page.step + 1} if page.escalation_id is not None else {}),
        },
    )

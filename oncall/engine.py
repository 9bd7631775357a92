"""The escalation engine: who gets paged, when, through what — and never twice.

The database holds every pending escalation and every page; Celery only speeds things up.

- An `Escalation` row per trigger of an incident holds its policy, next step, cycle and `next_at`.
  The beat tick claims due rows with `SELECT … FOR UPDATE SKIP LOCKED` (only those whose incident
  is still triggered) and fires their step; the first step is also kicked at once.
- Firing a step creates `Page` rows, unique on (escalation, step, cycle, person, rule), so a
  replayed tick never pages twice while a re-trigger (a new escalation) pages again.
- A delivery task claims its page with a conditional update, re-checks under the incident's lock
  that it may still be sent, commits `handed_at`, and only then calls the provider. A page
  claimed but never handed over goes back to the queue; one handed over with no answer becomes
  `unknown` and counts as failed — the escalation moves on rather than risk calling twice.
- Each tick sweeps the outbox: due pages not picked up are enqueued again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Role, User
from incidents.models import EntryKind, Incident, Source, Status
from incidents.services import flag_unpaged, record
from muster import faults
from oncall import messages, metrics
from oncall.channels import CHANNELS, channel_for
from oncall.channels.base import DeliveryError
from oncall.models import (
    ContactKind,
    ContactMethod,
    Escalation,
    EscalationStatus,
    EscalationStep,
    Membership,
    NotificationRule,
    Page,
    PageStatus,
    ServicePolicy,
)
from oncall.people import quiet_hours_end
from oncall.schedules import step_targets

log = logging.getLogger(__name__)

RETRY_BACKOFF_SECONDS = (30, 120, 300)
RATE_LIMITED = "rate limited"  # marks a page held back, so it carries the others when it goes
CHANNEL_LABEL = {"sms": "SMS", "voice": "voice call", "email": "email", "console": "console"}


# --- starting and stopping -------------------------------------------------------------------


def start_escalation(incident_id: int) -> Escalation | None:
    """Start the service's policy for a (re-)triggered incident and fire its first step now.

    Idempotent per trigger: a replayed call finds the escalation this trigger already started.
    """
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update().select_related("service").get(pk=incident_id)
        )
        if incident.status != Status.TRIGGERED:
            return None
        existing = Escalation.objects.filter(
            incident=incident, created_at__gte=incident.triggered_at
        ).first()
        if existing is not None:
            return existing
        Escalation.objects.filter(incident=incident, status=EscalationStatus.ACTIVE).update(
            status=EscalationStatus.STOPPED, finished_at=timezone.now()
        )
        binding = ServicePolicy.objects.filter(service_id=incident.service_id).first()
        escalation = Escalation.objects.create(
            incident=incident,
            policy_id=binding.policy_id if binding else None,
            next_at=timezone.now(),
        )
    fire_escalation(escalation.pk)
    return escalation


def stop_escalations(incident_id: int, *, reason: str) -> int:
    """Stop the incident's escalations and cancel its queued pages (acknowledged, resolved)."""
    now = timezone.now()
    with transaction.atomic():
        stopped = Escalation.objects.filter(
            incident_id=incident_id, status=EscalationStatus.ACTIVE
        ).update(status=EscalationStatus.STOPPED, finished_at=now, next_at=None)
        cancelled = Page.objects.filter(
            incident_id=incident_id, status=PageStatus.QUEUED, manual=False
        ).update(status=PageStatus.CANCELLED, finished_at=now, error=reason)
    if cancelled:
        metrics.PAGES.labels("any", "cancelled").inc(cancelled)
    return stopped


def escalate_now(incident_id: int) -> None:
    """Fire the incident's next step now (the `escalate` verb); start a policy if none runs."""
    active = Escalation.objects.filter(
        incident_id=incident_id, status=EscalationStatus.ACTIVE
    ).first()
    if active is None:
        start_escalation(incident_id)
        return
    Escalation.objects.filter(pk=active.pk, status=EscalationStatus.ACTIVE).update(
        next_at=timezone.now()
    )
    fire_escalation(active.pk)


# --- firing steps ----------------------------------------------------------------------------


def run_due_escalations(now: datetime | None = None, limit: int = 500) -> int:
    """Fire every due escalation step (the tick); return how many fired.

    Each step fires and commits on its own, so its pages are enqueued at once rather than when
    the whole batch commits; SKIP LOCKED lets several ticks or workers share the work.
    """
    now = now or timezone.now()
    due = list(
        Escalation.objects.filter(
            status=EscalationStatus.ACTIVE,
            next_at__lte=now,
            incident__status=Status.TRIGGERED,
        )
        .order_by("next_at")
        .values_list("pk", flat=True)[:limit]
    )
    fired = sum(1 for pk in due if fire_escalation(pk, now=now))
    # Escalations of incidents no longer triggered stop here too, if a receiver missed them.
    Escalation.objects.filter(status=EscalationStatus.ACTIVE).exclude(
        incident__status=Status.TRIGGERED
    ).update(status=EscalationStatus.STOPPED, finished_at=now, next_at=None)
    return fired


def fire_escalation(escalation_id: int, *, now: datetime | None = None) -> bool:
    """Fire one escalation's step now if it is due and its incident still triggered."""
    now = now or timezone.now()
    with transaction.atomic():
        escalation = (
            Escalation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk=escalation_id,
                status=EscalationStatus.ACTIVE,
                next_at__lte=now,
                incident__status=Status.TRIGGERED,
            )
            .select_related("incident__service", "policy")
            .first()
        )
        if escalation is None:
            return False
        _fire_step(escalation, now)
    return True


def _fire_step(escalation: Escalation, now: datetime) -> None:
    incident = escalation.incident
    steps = (
        list(escalation.policy.steps.prefetch_related("users", "schedules", "teams"))
        if escalation.policy_id
        else []
    )
    if not steps:
        _finish(escalation, now)
        why = (
            "its service has no escalation policy"
            if escalation.policy_id is None
            else (f"escalation policy {escalation.policy.name} has no steps")
        )
        _page_last_resort(escalation, incident, now, why)
        return
    step = steps[min(escalation.step, len(steps) - 1)]
    people = step_targets(step, now)
    pages = _create_pages(escalation, incident, people, now)
    names = ", ".join(sorted({p.person.get_username() for p in pages})) or "nobody"
    record(
        incident,
        EntryKind.PAGE,
        message=f"Escalation step {escalation.step + 1}"
        + (f" (repeat {escalation.cycle})" if escalation.cycle else "")
        + f": paging {names}",
        source=Source.SYSTEM,
        data={"escalation": escalation.pk, "step": escalation.step, "cycle": escalation.cycle},
    )
    if not pages:
        who = ", ".join(sorted(p.get_username() for p in people))
        why = (
            f"step {escalation.step + 1} targets nobody on call"
            if not people
            else f"no verified contact method for {who}"
        )
        _page_last_resort(escalation, incident, now, why)
    _advance(escalation, steps, step, now)


def _advance(escalation: Escalation, steps: list[EscalationStep], step, now: datetime) -> None:
    escalation.step += 1
    if escalation.step >= len(steps):
        escalation.step = 0
        escalation.cycle += 1
        if escalation.cycle > escalation.policy.repeat:
            escalation.status = EscalationStatus.DONE
            escalation.finished_at = now
            escalation.next_at = None
            escalation.save(update_fields=["step", "cycle", "status", "finished_at", "next_at"])
            return
    escalation.next_at = now + timedelta(minutes=step.delay_minutes)
    escalation.save(update_fields=["step", "cycle", "next_at"])


def _finish(escalation: Escalation, now: datetime) -> None:
    escalation.status = EscalationStatus.DONE
    escalation.finished_at = now
    escalation.next_at = None
    escalation.save(update_fields=["status", "finished_at", "next_at"])


@dataclass
class _Planned:
    rule: NotificationRule | None
    method: ContactMethod | None
    channel: str
    address: str
    send_after: datetime


def _plan(person: User, incident: Incident, now: datetime) -> list[_Planned]:
    """Return the sends a person's notification rules ask for, for the incident's urgency."""
    rules = (
        NotificationRule.objects.filter(user=person, urgency=incident.urgency)
        .select_related("contact_method")
        .order_by("delay_minutes", "id")
    )
    wait_until = quiet_hours_end(person, now) if incident.urgency == "low" else None
    planned = []
    for rule in rules:
        method = rule.contact_method
        if not method.is_usable:
            continue
        send_after = now + timedelta(minutes=rule.delay_minutes)
        if wait_until is not None:
            send_after = max(send_after, wait_until + timedelta(minutes=rule.delay_minutes))
        planned.append(_Planned(rule, method, channel_for(method.kind), method.address, send_after))
    return planned


def _create_pages(
    escalation: Escalation | None, incident: Incident, people: list[User], now: datetime
) -> list[Page]:
    rows = []
    for person in people:
        for plan in _plan(person, incident, now):
            rows.append(
                Page(
                    incident=incident,
                    escalation=escalation,
                    step=escalation.step if escalation else 0,
                    cycle=escalation.cycle if escalation else 0,
                    person=person,
                    rule=plan.rule,
                    rule_key=plan.rule.pk if plan.rule else 0,
                    contact_method=plan.method,
                    channel=plan.channel,
                    address=plan.address,
                    send_after=plan.send_after,
                    manual=escalation is None,
                )
            )
    if not rows:
        return []
    if escalation is None:
        created = Page.objects.bulk_create(rows)
    else:
        # A replayed step finds its pages already there and creates none.
        Page.objects.bulk_create(rows, ignore_conflicts=True)
        created = list(
            Page.objects.filter(
                escalation=escalation, step=escalation.step, cycle=escalation.cycle
            ).select_related("person")
        )
    due = [p.pk for p in created if p.send_after <= now and p.status == PageStatus.QUEUED]
    transaction.on_commit(lambda: enqueue(due))
    return created


def _page_last_resort(
    escalation: Escalation | None, incident: Incident, now: datetime, why: str
) -> None:
    """Nobody reachable is never silent: page the team's admins (else Muster's admins)."""
    team = escalation.policy.team if escalation and escalation.policy_id else None
    admins: list[User] = []
    if team is not None:
        admins = [
            m.user
            for m in Membership.objects.filter(team=team, is_admin=True, user__is_active=True)
        ]
    if not admins:
        admins = list(
            User.objects.filter(is_active=True).filter(Q(role=Role.ADMIN) | Q(is_superuser=True))
        )
    pages = _create_pages(escalation, incident, admins, now) if admins else []
    names = ", ".join(sorted({p.person.get_username() for p in pages}))
    flag_unpaged(
        incident,
        reason=why
        + (
            f"; paging last-resort contacts: {names}"
            if pages
            else "; no last-resort contact is reachable either"
        ),
    )
    metrics.UNPAGED.inc()


def page_person(incident: Incident, person: User, *, by: User | None, source: str) -> list[Page]:
    """Page `person` about `incident` now, outside any escalation ("page this person")."""
    now = timezone.now()
    with transaction.atomic():
        pages = _create_pages(None, incident, [person], now)
        record(
            incident,
            EntryKind.PAGE,
            message=f"{by.get_username() if by else 'Muster'} paged {person.get_username()}"
            + ("" if pages else f" — {person.get_username()} has no verified contact method"),
            source=source,
            by=by,
            data={"person": person.pk, "pages": [p.pk for p in pages]},
        )
    return pages


# --- delivery --------------------------------------------------------------------------------


def enqueue(page_ids: list[int]) -> None:
    """Hand due pages to Celery, noting when, so the sweep can tell a lost task from a slow one."""
    if not page_ids:
        return
    from oncall.tasks import deliver_page

    Page.objects.filter(pk__in=page_ids, status=PageStatus.QUEUED).update(
        enqueued_at=timezone.now()
    )
    for page_id in page_ids:
        deliver_page.delay(page_id)


def deliver(page_id: int) -> str:
    """Send one page, at most once; return what happened (for logs and tests)."""
    now = timezone.now()
    claimed = Page.objects.filter(pk=page_id, status=PageStatus.QUEUED, send_after__lte=now).update(
        status=PageStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return "not due or taken"
    faults.point("after_claim")
    with transaction.atomic():
        page = Page.objects.select_related("person", "contact_method").get(pk=page_id)
        incident = (
            Incident.objects.select_for_update().select_related("service").get(pk=page.incident_id)
        )
        # Still our claim? One that stalled past PAGE_REQUEUE_AFTER_SECONDS (a lock wait, a
        # paused process) was taken back by the sweep and may be sent by another delivery.
        # Locked until the hand-over commits, so the sweep cannot take it back meanwhile.
        ours = Page.objects.select_for_update().filter(
            pk=page_id, status=PageStatus.SENDING, claimed_at=now, handed_at__isnull=True
        )
        if not ours.values_list("pk", flat=True):
            return "not due or taken"
        still_wanted = incident.status == Status.TRIGGERED or (
            page.manual and incident.status != Status.RESOLVED
        )
        if not still_wanted:
            Page.objects.filter(pk=page_id).update(
                status=PageStatus.CANCELLED, finished_at=now, error=f"incident {incident.status}"
            )
            return "cancelled"
        wait_until = _rate_limited_until(page, now)
        if wait_until is not None:
            Page.objects.filter(pk=page_id).update(
                status=PageStatus.QUEUED,
                send_after=wait_until,
                claimed_at=None,
                enqueued_at=None,
                error=RATE_LIMITED,
            )
            record(
                incident,
                EntryKind.PAGE,
                message=f"Page to {page.person.get_username()} by "
                f"{CHANNEL_LABEL.get(page.channel, page.channel)} delayed until "
                f"{wait_until:%H:%M:%S} UTC: rate limit",
                source=Source.SYSTEM,
                data={"page": page.pk, "status": "delayed"},
            )
            return "delayed"
        bundle = _bundle_for(page, incident, now)
        message = (
            messages.for_bundle([incident, *(p.incident for p in bundle)])
            if bundle
            else messages.for_incident(incident)
        )
        Page.objects.filter(pk=page_id).update(handed_at=timezone.now(), body=message.sms)
    # Committed: from here on this page is never sent again, whatever happens.
    faults.point("before_send")
    try:
        provider_id = CHANNELS[page.channel].send(page, message)
    except DeliveryError as exc:
        return _delivery_failed(page, exc)
    faults.point("after_send")
    sent_at = timezone.now()
    Page.objects.filter(pk=page_id, status=PageStatus.SENDING).update(
        status=PageStatus.SENT, provider_id=provider_id[:64], sent_at=sent_at
    )
    if bundle:
        Page.objects.filter(pk__in=[p.pk for p in bundle], status=PageStatus.QUEUED).update(
            status=PageStatus.SENT,
            provider_id=provider_id[:64],
            sent_at=sent_at,
            handed_at=sent_at,
            error=f"bundled into page {page_id}",
        )
    metrics.PAGES.labels(page.channel, "sent").inc()
    metrics.PAGE_LATENCY.observe(max(0.0, (sent_at - incident.triggered_at).total_seconds()))
    _record_page(
        page,
        f"Paged {page.person.get_username()} by "
        f"{CHANNEL_LABEL.get(page.channel, page.channel)}"
        + (f" (with {len(bundle)} more incidents bundled)" if bundle else ""),
        "sent",
    )
    return "sent"


def _rate_limited_until(page: Page, now: datetime) -> datetime | None:
    """Return when the person may next be reached on this channel, if they are over the limit.

    A person's first page always goes out at once; only pages beyond the limit wait.
    """
    if page.channel not in ("sms", "voice", "console"):
        return None
    window = timedelta(minutes=settings.PAGE_RATE_LIMIT_WINDOW_MINUTES)
    recent = list(
        Page.objects.filter(
            person_id=page.person_id,
            channel=page.channel,
            handed_at__gte=now - window,
        )
        .exclude(pk=page.pk)
        .exclude(error__startswith="bundled")
        .order_by("handed_at")
        .values_list("handed_at", flat=True)
    )
    if len(recent) < settings.PAGE_RATE_LIMIT_COUNT:
        return None
    return recent[-settings.PAGE_RATE_LIMIT_COUNT] + window


def _bundle_for(page: Page, incident: Incident, now: datetime) -> list[Page]:
    """Return other SMS pages waiting for the same person, to send in this one SMS."""
    if page.channel not in ("sms", "console") or not page.error.startswith(RATE_LIMITED):
        return []
    waiting = list(
        Page.objects.filter(
            person_id=page.person_id,
            channel=page.channel,
            status=PageStatus.QUEUED,
            send_after__lte=now + timedelta(minutes=settings.PAGE_RATE_LIMIT_WINDOW_MINUTES),
            incident__status=Status.TRIGGERED,
        )
        .exclude(incident_id=incident.pk)
        .exclude(pk=page.pk)
        .select_related("incident__service")
        .order_by("send_after")[:10]
    )
    return waiting


def _delivery_failed(page: Page, exc: DeliveryError) -> str:
    now = timezone.now()
    label = CHANNEL_LABEL.get(page.channel, page.channel)
    who = page.person.get_username()
    if exc.maybe_sent:
        Page.objects.filter(pk=page.pk).update(
            status=PageStatus.UNKNOWN, finished_at=now, error=str(exc)[:2000]
        )
        metrics.PAGES.labels(page.channel, "unknown").inc()
        _record_page(page, f"Page to {who} by {label}: outcome unknown ({exc})", "unknown")
        _fall_back(page)
        return "unknown"
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
        _record_page(
            page, f"Page to {who} by {label} failed ({exc}); retrying in {backoff} s", "retry"
        )
        return "retry"
    Page.objects.filter(pk=page.pk).update(
        status=PageStatus.FAILED, finished_at=now, error=str(exc)[:2000]
    )
    metrics.PAGES.labels(page.channel, "failed").inc()
    _record_page(page, f"Page to {who} by {label} failed: {exc}", "failed")
    _fall_back(page)
    return "failed"


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
            flag_unpaged(incident, reason=f"every page of step {page.step + 1} failed")
            metrics.UNPAGED.inc()


def _record_page(page: Page, message: str, status: str) -> None:
    incident = Incident.objects.get(pk=page.incident_id)
    record(
        incident,
        EntryKind.PAGE,
        message=message,
        source=Source.SYSTEM,
        data={"page": page.pk, "person": page.person_id, "channel": page.channel, "status": status},
    )


# --- what providers tell us ------------------------------------------------------------------

_SMS_FINAL = {
    "delivered": PageStatus.DELIVERED,
    "undelivered": PageStatus.FAILED,
    "failed": PageStatus.FAILED,
}
_CALL_FAILED = {"no-answer", "busy", "failed", "canceled"}


def record_provider_status(
    page_id: int, *, kind: str, status: str, error_code: str = "", answered: bool | None = None
) -> None:
    """Apply a delivery-status callback (Twilio's MessageStatus or CallStatus) to a page."""
    page = Page.objects.select_related("person").filter(pk=page_id).first()
    if page is None:
        return
    status = status.lower()
    Page.objects.filter(pk=page_id).update(provider_status=status[:32])
    if page.status not in (PageStatus.SENT, PageStatus.SENDING, PageStatus.UNKNOWN):
        return  # already final (answered, delivered, failed) or not ours to change
    label = CHANNEL_LABEL.get(page.channel, page.channel)
    who = page.person.get_username()
    now = timezone.now()
    if kind == "sms" and status in _SMS_FINAL:
        final = _SMS_FINAL[status]
        if final == PageStatus.DELIVERED:
            Page.objects.filter(pk=page_id).update(status=final, finished_at=now)
            metrics.PAGES.labels(page.channel, "delivered").inc()
            _record_page(page, f"SMS to {who} delivered", "delivered")
            return
        _provider_failed(page, f"SMS {status}" + (f" (error {error_code})" if error_code else ""))
        return
    if kind == "voice":
        if status in _CALL_FAILED:
            _provider_failed(page, f"call {status}")
        elif status == "completed" and not answered:
            # Voicemail or silence: only a keypress counts as answered.
            _provider_failed(page, "call not answered with a key")
        elif status == "completed":
            _record_page(page, f"{label.capitalize()} to {who} completed", "completed")


def _provider_failed(page: Page, reason: str) -> None:
    """A send the provider accepted failed later: retry with backoff, then fall back."""
    page.refresh_from_db()
    _delivery_failed(page, DeliveryError(reason, permanent=False))


def record_keypress(page_id: int) -> None:
    """Mark a call answered: a key was pressed, so a person heard it."""
    page = Page.objects.select_related("person").filter(pk=page_id).first()
    if page is None or page.status == PageStatus.ANSWERED:
        return
    Page.objects.filter(pk=page_id).update(status=PageStatus.ANSWERED, finished_at=timezone.now())
    metrics.PAGES.labels(page.channel, "answered").inc()
    _record_page(page, f"{page.person.get_username()} answered the call", "answered")


def send_verification_code(method: ContactMethod, code: str) -> None:
    """Send a contact-method verification code through that method's own channel (a voice
    number gets it by SMS). It is not a page: the stand-in page has id 0, which no status
    callback can match."""
    from types import SimpleNamespace

    from oncall.channels.base import Message

    text = f"Your Muster verification code is {code}. It expires in 10 minutes."
    kind = channel_for(method.kind if method.kind != ContactKind.VOICE else ContactKind.SMS)
    fake_page = SimpleNamespace(
        pk=0, id=0, address=method.address, channel=kind, person=method.user, contact_method=method
    )
    CHANNELS[kind].send(
        fake_page,
        Message(
            sms=text,
            subject="Muster verification code",
            body=text,
            speech=text,
            purpose="verification",
        ),
    )


# --- the sweep -------------------------------------------------------------------------------


def sweep_outbox(now: datetime | None = None) -> dict[str, int]:
    """Requeue lost work and settle pages stuck in sending (each tick)."""
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
            handed_at__lt=now - timedelta(seconds=settings.PAGE_SENDING_DEADLINE_SECONDS),
        ).select_related("person")
    )
    for page in stuck:
        if Page.objects.filter(pk=page.pk, status=PageStatus.SENDING).update(
            status=PageStatus.UNKNOWN, finished_at=now, error="no answer from the provider"
        ):
            metrics.PAGES.labels(page.channel, "unknown").inc()
            _record_page(
                page,
                f"Page to {page.person.get_username()} by "
                f"{CHANNEL_LABEL.get(page.channel, page.channel)}: outcome unknown "
                "(the send never finished); not sending it again",
                "unknown",
            )
            _fall_back(page)
    due = list(
        Page.objects.filter(status=PageStatus.QUEUED, send_after__lte=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - requeue_after))
        .values_list("pk", flat=True)[:1000]
    )
    enqueue(due)
    # A trigger whose escalation never started (the process died before its task ran).
    orphans = list(
        Incident.objects.filter(status=Status.TRIGGERED, triggered_at__lt=now - requeue_after)
        .exclude(escalations__created_at__gte=F("triggered_at"))
        .values_list("pk", flat=True)[:100]
    )
    for incident_id in orphans:
        start_escalation(incident_id)
    return {
        "reclaimed": reclaimed,
        "unknown": len(stuck),
        "enqueued": len(due),
        "orphans": len(orphans),
    }

"""Escalation: which level of a service's policy is paged, when, and why — and never twice.

The database holds every run of a policy (`Escalation`) and every page; Celery only speeds
things up. PagerDuty's semantics are the reference:

- An incident that opens pages level 1 at once; each level's delay later the next level is
  paged, until someone acknowledges or the policy (with its repeats) runs out.
- Every change of course starts a new run, caused by one timeline entry and going on from
  where the last run stood: `escalate` pages the level after the one paged last (after the one
  acknowledged, on an acknowledged incident), `escalate to N` pages level N; on a policy that
  has run out, `escalate` pages its last level again, or starts it over where it repeats.
  Unacknowledging pages the level that was acknowledged again and goes on from there. When an
  acknowledgement times out or a snooze ends, the assignee is paged first (else that level
  again); the next level follows after that level's delay. Reassigning pages the new assignee,
  and only them, until that delay has passed. Merging stops the merged-away incidents only.
- A run's pages are unique on (run, step, cycle, person, notification rule): a replayed tick
  or task pages nobody twice, while a new run pages again.
- Nobody reachable is never silent: the policy team's admins (else Muster's) are paged, and the
  incident is flagged `unpaged` with the reason.

Here: what starts and stops runs, and the tick. What a new run does is oncall.escalation_plan's
`plan` (pure); paging a level, the assignee or the admins is oncall.paging's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from core import json_rows
from core.compiled import Lookup
from incidents import services as verbs
from incidents.models import STARTING_KINDS, EntryKind, Incident, Status, TimelineEntry
from oncall import metrics
from oncall.escalation_plan import (
    ASSIGNEE,
    BEGIN,
    ESCALATE,
    ESCALATE_TO,
    RESUME,
    check_level,
    plan,
    where_of,
)
from oncall.models import Escalation, EscalationPolicy, EscalationStatus, Page, PageStatus
from oncall.paging import page_assignee, page_last_resort, page_level, usernames
from oncall.policies import policy_of, policy_steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a run did when it started: the level it paged (None when it paged only the
    assignee or the admins), who was paged, and what the person who asked should know."""

    level: int | None
    paged: tuple[str, ...]
    note: str = ""

    def describe(self) -> str:
        """Say it in sentences: "Level 2: paging alice." and the note, if any."""
        names = ", ".join(self.paged) or "nobody"
        text = f"Level {self.level}: paging {names}." if self.level else f"Paging {names}."
        return f"{text} {self.note}" if self.note else text


# --- what starts a run -----------------------------------------------------------------------


def follow(entry_id: int) -> Outcome | None:
    """Start the run a timeline entry asks for (see `STARTING_KINDS`), and page whom it pages now.

    Idempotent: a replayed call finds the run this entry started. An entry older than the
    cause of a run already started, or whose incident is no longer triggered, starts nothing.
    """
    entry = _ENTRY.get(entry_id)
    if entry.kind not in STARTING_KINDS:
        return None
    now = timezone.now()
    with transaction.atomic():
        incident = _lock(entry.incident_id)
        if incident.status != Status.TRIGGERED:
            return None
        previous = _latest_run(incident)
        later = Escalation.objects.filter(incident=incident, cause_id__gte=entry.pk)
        if previous is not None and later.exists():
            return None
        outcome = _start(incident, entry, now, previous)
    return outcome


def recover(incident_id: int) -> Outcome | None:
    """Start the run that the incident's latest starting entry should have started (its task
    was lost: the process died first). Crash recovery only; no normal flow depends on it."""
    latest = (
        TimelineEntry.objects.filter(incident_id=incident_id, kind__in=STARTING_KINDS)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )
    return follow(latest) if latest is not None else None


def escalate_incident(
    incident: Incident, *, level: int | None = None, by: User | None, source: str
) -> tuple[Incident, Outcome]:
    """Escalate now (the `escalate` verb, from every surface): page the next level, or level
    `level` (1-based); an acknowledged incident triggers again. Return the incident and whom
    it paged, or why nobody.

    Raises IncidentError if `level` is not one of the policy's levels.
    """
    with transaction.atomic():
        incident = _lock(incident.pk)
        if level is not None:
            check_level(incident, level)
        incident = verbs.escalate_incident(incident, by=by, source=source, level=level)
        entry = incident.timeline.filter(kind=EntryKind.ESCALATED).latest("id")
        outcome = _start(incident, entry, timezone.now(), _latest_run(incident))
    return incident, outcome


def _start(
    incident: Incident, entry: TimelineEntry, now: datetime, previous: Escalation | None
) -> Outcome:
    """Supersede the incident's running escalation with a new run caused by `entry`.

    `previous` is the incident's latest run, read under its lock. Without one there is nothing
    to supersede, and no automatic page to cancel (each belongs to a run): a new incident's
    escalation skips those statements.
    """
    if previous is not None:
        _supersede(incident, entry, now)
    policy = policy_of(incident.service_id)
    run = Escalation(incident=incident, policy=policy, cause=entry, next_at=None)
    json_rows.insert([run])  # as create(), without compiling an INSERT each time
    assignee = _assignee_for(entry, incident)
    steps = policy_steps(policy) if policy is not None else []
    if policy is None or not steps:
        return _start_without_steps(run, incident, policy, assignee, now)
    what, level = _asked(entry, assignee)
    move = plan(what, where_of(previous), steps=len(steps), repeat=policy.repeat, level=level)
    if move.fire is not None:
        step, cycle = move.fire
        paged = page_level(run, incident, steps, step, cycle, now, note=move.note, new_run=True)
        if move.also_assignee and assignee is not None and assignee not in paged:
            paged += page_assignee(run, incident, assignee, step, cycle, now, level=step + 1)
        return Outcome(step + 1, usernames(paged), move.note)
    # A move that fires nothing stands the assignee in: asked only when there is one.
    assert move.stand is not None and assignee is not None
    step, cycle = move.stand
    paged = page_assignee(run, incident, assignee, step, cycle, now, level=step + 1)
    where = where_of(previous)
    # The assignee stands in for the level paged last; the run goes on from there.
    run.level, run.step, run.cycle = step + 1, where.next_step, where.next_cycle
    if move.then is None:
        _finish(run, now)
    else:
        run.step, run.cycle = move.then
        run.next_at = now + timedelta(minutes=steps[step].delay_minutes)
        run.save(update_fields=["level", "step", "cycle", "next_at"])
    return Outcome(None, usernames(paged))


def _supersede(incident: Incident, entry: TimelineEntry, now: datetime) -> None:
    """Stop the incident's runs, and cancel what they still had queued."""
    superseded = Escalation.objects.filter(incident=incident).exclude(
        status=EscalationStatus.STOPPED
    )
    superseded.update(status=EscalationStatus.STOPPED, finished_at=now, next_at=None)
    # What the runs before it still had queued (a later rule's call, a held page) is theirs:
    # a change of course replaces it. (Delivery also refuses a stopped run's page in flight.)
    cancelled = Page.objects.filter(
        incident=incident, manual=False, status=PageStatus.QUEUED
    ).update(
        status=PageStatus.CANCELLED, finished_at=now, error=f"superseded: {entry.message}"[:2000]
    )
    if cancelled:
        metrics.PAGES.labels("any", "cancelled").inc(cancelled)


def _start_without_steps(
    run: Escalation,
    incident: Incident,
    policy: EscalationPolicy | None,
    assignee: User | None,
    now: datetime,
) -> Outcome:
    paged: list[User] = []
    if assignee is not None:
        paged = page_assignee(run, incident, assignee, 0, 0, now, level=None)
    if not paged:
        why = (
            f"{incident.service.name} has no escalation policy"
            if policy is None
            else f"escalation policy {policy.name} has no steps"
        )
        admins = page_last_resort(run, incident, now, why, step=0, cycle=0)
        _finish(run, now)
        note = f"Nobody could be paged by the policy: {why}" + (
            "; the admins are paged instead." if admins else "; no admin is reachable either."
        )
        return Outcome(None, usernames(admins), note)
    _finish(run, now)
    return Outcome(None, usernames(paged))


def _asked(entry: TimelineEntry, assignee: User | None) -> tuple[str, int | None]:
    """Return what `entry` asks of the new run, and the level for ESCALATE_TO."""
    if entry.kind == EntryKind.OPENED:
        return BEGIN, None
    if entry.kind == EntryKind.ESCALATED:
        level = entry.data.get("level")
        return (ESCALATE_TO, int(level)) if level else (ESCALATE, None)
    if entry.kind == EntryKind.UNACKNOWLEDGED:
        return RESUME, None
    # TRIGGERED (an acknowledgement timed out, a snooze ended) and REASSIGNED.
    return (ASSIGNEE, None) if assignee is not None else (RESUME, None)


def _assignee_for(entry: TimelineEntry, incident: Incident) -> User | None:
    """Return whom `entry` pages first: the new assignee of a reassignment, the incident's
    assignee when an acknowledgement times out or a snooze ends; else nobody."""
    if entry.kind == EntryKind.REASSIGNED:
        person_id = entry.data.get("to")
    elif entry.kind == EntryKind.TRIGGERED:
        person_id = incident.assignee_id
    else:
        return None
    return User.objects.filter(pk=person_id, is_active=True).first() if person_id else None


# --- stopping --------------------------------------------------------------------------------


def stop_escalations(incident_id: int, *, reason: str) -> int:
    """Stop the incident's runs and cancel its queued automatic pages, unless it is triggered
    again meanwhile (acknowledged, snoozed, resolved or merged away: a later change re-trigger
    it before this ran, and its run is not this one's to stop)."""
    now = timezone.now()
    with transaction.atomic():
        incident = _lock(incident_id)
        if incident.status == Status.TRIGGERED:
            return 0
        stopped = Escalation.objects.filter(
            incident_id=incident_id, status=EscalationStatus.ACTIVE
        ).update(status=EscalationStatus.STOPPED, finished_at=now, next_at=None)
        cancelled = Page.objects.filter(
            incident_id=incident_id, status=PageStatus.QUEUED, manual=False
        ).update(status=PageStatus.CANCELLED, finished_at=now, error=reason)
    if cancelled:
        metrics.PAGES.labels("any", "cancelled").inc(cancelled)
    return stopped


# --- the tick --------------------------------------------------------------------------------


TICK_RUNS = 500  # due runs fired by one tick at most


def run_due_escalations(now: datetime | None = None) -> int:
    """Fire every due next step (the tick); return how many fired.

    Each step fires and commits on its own, so its pages are enqueued at once rather than when
    the whole batch commits; SKIP LOCKED lets several ticks or workers share the work.
    """
    now = now or timezone.now()
    due = [pk for (pk,) in _DUE_RUNS.rows(now)]  # TICK_RUNS at most
    fired = sum(1 for pk in due if fire_escalation(pk, now=now))
    # Runs of incidents no longer triggered stop here too, if a receiver missed them.
    if _ANY_RUN_TO_STOP.exists():
        _runs_to_stop().update(status=EscalationStatus.STOPPED, finished_at=now, next_at=None)
    return fired


def _runs_to_stop() -> QuerySet[Escalation]:
    return Escalation.objects.filter(status=EscalationStatus.ACTIVE).exclude(
        incident__status=Status.TRIGGERED
    )


# The tick's lookups, compiled once (core.compiled): twice a second, and most find nothing.
_DUE_RUNS = Lookup(
    lambda now: (
        Escalation.objects.filter(
            status=EscalationStatus.ACTIVE, next_at__lte=now, incident__status=Status.TRIGGERED
        )
        .order_by("next_at")
        .values_list("pk")[:TICK_RUNS]
    )
)
_ANY_RUN_TO_STOP = Lookup(lambda: _runs_to_stop().values_list("pk")[:1], takes=())


def fire_escalation(escalation_id: int, *, now: datetime | None = None) -> bool:
    """Fire one run's next step now if it is due and its incident still triggered.

    Locks the incident, then the run, in the order every verb and `follow` take them (the
    other order deadlocked against an acknowledgement's stop); either one busy means another
    transaction is acting on it: this tick leaves it to the next.
    """
    now = now or timezone.now()
    with transaction.atomic():
        incident_id = (
            Escalation.objects.filter(pk=escalation_id)
            .values_list("incident_id", flat=True)
            .first()
        )
        if incident_id is None:
            return False
        incident = (
            Incident.objects.locked(skip_locked=True)
            .select_related("service")
            .filter(pk=incident_id, status=Status.TRIGGERED)
            .first()
        )
        if incident is None:
            return False
        run = (
            Escalation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=escalation_id, status=EscalationStatus.ACTIVE, next_at__lte=now)
            .select_related("policy")
            .first()
        )
        if run is None:
            return False
        steps = policy_steps(run.policy) if run.policy is not None else []
        if run.policy is None or not steps:
            _finish(run, now)
            why = "its escalation policy was removed or emptied"
            page_last_resort(run, incident, now, why, step=run.step, cycle=run.cycle)
            return True
        step, cycle = run.step, run.cycle
        if step >= len(steps):  # the policy lost steps since: its next pass, as plan() says
            step, cycle = 0, cycle + 1
            if cycle > run.policy.repeat:
                _finish(run, now)
                return True
        page_level(run, incident, steps, step, cycle, now)
    return True


# --- small helpers ---------------------------------------------------------------------------


# Read by every escalation task, compiled once (core.compiled): the ORM's compilation was most
# of their cost (bench/profile_incident.py).
_ENTRY = Lookup(lambda pk: TimelineEntry.objects.filter(pk=pk), takes=(int,))
_LATEST_RUN = Lookup(
    lambda incident: Escalation.objects.filter(incident_id=incident).order_by("-id")[:1],
    takes=(int,),
)
_LOCKED = Lookup(
    lambda pk: Incident.objects.locked().select_related("service").filter(pk=pk), takes=(int,)
)


def _latest_run(incident: Incident) -> Escalation | None:
    found = _LATEST_RUN.instances(incident.pk)
    return found[0] if found else None


def _lock(incident_id: int) -> Incident:
    return _LOCKED.get(incident_id)


def _finish(run: Escalation, now: datetime) -> None:
    run.status = EscalationStatus.DONE
    run.finished_at = now
    run.next_at = None
    run.save(update_fields=["level", "step", "cycle", "status", "finished_at", "next_at"])

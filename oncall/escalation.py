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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from incidents import services as verbs
from incidents.models import EntryKind, Incident, Source, Status, TimelineEntry
from incidents.services import IncidentError, flag_unpaged
from incidents.timeline import record
from oncall import metrics
from oncall.channels.registry import channel_for
from oncall.delivery import enqueue
from oncall.models import (
    Escalation,
    EscalationPolicy,
    EscalationStatus,
    EscalationStep,
    Membership,
    NotificationRule,
    Page,
    PageStatus,
    ServicePolicy,
)
from oncall.people import quiet_hours_end
from oncall.schedules import describe_targets, step_targets

log = logging.getLogger(__name__)

# Timeline entries that start a run of the policy (a new trigger, or a change of course).
STARTS = frozenset(
    {
        EntryKind.OPENED,
        EntryKind.TRIGGERED,
        EntryKind.UNACKNOWLEDGED,
        EntryKind.REASSIGNED,
        EntryKind.ESCALATED,
    }
)


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


# --- where a run stands, and where the next one goes (pure) ----------------------------------


@dataclass(frozen=True)
class Where:
    """Where a run stands: the level it paged last (1-based; 0: none yet) in `level_cycle`,
    and the step (0-based) and cycle it fires next."""

    level: int
    level_cycle: int
    next_step: int
    next_cycle: int


START = Where(level=0, level_cycle=0, next_step=0, next_cycle=0)

# What a timeline entry asks of the next run.
BEGIN = "begin"  # page level 1 now
ESCALATE = "escalate"  # page the level after the one paged last now
ESCALATE_TO = "escalate_to"  # page a chosen level now
RESUME = "resume"  # page the level paged last again now, and go on from there
ASSIGNEE = "assignee"  # page the assignee now; the next level after the delay


@dataclass(frozen=True)
class Move:
    """What a new run does at once: fire (step, cycle) now, or page the assignee standing in
    for `stand` (level, cycle) and fire `then` after that level's delay (None: run out)."""

    fire: tuple[int, int] | None = None
    stand: tuple[int, int] | None = None
    then: tuple[int, int] | None = None
    also_assignee: bool = False  # page the assignee besides the level fired now
    note: str = ""


def after(step: int, cycle: int, steps: int) -> tuple[int, int]:
    """Return the (step, cycle) that follows `step` of `cycle` in a policy of `steps` steps."""
    step += 1
    return (0, cycle + 1) if step >= steps else (step, cycle)


def plan(what: str, where: Where, *, steps: int, repeat: int, level: int | None = None) -> Move:
    """Return what a new run does, given what its cause asks for and where the last run stood
    (`START` if none ran). `steps` ≥ 1; `level` (1-based) is escalate_to's."""
    fired_before = where.level > 0
    current = (min(where.level, steps) - 1, where.level_cycle)
    following = (where.next_step, where.next_cycle)
    if following[0] >= steps:  # the policy lost steps since: its next pass
        following = (0, following[1] + 1)
    if what == ESCALATE_TO:
        assert level is not None and 1 <= level <= steps
        return Move(fire=(level - 1, where.level_cycle))
    if what == BEGIN or not fired_before:
        return Move(fire=(0, 0), also_assignee=what == ASSIGNEE)
    if what == RESUME:
        return Move(fire=current)
    if what == ASSIGNEE:
        return Move(stand=current, then=following if following[1] <= repeat else None)
    # ESCALATE
    if following[1] <= repeat:
        return Move(fire=following)
    if repeat:  # a whole new pass of the policy, repeats and all
        return Move(fire=(0, 0), note="The policy had run out; it starts again at level 1.")
    return Move(
        fire=(steps - 1, where.level_cycle),
        note=f"Level {steps} is the policy's last; it is paged again.",
    )


def where_of(run: Escalation | None) -> Where:
    """Return where `run` stands (`START` for no run)."""
    if run is None:
        return START
    return Where(
        level=run.level,
        level_cycle=run.level_cycle,
        next_step=run.step,
        next_cycle=run.cycle,
    )


# --- what starts a run -----------------------------------------------------------------------


def follow(entry_id: int) -> Outcome | None:
    """Start the run a timeline entry asks for (see `STARTS`), and page whom it pages now.

    Idempotent: a replayed call finds the run this entry started. An entry older than the
    cause of a run already started, or whose incident is no longer triggered, starts nothing.
    """
    entry = TimelineEntry.objects.select_related("incident").get(pk=entry_id)
    if entry.kind not in STARTS:
        return None
    now = timezone.now()
    with transaction.atomic():
        incident = _lock(entry.incident_id)
        runs = Escalation.objects.filter(incident=incident)
        if incident.status != Status.TRIGGERED or runs.filter(cause_id__gte=entry.pk).exists():
            return None
        outcome = _start(incident, entry, now)
    return outcome


def recover(incident_id: int) -> Outcome | None:
    """Start the run that the incident's latest starting entry should have started (its task
    was lost: the process died first). Crash recovery only; no normal flow depends on it."""
    latest = (
        TimelineEntry.objects.filter(incident_id=incident_id, kind__in=STARTS)
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
            _check_level(incident, level)
        incident = verbs.escalate_incident(incident, by=by, source=source, level=level)
        entry = incident.timeline.filter(kind=EntryKind.ESCALATED).latest("id")
        outcome = _start(incident, entry, timezone.now())
    return incident, outcome


@dataclass(frozen=True)
class Level:
    number: int  # 1-based
    targets: str  # whom it pages, in words


def policy_levels(service_id: int) -> list[Level]:
    """Return the levels of the service's escalation policy (none without a policy)."""
    policy = _policy_of(service_id)
    if policy is None:
        return []
    return [
        Level(number=i + 1, targets=describe_targets(step)) for i, step in enumerate(_steps(policy))
    ]


def _check_level(incident: Incident, level: int) -> None:
    policy = _policy_of(incident.service_id)
    count = len(_steps(policy)) if policy is not None else 0
    if count == 0:
        why = "has no escalation policy" if policy is None else f"'s policy {policy.name} is empty"
        raise IncidentError(f"{incident.service.name}{why}, so it has no levels to escalate to.")
    if not 1 <= level <= count:
        raise IncidentError(
            f"Escalation policy {policy.name} has {count} level{'s' if count > 1 else ''}; "
            f"choose 1 to {count}, not {level}."
        )


def _start(incident: Incident, entry: TimelineEntry, now: datetime) -> Outcome:
    """Supersede the incident's running escalation with a new run caused by `entry`."""
    previous = Escalation.objects.filter(incident=incident).order_by("-id").first()
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
    policy = _policy_of(incident.service_id)
    run = Escalation.objects.create(incident=incident, policy=policy, cause=entry, next_at=None)
    assignee = _assignee_for(entry, incident)
    steps = _steps(policy) if policy is not None else []
    if not steps:
        return _start_without_steps(run, incident, policy, assignee, now)
    what, level = _asked(entry, assignee)
    move = plan(what, where_of(previous), steps=len(steps), repeat=policy.repeat, level=level)
    if move.fire is not None:
        step, cycle = move.fire
        paged = _fire(run, incident, steps, step, cycle, now, note=move.note)
        if move.also_assignee and assignee is not None and assignee not in paged:
            paged += _page_assignee(run, incident, assignee, step, cycle, now, level=step + 1)
        return Outcome(step + 1, _names(paged), move.note)
    step, cycle = move.stand
    paged = _page_assignee(run, incident, assignee, step, cycle, now, level=step + 1)
    where = where_of(previous)
    # The assignee stands in for the level paged last; the run goes on from there.
    run.level, run.step, run.cycle = step + 1, where.next_step, where.next_cycle
    if move.then is None:
        _finish(run, now)
    else:
        run.step, run.cycle = move.then
        run.next_at = now + timedelta(minutes=steps[step].delay_minutes)
        run.save(update_fields=["level", "step", "cycle", "next_at"])
    return Outcome(None, _names(paged))


def _start_without_steps(
    run: Escalation,
    incident: Incident,
    policy: EscalationPolicy | None,
    assignee: User | None,
    now: datetime,
) -> Outcome:
    paged: list[User] = []
    if assignee is not None:
        paged = _page_assignee(run, incident, assignee, 0, 0, now, level=None)
    if not paged:
        why = (
            f"{incident.service.name} has no escalation policy"
            if policy is None
            else f"escalation policy {policy.name} has no steps"
        )
        admins = _page_last_resort(run, incident, now, why, step=0, cycle=0)
        _finish(run, now)
        note = f"Nobody could be paged by the policy: {why}" + (
            "; the admins are paged instead." if admins else "; no admin is reachable either."
        )
        return Outcome(None, _names(admins), note)
    _finish(run, now)
    return Outcome(None, _names(paged))


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


def run_due_escalations(now: datetime | None = None, limit: int = 500) -> int:
    """Fire every due next step (the tick); return how many fired.

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
    # Runs of incidents no longer triggered stop here too, if a receiver missed them.
    Escalation.objects.filter(status=EscalationStatus.ACTIVE).exclude(
        incident__status=Status.TRIGGERED
    ).update(status=EscalationStatus.STOPPED, finished_at=now, next_at=None)
    return fired


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
        incident = (
            Incident.objects.select_for_update(skip_locked=True)
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
        steps = _steps(run.policy) if run.policy_id else []
        if not steps:
            _finish(run, now)
            why = "its escalation policy was removed or emptied"
            _page_last_resort(run, incident, now, why, step=run.step, cycle=run.cycle)
            return True
        step, cycle = run.step, run.cycle
        if step >= len(steps):  # the policy lost steps since: its next pass, as plan() says
            step, cycle = 0, cycle + 1
            if cycle > run.policy.repeat:
                _finish(run, now)
                return True
        _fire(run, incident, steps, step, cycle, now)
    return True


# --- paging a level, the assignee, the admins ------------------------------------------------


def _fire(
    run: Escalation,
    incident: Incident,
    steps: list[EscalationStep],
    step: int,
    cycle: int,
    now: datetime,
    *,
    note: str = "",
) -> list[User]:
    """Page level `step + 1` (of `cycle`) now and set the run to fire the next one after this
    level's delay, or to be done when the policy has run out; return whom it paged."""
    target = steps[step]
    people = step_targets(target, now)
    pages = _create_pages(run, incident, people, now, step=step, cycle=cycle)
    paged = _people(pages)
    record(
        incident,
        EntryKind.PAGE,
        message=f"Escalation level {step + 1}"
        + (f" (repeat {cycle})" if cycle else "")
        + f": paging {', '.join(_names(paged)) or 'nobody'}"
        + (f". {note}" if note else ""),
        source=Source.SYSTEM,
        data={"escalation": run.pk, "step": step, "cycle": cycle, "level": step + 1},
    )
    if not pages:
        who = ", ".join(sorted(p.get_username() for p in people))
        why = (
            f"level {step + 1} targets nobody on call"
            if not people
            else f"no verified contact method for {who}"
        )
        paged += _page_last_resort(run, incident, now, why, step=step, cycle=cycle)
    run.level = step + 1
    run.step, run.cycle = after(step, cycle, len(steps))
    if run.cycle > (run.policy.repeat if run.policy_id else 0):
        run.status = EscalationStatus.DONE
        run.finished_at = now
        run.next_at = None
    else:
        run.next_at = now + timedelta(minutes=target.delay_minutes)
    run.save(update_fields=["level", "step", "cycle", "status", "finished_at", "next_at"])
    return paged


def _page_assignee(
    run: Escalation,
    incident: Incident,
    person: User,
    step: int,
    cycle: int,
    now: datetime,
    *,
    level: int | None,
) -> list[User]:
    """Page the assignee as part of `run`, standing in for level `level`; return [them] if a
    page went out, else page the admins (nobody reachable is never silent)."""
    pages = _create_pages(run, incident, [person], now, step=step, cycle=cycle)
    name = person.get_username()
    record(
        incident,
        EntryKind.PAGE,
        message=f"Paging the assignee, {name}"
        + (f" (level {level}; the next level follows if nobody acknowledges)" if level else "")
        + ("" if pages else f" — {name} has no verified contact method"),
        source=Source.SYSTEM,
        data={"escalation": run.pk, "step": step, "cycle": cycle, "assignee": person.pk},
    )
    if pages:
        return [person]
    why = f"the assignee {name} has no verified contact method"
    return _page_last_resort(run, incident, now, why, step=step, cycle=cycle)


def _page_last_resort(
    run: Escalation, incident: Incident, now: datetime, why: str, *, step: int, cycle: int
) -> list[User]:
    """Nobody reachable is never silent: page the team's admins (else Muster's admins)."""
    team = run.policy.team if run.policy_id else None
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
    pages = _create_pages(run, incident, admins, now, step=step, cycle=cycle) if admins else []
    paged = _people(pages)
    names = ", ".join(_names(paged))
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
    return paged


def page_person(incident: Incident, person: User, *, by: User | None, source: str) -> list[Page]:
    """Page `person` about `incident` now, outside any escalation ("page this person")."""
    now = timezone.now()
    with transaction.atomic():
        pages = _create_pages(None, incident, [person], now, step=0, cycle=0)
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


@dataclass
class _Send:
    rule: NotificationRule
    channel: str
    send_after: datetime


def _sends(person: User, incident: Incident, now: datetime) -> list[_Send]:
    """Return the sends a person's notification rules ask for, for the incident's urgency."""
    rules = (
        NotificationRule.objects.filter(user=person, urgency=incident.urgency)
        .select_related("contact_method")
        .order_by("delay_minutes", "id")
    )
    wait_until = quiet_hours_end(person, now) if incident.urgency == "low" else None
    sends = []
    for rule in rules:
        if not rule.contact_method.is_usable:
            continue
        send_after = now + timedelta(minutes=rule.delay_minutes)
        if wait_until is not None:
            send_after = max(send_after, wait_until + timedelta(minutes=rule.delay_minutes))
        sends.append(_Send(rule, channel_for(rule.contact_method.kind), send_after))
    return sends


def _create_pages(
    run: Escalation | None,
    incident: Incident,
    people: list[User],
    now: datetime,
    *,
    step: int,
    cycle: int,
) -> list[Page]:
    rows = [
        Page(
            incident=incident,
            escalation=run,
            step=step,
            cycle=cycle,
            person=person,
            rule=send.rule,
            rule_key=send.rule.pk,
            contact_method=send.rule.contact_method,
            channel=send.channel,
            address=send.rule.contact_method.address,
            send_after=send.send_after,
            manual=run is None,
        )
        for person in people
        for send in _sends(person, incident, now)
    ]
    if not rows:
        return []
    if run is None:
        created = Page.objects.bulk_create(rows)
    else:
        # A replayed step finds its pages already there and creates none.
        Page.objects.bulk_create(rows, ignore_conflicts=True)
        created = list(
            Page.objects.filter(
                escalation=run, step=step, cycle=cycle, person__in=people
            ).select_related("person")
        )
    due = [p.pk for p in created if p.send_after <= now and p.status == PageStatus.QUEUED]
    transaction.on_commit(lambda: enqueue(due))
    return created


# --- small helpers ---------------------------------------------------------------------------


def _lock(incident_id: int) -> Incident:
    return Incident.objects.select_for_update().select_related("service").get(pk=incident_id)


def _policy_of(service_id: int) -> EscalationPolicy | None:
    binding = ServicePolicy.objects.filter(service_id=service_id).select_related("policy").first()
    return binding.policy if binding is not None else None


def _steps(policy: EscalationPolicy) -> list[EscalationStep]:
    return list(policy.steps.prefetch_related("users", "schedules", "teams"))


def _finish(run: Escalation, now: datetime) -> None:
    run.status = EscalationStatus.DONE
    run.finished_at = now
    run.next_at = None
    run.save(update_fields=["level", "step", "cycle", "status", "finished_at", "next_at"])


def _people(pages: list[Page]) -> list[User]:
    return list({p.person_id: p.person for p in pages}.values())


def _names(people: list[User]) -> tuple[str, ...]:
    return tuple(sorted(p.get_username() for p in people))

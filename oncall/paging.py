"""Paging people for a run: a level of the policy, the assignee, the last resort (the admins),
or one person asked for by hand. Each creates the pages the person's notification rules ask
for (unique per run, step, cycle, person and rule: a replayed step pages nobody twice), records
it on the timeline and, once committed, hands what is due to delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from core import json_rows
from core.compiled import Lookup
from incidents.models import EntryKind, Incident, Source
from incidents.services import flag_unpaged
from incidents.timeline import record
from oncall import metrics
from oncall.channels.registry import channel_for
from oncall.delivery import enqueue
from oncall.escalation_plan import after
from oncall.models import (
    Escalation,
    EscalationStatus,
    EscalationStep,
    Membership,
    NotificationRule,
    Page,
    PageStatus,
)
from oncall.people import quiet_hours_end
from oncall.schedules import note_first_on_call, step_targets


def page_level(
    run: Escalation,
    incident: Incident,
    steps: list[EscalationStep],
    step: int,
    cycle: int,
    now: datetime,
    *,
    note: str = "",
    new_run: bool = False,
) -> list[User]:
    """Page level `step + 1` (of `cycle`) now and set the run to fire the next one after this
    level's delay, or to be done when the policy has run out; return whom it paged.

    `new_run`: the run was created in this transaction, with `steps` its service's policy's as
    read just now. It has no pages yet, and level 1's targets are whom the service pages first
    (noted for the war room's opening post).
    """
    target = steps[step]
    people = step_targets(target, now)
    pages = _create_pages(run, incident, people, now, step=step, cycle=cycle, first=new_run)
    if new_run and step == 0:
        # After commit, and after the pages are enqueued: a cache that hangs must neither hold
        # the incident's lock nor delay a page.
        transaction.on_commit(lambda: note_first_on_call(incident.service_id, people))
    paged = _people(pages)
    record(
        incident,
        EntryKind.PAGE,
        message=f"Escalation level {step + 1}"
        + (f" (repeat {cycle})" if cycle else "")
        + f": paging {', '.join(usernames(paged)) or 'nobody'}"
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
        paged += page_last_resort(run, incident, now, why, step=step, cycle=cycle)
    run.level = step + 1
    run.step, run.cycle = after(step, cycle, len(steps))
    if run.cycle > (run.policy.repeat if run.policy is not None else 0):
        run.status = EscalationStatus.DONE
        run.finished_at = now
        run.next_at = None
    else:
        run.next_at = now + timedelta(minutes=target.delay_minutes)
    # As save(update_fields=…), without compiling an UPDATE each time (every step fired).
    json_rows.update([run], ["level", "step", "cycle", "status", "finished_at", "next_at"])
    return paged


def page_assignee(
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
    return page_last_resort(run, incident, now, why, step=step, cycle=cycle)


def page_last_resort(
    run: Escalation, incident: Incident, now: datetime, why: str, *, step: int, cycle: int
) -> list[User]:
    """Nobody reachable is never silent: page the team's admins (else Muster's admins)."""
    team = run.policy.team if run.policy is not None else None
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
    names = ", ".join(usernames(paged))
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
    rules = _RULES.instances(person.pk, incident.urgency)
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


# Every person paged: compiled once (core.compiled).
_RULES = Lookup(
    lambda person, urgency: (
        NotificationRule.objects.filter(user_id=person, urgency=urgency)
        .select_related("contact_method")
        .order_by("delay_minutes", "id")
    ),
    takes=(int, str),
)


def _create_pages(
    run: Escalation | None,
    incident: Incident,
    people: list[User],
    now: datetime,
    *,
    step: int,
    cycle: int,
    first: bool = False,
) -> list[Page]:
    """Create the pages the people's notification rules ask for; enqueue those due now after
    commit. `first`: the run's first pages, in the transaction that created it (none can be
    there yet)."""
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
    if run is None or first:
        # None of these can be there already: the rows come back with their ids.
        json_rows.insert(rows)
        created = rows
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


def _people(pages: list[Page]) -> list[User]:
    return list({p.person_id: p.person for p in pages}.values())


def usernames(people: list[User]) -> tuple[str, ...]:
    """Return the people's usernames, sorted (how a run says whom it paged)."""
    return tuple(sorted(p.get_username() for p in people))

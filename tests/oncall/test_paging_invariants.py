"""The paging state machine, driven by random sequences and checked against a model.

Hypothesis drives alerts, every verb (ack, unack, escalate, escalate to a level, reassign,
merge, snooze, resolve, severity) and clock jumps, then runs the tick as the beat does (due
levels, the outbox sweep, acknowledgement timeouts and snoozes ending, then the workers'
deliveries). Everything an entry announces runs for real: receivers, and their tasks at once.

A small model, written independently of the engine, says who each step must page; after
every step the test checks that exactly those people were paged, and four invariants:

1. every triggered incident has an active run, or a finished run that paged someone, or the
   `unpaged` flag with a reason;
2. no automatic page is handed over for an incident that is acknowledged, snoozed, resolved or
   merged away (checked by replaying the timeline);
3. nobody gets two pages for the same (run, step, cycle, notification rule);
4. `escalate` pages someone, or says why it cannot.

Each bug this suite was written for fails it: `escalate` on an acknowledged incident paging
level 1 again, `escalate` on a policy that ran out paging nobody, a merge silencing its target,
and the sweep restarting a reassigned incident's policy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Role, User
from alerts import pipeline
from alerts.models import Integration, Kind
from alerts.sources.base import FIRING, RESOLVED, NormalizedAlert
from incidents import services
from incidents.models import EntryKind, Incident, Service, Source, Status, TimelineEntry
from incidents.services import IncidentError
from muster.celery import app as celery_app
from oncall import delivery, escalation
from oncall.models import (
    ContactKind,
    ContactMethod,
    Escalation,
    EscalationStatus,
    NotificationRule,
    Page,
    PageStatus,
)
from oncall.sweep import sweep_outbox
from tests.oncall.builders import make_policy

# A fixed, reproducible run in CI: the same examples every time.
EXAMPLES = 40
STEPS = 60

PEOPLE = ("p1", "p2", "p3", "p4")  # p4 has no contact method: unreachable
ROOT = "root"  # the admin: last resort
# Notification rules, in minutes after a page starts: p2 gets a second SMS two minutes on
# (a reminder a change of course must cancel); everyone else one SMS at once.
RULES = {"p2": (0, 2)}
# How long after its due time a page may wait before it must have been handed over: a
# high-urgency page within its minute (bundles), a low-urgency one within the window.
HANDED_WITHIN = {"high": timedelta(seconds=61), "low": timedelta(minutes=15, seconds=61)}
# The sweep recovers a lost task's work after MUSTER_PAGE_REQUEUE_AFTER_SECONDS.
RECOVERED_AFTER = timedelta(seconds=5)
# Entries after which an incident is triggered (escalate and reassign re-trigger an ack).
TRIGGERING = frozenset(
    {
        EntryKind.OPENED,
        EntryKind.TRIGGERED,
        EntryKind.UNACKNOWLEDGED,
        EntryKind.ESCALATED,
        EntryKind.REASSIGNED,
    }
)


@dataclass(frozen=True)
class PolicyModel:
    levels: tuple[tuple[str, ...], ...]  # the people each level targets
    delays: tuple[int, ...]  # minutes
    repeat: int

    @property
    def total(self) -> int:
        return len(self.levels) * (self.repeat + 1)


POLICIES = {
    # Three levels, no repeat, acknowledgements time out after 20 minutes.
    "a": PolicyModel((("p1",), ("p2",), ("p3",)), (5, 5, 5), 0),
    # Two levels, the second unreachable (so its admin is paged instead); runs twice.
    "b": PolicyModel((("p1",), ("p4",)), (10, 10), 1),
    # No policy at all: the admin is paged.
    "c": None,
}
ACK_TIMEOUT = {"a": 20, "b": None, "c": None}


@dataclass
class IncidentModel:
    pk: int
    service: str
    group: str  # the group key it was opened for
    status: str = Status.TRIGGERED
    position: int = 0  # the absolute step paged last: cycle × levels + level − 1
    due: datetime | None = None  # when the next level fires
    assignee: str | None = None
    ack_expires: datetime | None = None
    snoozed_until: datetime | None = None
    firing: set[str] = field(default_factory=set)  # groups whose alert is firing here
    # A change of course whose task was lost, for the sweep to recover: what it asked, when.
    lost: tuple[str, str | None] | None = None
    lost_at: datetime | None = None


def reachable(person: str) -> bool:
    return person != "p4"


class PagingMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.incidents: dict[int, IncidentModel] = {}
        self.expected: Counter[tuple[int, str]] = Counter()
        self.seen_pages = 0
        self.replayed = 0  # the last timeline entry replayed, and each incident's status then
        self.replayed_status: dict[int, str] = {}

    # --- the world -----------------------------------------------------------------------

    @initialize()
    def world(self):
        self.travel = time_machine.travel(timezone.now().replace(microsecond=0), tick=False)
        self.clock = self.travel.start()
        self.savepoint = transaction.savepoint()
        self.people = {ROOT: User.objects.create_user(ROOT, role=Role.ADMIN)}
        for name in PEOPLE:
            self.people[name] = User.objects.create_user(name, role=Role.RESPONDER)
        for name, person in self.people.items():
            if not reachable(name):
                continue
            method = ContactMethod.objects.create(
                user=person,
                kind=ContactKind.SMS,
                address=f"+1415555{person.pk:04d}",
                verified_at=timezone.now(),
            )
            for urgency in ("high", "low"):
                for delay in RULES.get(name, (0,)):
                    NotificationRule.objects.create(
                        user=person, urgency=urgency, delay_minutes=delay, contact_method=method
                    )
        self.services: dict[str, Service] = {}
        self.integrations: dict[str, Integration] = {}
        for key, model in POLICIES.items():
            service = Service.objects.create(
                name=f"service-{key}", ack_timeout_minutes=ACK_TIMEOUT[key]
            )
            self.services[key] = service
            self.integrations[key] = Integration.objects.create(
                kind=Kind.GENERIC, name=f"monitor-{key}", service=service
            )
            if model is not None:
                make_policy(
                    f"policy-{key}",
                    *(
                        {"users": [self.people[n] for n in level], "delay": delay}
                        for level, delay in zip(model.levels, model.delays, strict=True)
                    ),
                    service=service,
                    repeat=model.repeat,
                )
        # Something to act on from the first step.
        for service in ("a", "b"):
            self.alert(service, "disk", firing=True, severity=1)

    def teardown(self):
        if hasattr(self, "savepoint"):
            transaction.savepoint_rollback(self.savepoint)
            self.travel.stop()

    def now(self) -> datetime:
        return timezone.now()

    def committed(self, action, *args, **kwargs):
        """Run `action`, then everything its commit announces (receivers, tasks at once)."""
        with transaction.atomic():
            connection_callbacks = len(transaction.get_connection().run_on_commit)
            result = action(*args, **kwargs)
        self._run_callbacks(connection_callbacks)
        return result

    def lost(self, action, *args, **kwargs):
        """Run `action`; drop everything its commit would announce."""
        connection = transaction.get_connection()
        start = len(connection.run_on_commit)
        with transaction.atomic():
            result = action(*args, **kwargs)
        del connection.run_on_commit[start:]
        return result

    def _run_callbacks(self, start: int) -> None:
        connection = transaction.get_connection()
        while len(connection.run_on_commit) > start:
            _, callback, _robust = connection.run_on_commit.pop(start)
            callback()

    # --- the model's paging ------------------------------------------------------------

    def targets(self, incident: IncidentModel, position: int) -> tuple[str, ...]:
        policy = POLICIES[incident.service]
        level = policy.levels[position % len(policy.levels)]
        people = tuple(p for p in level if reachable(p))
        return people or (ROOT,)

    def delay(self, incident: IncidentModel, position: int) -> timedelta:
        policy = POLICIES[incident.service]
        return timedelta(minutes=policy.delays[position % len(policy.levels)])

    def fire(self, incident: IncidentModel, position: int) -> tuple[str, ...]:
        """The model pages a level: who, and when the next one follows."""
        policy = POLICIES[incident.service]
        if policy is None:
            self.expect(incident, (ROOT,))
            incident.due = None
            return (ROOT,)
        incident.position = position
        people = self.targets(incident, position)
        self.expect(incident, people)
        last = position + 1 >= policy.total
        incident.due = None if last else self.now() + self.delay(incident, position)
        return people

    def page_assignee(self, incident: IncidentModel, person: str) -> None:
        """The model pages the assignee; the policy goes on after the current level's delay."""
        policy = POLICIES[incident.service]
        self.expect(incident, (person,) if reachable(person) else (ROOT,))
        if policy is None or incident.position + 1 >= policy.total:
            incident.due = None
        else:
            incident.due = self.now() + self.delay(incident, incident.position)

    def resume(self, incident: IncidentModel) -> None:
        """After an acknowledgement ends: the level acknowledged is paged again."""
        self.fire(incident, incident.position)

    def expect(self, incident: IncidentModel, people: tuple[str, ...]) -> None:
        for person in people:
            self.expected[(incident.pk, person)] += len(RULES.get(person, (0,)))

    def open(self, service: str, group: str) -> IncidentModel:
        incident = Incident.objects.filter(status=Status.TRIGGERED).order_by("-id").first()
        model = IncidentModel(pk=incident.pk, service=service, group=group, firing={group})
        self.incidents[model.pk] = model
        self.fire(model, 0)
        return model

    def open_ones(self) -> list[IncidentModel]:
        return [i for i in self.incidents.values() if i.status != Status.RESOLVED]

    def verb(self, action, *args, legal: bool, crash: bool = False, **kwargs):
        """Do a verb; the model said whether it is legal. Return its result, or None.

        `crash`: the process dies just after the commit: what the commit announces (the
        receivers' tasks) never runs, and only the sweep can recover it.
        """
        try:
            result = (
                self.lost(action, *args, **kwargs)
                if crash
                else self.committed(action, *args, **kwargs)
            )
        except IncidentError:
            assert not legal, f"{action.__name__} refused although the model allows it"
            return None
        assert legal, f"{action.__name__} allowed although the model refuses it"
        return result

    # --- rules: alerts ---------------------------------------------------------------------

    @rule(
        service=st.sampled_from(sorted(POLICIES)),
        group=st.sampled_from(["disk", "cpu", "api"]),
        firing=st.sampled_from([True, True, True, False]),
        severity=st.sampled_from([1, 3]),
    )
    def alert(self, service, group, firing, severity):
        key = f"{service}/{group}"
        holder = next((i for i in self.incidents.values() if key in i.firing), None)
        alert = NormalizedAlert(
            fingerprint=key,
            status=FIRING if firing else RESOLVED,
            summary=f"{group} on {service}",
            severity=severity,
            group_key=key,
        )
        count = Incident.objects.count()
        self.committed(pipeline.ingest, self.integrations[service], [alert], body=b"{}")
        if firing and holder is None:
            owner = next(
                (i for i in self.open_ones() if i.group == key and i.service == service), None
            )
            if owner is not None:  # its own group fires again: the alert joins it
                owner.firing.add(key)
            else:
                assert Incident.objects.count() == count + 1
                self.open(service, key)
        elif not firing and holder is not None:
            holder.firing.discard(key)
            if not holder.firing and holder.status != Status.RESOLVED:
                holder.status = Status.RESOLVED

    # --- rules: the verbs ----------------------------------------------------------------

    def pick(self, data, statuses: tuple[str, ...]) -> IncidentModel:
        """Draw an incident, mostly one the verb may act on (its status in `statuses`), and
        mostly a recent one, so that sequences of verbs meet the same incident."""
        every = sorted(self.incidents.values(), key=lambda i: -i.pk)
        fitting = [i for i in every if i.status in statuses]
        choices = fitting if fitting and data.draw(st.integers(0, 7)) else every
        return choices[data.draw(st.one_of(st.just(0), st.integers(0, len(choices) - 1)))]

    def actor(self, data) -> User:
        return self.people[data.draw(st.sampled_from((*PEOPLE[:3], ROOT)))]

    def db(self, model: IncidentModel) -> Incident:
        return Incident.objects.get(pk=model.pk)

    @precondition(lambda self: self.incidents)
    @rule(data=st.data())
    def acknowledge(self, data):
        model = self.pick(data, (Status.TRIGGERED,))
        by = self.actor(data)
        legal = model.status == Status.TRIGGERED
        done = self.verb(
            services.acknowledge_incident, self.db(model), by=by, source=Source.API, legal=legal
        )
        if done:
            self.acknowledged(model, by)

    def acknowledged(self, model: IncidentModel, by: User) -> None:
        model.status = Status.ACKNOWLEDGED
        model.lost = model.lost_at = None
        model.assignee = model.assignee or by.username
        timeout = ACK_TIMEOUT[model.service]
        model.ack_expires = self.now() + timedelta(minutes=timeout) if timeout else None

    @precondition(lambda self: self.incidents)
    @rule(data=st.data())
    def unacknowledge(self, data):
        model = self.pick(data, (Status.ACKNOWLEDGED,))
        legal = model.status == Status.ACKNOWLEDGED
        done = self.verb(
            services.unacknowledge_incident,
            self.db(model),
            by=self.actor(data),
            source=Source.API,
            legal=legal,
        )
        if done:
            event(f"unacknowledge at level {model.position + 1}")
            self.retriggered(model)
            self.resume(model)

    def retriggered(self, model: IncidentModel) -> None:
        model.status = Status.TRIGGERED
        model.ack_expires = model.snoozed_until = None
        model.lost = model.lost_at = None  # a newer change of course takes over

    @precondition(lambda self: self.incidents)
    @rule(data=st.data())
    def escalate_next(self, data):
        self.escalate(data, None)

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), level=st.integers(min_value=1, max_value=4))
    def escalate_to_level(self, data, level):
        self.escalate(data, level)

    def escalate(self, data, level: int | None) -> None:
        model = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        policy = POLICIES[model.service]
        levels = len(policy.levels) if policy else 0
        legal = model.status != Status.RESOLVED and (level is None or level <= levels)
        before = Page.objects.count()
        done = self.verb(
            escalation.escalate_incident,
            self.db(model),
            level=level,
            by=self.actor(data),
            source=Source.CHAT,
            legal=legal,
        )
        if not done:
            assert Page.objects.count() == before
            return
        _, outcome = done
        event(f"escalate {'to a level' if level else 'next'} from {model.status}")
        # Invariant 4: escalate pages someone, or says why it cannot.
        assert outcome.paged or outcome.note, outcome
        self.retriggered(model)
        if policy is None:
            expected = self.fire(model, 0)
            assert "no escalation policy" in outcome.note
        elif level is not None:
            cycle = model.position // levels
            expected = self.fire(model, cycle * levels + level - 1)
        elif model.position + 1 < policy.total:
            expected = self.fire(model, model.position + 1)
        elif policy.repeat:
            event("escalate: a repeating policy ran out")
            expected = self.fire(model, 0)
            assert "starts again" in outcome.note
        else:
            event("escalate: the policy ran out")
            expected = self.fire(model, model.position)
            assert "is paged again" in outcome.note
        assert set(outcome.paged) == set(expected), (outcome, expected)

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), to=st.sampled_from(PEOPLE))
    def reassign(self, data, to):
        model = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        legal = model.status != Status.RESOLVED
        done = self.verb(
            services.reassign_incident,
            self.db(model),
            to=self.people[to],
            by=self.actor(data),
            source=Source.CHAT,
            legal=legal,
        )
        if done:
            self.retriggered(model)
            model.assignee = to
            self.page_assignee(model, to)

    @precondition(lambda self: self.open_ones())
    @rule(data=st.data(), to=st.one_of(st.none(), st.sampled_from(PEOPLE)))
    def crash_after_unacknowledging_or_reassigning(self, data, to):
        """An open incident is acknowledged (if it is not yet), then unacknowledged (or
        reassigned to `to`) by a process that dies just after the commit: nothing pages until
        the sweep notices, 5 s on."""
        model = self.pick(data, (Status.ACKNOWLEDGED,))
        if model.status == Status.TRIGGERED:
            by = self.actor(data)
            self.verb(
                services.acknowledge_incident, self.db(model), by=by, source=Source.API, legal=True
            )
            self.acknowledged(model, by)
        if model.status != Status.ACKNOWLEDGED:
            return
        if to is None:
            action, kwargs = services.unacknowledge_incident, {}
        else:
            action, kwargs = services.reassign_incident, {"to": self.people[to]}
        self.verb(
            action,
            self.db(model),
            by=self.actor(data),
            source=Source.API,
            legal=True,
            crash=True,
            **kwargs,
        )
        event("a change of course lost with its process")
        self.retriggered(model)
        if to is not None:
            model.assignee = to
        model.due = None
        model.lost, model.lost_at = ("assignee", to) if to else ("resume", None), self.now()

    @precondition(lambda self: len(self.incidents) >= 2)
    @rule(data=st.data())
    def merge(self, data):
        target = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        other = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        legal = target is not other and Status.RESOLVED not in (target.status, other.status)
        if target is other:
            return
        done = self.verb(
            services.merge_incidents,
            self.db(target),
            [self.db(other)],
            by=self.actor(data),
            source=Source.API,
            legal=legal,
        )
        if done:
            event(f"merge into a {target.status} incident")
            other.status = Status.RESOLVED
            target.firing |= other.firing
            other.firing = set()

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), minutes=st.integers(min_value=1, max_value=90))
    def snooze(self, data, minutes):
        model = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        legal = model.status != Status.RESOLVED
        done = self.verb(
            services.snooze_incident,
            self.db(model),
            until=self.now() + timedelta(minutes=minutes),
            by=self.actor(data),
            source=Source.API,
            legal=legal,
        )
        if done:
            model.status = Status.ACKNOWLEDGED
            model.snoozed_until = self.now() + timedelta(minutes=minutes)
            model.ack_expires = None

    @precondition(lambda self: self.incidents)
    @rule(data=st.data())
    def resolve(self, data):
        model = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        legal = model.status != Status.RESOLVED
        done = self.verb(
            services.resolve_incident,
            self.db(model),
            by=self.actor(data),
            source=Source.API,
            legal=legal,
        )
        if done:
            model.status = Status.RESOLVED
            model.firing = set()

    @precondition(lambda self: self.incidents)
    @rule(data=st.data(), severity=st.integers(min_value=1, max_value=5))
    def severity(self, data, severity):
        model = self.pick(data, (Status.TRIGGERED, Status.ACKNOWLEDGED))
        incident = self.db(model)
        legal = model.status != Status.RESOLVED and incident.severity != severity
        self.verb(
            services.set_severity,
            incident,
            severity=severity,
            by=self.actor(data),
            source=Source.API,
            legal=legal,
        )

    # --- rules: time -------------------------------------------------------------------------

    @rule(seconds=st.integers(min_value=1, max_value=30))
    def moments_later(self, seconds):
        self.tick(seconds)

    @rule(seconds=st.integers(min_value=60, max_value=2 * 3600))
    def minutes_later(self, seconds):
        self.tick(seconds)

    @rule(seconds=st.integers(min_value=-300, max_value=-1))
    def clock_jumps_back(self, seconds):
        self.tick(seconds)

    def tick(self, seconds: int) -> None:
        self.clock.shift(timedelta(seconds=seconds))
        now = self.now()
        # As muster.tick: due levels first, then the sweep, then re-triggers.
        for model in self.incidents.values():
            if model.status == Status.TRIGGERED and model.due is not None and model.due <= now:
                event("tick: a level fires")
                self.fire(model, model.position + 1)
        self.committed(escalation.run_due_escalations)
        for model in self.incidents.values():
            lost, at = model.lost, model.lost_at
            if model.status == Status.TRIGGERED and lost and now - at > RECOVERED_AFTER:
                event("the sweep recovers a lost change of course")
                model.lost = model.lost_at = None
                if lost[0] == "assignee":
                    self.page_assignee(model, lost[1])
                else:
                    self.resume(model)
        self.committed(sweep_outbox)
        for model in self.incidents.values():
            if model.status != Status.ACKNOWLEDGED:
                continue
            ended = [t for t in (model.snoozed_until, model.ack_expires) if t and t <= now]
            if ended:
                event(
                    "an acknowledgement or snooze ended" + (" (assignee)" if model.assignee else "")
                )
                self.retriggered(model)
                if model.assignee is not None:
                    self.page_assignee(model, model.assignee)
                else:
                    self.resume(model)
        self.committed(services.retrigger_due_incidents)
        # The workers: every page due now.
        due = Page.objects.filter(status=PageStatus.QUEUED, send_after__lte=now)
        for pk in due.order_by("id").values_list("pk", flat=True):
            event(f"tick delivery: {self.committed(delivery.deliver, pk)}")

    # --- the checks ----------------------------------------------------------------------

    @invariant()
    def paged_as_the_model_says(self):
        if not hasattr(self, "people"):
            return
        pages = Page.objects.filter(escalation__isnull=False).order_by("id")[self.seen_pages :]
        for page in pages.values_list("incident_id", "person__username"):
            self.expected[page] -= 1
            self.seen_pages += 1
        missing = {k: n for k, n in self.expected.items() if n > 0}
        extra = {k: -n for k, n in self.expected.items() if n < 0}
        assert not missing and not extra, f"not paged: {missing}; paged unexpectedly: {extra}"

    @invariant()
    def statuses_agree(self):
        statuses = dict(Incident.objects.filter(pk__in=self.incidents).values_list("pk", "status"))
        for model in self.incidents.values():
            assert statuses[model.pk] == model.status, model

    @invariant()
    def every_triggered_incident_is_paging_or_flagged(self):
        """Invariant 1."""
        for incident in Incident.objects.filter(status=Status.TRIGGERED):
            model = self.incidents[incident.pk]
            if model.lost and self.now() - model.lost_at <= RECOVERED_AFTER:
                continue  # its process died a moment ago: the sweep's to recover, 5 s on
            run = Escalation.objects.filter(incident=incident).order_by("-id").first()
            assert (
                (run is not None and run.status == EscalationStatus.ACTIVE)
                or (run is not None and run.status == EscalationStatus.DONE and run.pages.exists())
                or incident.unpaged
            ), f"#{incident.number} is triggered and silent (run: {run})"
            if incident.unpaged:
                assert incident.timeline.filter(kind=EntryKind.UNPAGED).exists()

    @invariant()
    def no_page_went_out_for_an_incident_not_triggered(self):
        """Invariant 2, by replaying the timelines in the order they were written: no automatic
        page goes out while its incident is not triggered, nor once a later change of course
        has replaced its run (the run a starting entry caused is the current one from then,
        even when the sweep creates it later, after a crash)."""
        entries = (
            TimelineEntry.objects.filter(pk__gt=self.replayed)
            .order_by("id")
            .values_list("pk", "incident_id", "kind", "data")
        )
        for pk, incident_id, kind, data in entries:
            self.replayed = pk
            if kind in TRIGGERING:
                self.replayed_status[incident_id] = Status.TRIGGERED
            elif kind in (EntryKind.ACKNOWLEDGED, EntryKind.SNOOZED):
                self.replayed_status[incident_id] = Status.ACKNOWLEDGED
            elif kind == EntryKind.RESOLVED or (kind == EntryKind.MERGED and "into" in data):
                self.replayed_status[incident_id] = Status.RESOLVED
            elif kind == EntryKind.PAGE and data.get("status") == "sent":
                sent = Page.objects.filter(Q(pk=data["page"]) | Q(carried_by=data["page"]))
                rows = sent.values_list("pk", "incident", "manual", "escalation")
                for page_id, incident, manual, run in rows:
                    if manual:
                        continue
                    status = self.replayed_status[incident]
                    assert status == Status.TRIGGERED, (
                        f"page {page_id} went out for a {status} incident"
                    )
                    current = (
                        Escalation.objects.filter(incident=incident, cause_id__lt=pk)
                        .order_by("-cause_id")
                        .values_list("pk", flat=True)
                        .first()
                    )
                    assert run == current, (
                        f"page {page_id} of run {run} went out after run {current} replaced it"
                    )

    @invariant()
    def pages_are_handed_over_in_time(self):
        """A page of a triggered incident's current run is handed to the provider (alone or in a
        bundle) within a minute of being due at high urgency, within the window at low; it is
        never cancelled, held for ever, or left in flight."""
        if not hasattr(self, "people"):
            return
        now = self.now()
        handed = {PageStatus.SENT, PageStatus.DELIVERED, PageStatus.ANSWERED}
        handed |= {PageStatus.FAILED, PageStatus.UNKNOWN}
        for incident in Incident.objects.filter(status=Status.TRIGGERED):
            run = Escalation.objects.filter(incident=incident).order_by("-id").first()
            if run is None:
                continue
            for page in run.pages.select_related("rule"):
                due = page.held_at or page.send_after
                if due <= now - HANDED_WITHIN[page.rule.urgency]:
                    assert page.status in handed, (
                        f"page {page.pk} of #{incident.number} due {due} is {page.status} at "
                        f"{now} ({page.error})"
                    )

    @invariant()
    def nobody_paged_twice_for_one_step(self):
        """Invariant 3."""
        twice = (
            Page.objects.filter(escalation__isnull=False)
            .values("escalation", "step", "cycle", "person", "rule_key")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not twice.exists(), list(twice)


@pytest.mark.django_db
def test_paging_state_machine():
    conf = celery_app.conf
    before = (conf.task_always_eager, conf.task_eager_propagates)
    conf.task_always_eager = conf.task_eager_propagates = True
    try:
        run_state_machine_as_test(
            PagingMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )
    finally:
        conf.task_always_eager, conf.task_eager_propagates = before

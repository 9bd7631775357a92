"""Escalation with time under control: levels, delays, repeats, and every change of course.

Tests marked "was:" failed before escalation runs had causes: each names the bug it pins.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import Role, User
from incidents import opening, services
from incidents.models import EntryKind, Incident, Source, Status, TimelineEntry
from incidents.services import IncidentError
from incidents.signals import incident_changed
from oncall import delivery, escalation, paging, schedules
from oncall.escalation_plan import ASSIGNEE, ESCALATE, ESCALATE_TO, RESUME, START, Move, Where, plan
from oncall.models import (
    Escalation,
    EscalationPolicy,
    EscalationStatus,
    EscalationStep,
    NotificationRule,
    Page,
    PageStatus,
    PersonSettings,
    ServicePolicy,
)
from oncall.schedules import first_on_call_names
from oncall.sweep import _orphans, sweep_outbox
from tests.oncall.builders import make_person, make_policy, reachable


@pytest.fixture
def policy(service, bob, alice) -> EscalationPolicy:
    """Step 1 pages bob, then after 5 minutes step 2 pages alice; runs twice."""
    policy = EscalationPolicy.objects.create(name="checkout primary", repeat=1)
    first = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
    first.users.add(bob)
    second = EscalationStep.objects.create(policy=policy, position=1, delay_minutes=10)
    second.users.add(alice)
    ServicePolicy.objects.create(service=service, policy=policy)
    return policy


@pytest.fixture
def carol(db) -> User:
    return make_person("carol")


@pytest.fixture
def dave(db) -> User:
    return make_person("dave")


@pytest.fixture
def three_levels(service, bob, carol, dave) -> EscalationPolicy:
    """Level 1 bob, level 2 carol, level 3 dave, 5 minutes apart, no repeat; all reachable."""
    for person in (bob, carol, dave):
        reachable(person)
    return make_policy(
        "checkout three levels",
        {"users": [bob], "delay": 5},
        {"users": [carol], "delay": 5},
        {"users": [dave], "delay": 5},
        service=service,
    )


@pytest.fixture
def traveller():
    with time_machine.travel(timezone.now(), tick=False) as t:
        yield t


def open_sev1(service) -> Incident:
    return opening.open_incident(service, title="Disk full on db-1", severity=1, source="alert")


def pages_to(user: User) -> list[Page]:
    return list(Page.objects.filter(person=user).order_by("id"))


def paged_names(since_id: int = 0) -> list[str]:
    """Who automatic pages went to, in order, after page `since_id`."""
    return list(
        Page.objects.filter(pk__gt=since_id, manual=False)
        .order_by("id")
        .values_list("person__username", flat=True)
    )


def last_page_id() -> int:
    return Page.objects.order_by("-id").values_list("pk", flat=True).first() or 0


def tick(traveller, minutes: float) -> None:
    traveller.shift(timedelta(minutes=minutes))
    escalation.run_due_escalations()


# --- the plan (pure) ---------------------------------------------------------------------------


def test_the_plan_of_each_change_of_course():
    at_level_2 = Where(level=2, level_cycle=0, next_step=2, next_cycle=0)
    assert plan(ESCALATE, at_level_2, steps=3, repeat=0) == Move(fire=(2, 0))
    assert plan(ESCALATE_TO, at_level_2, steps=3, repeat=0, level=1) == Move(fire=(0, 0))
    assert plan(RESUME, at_level_2, steps=3, repeat=0) == Move(fire=(1, 0))
    assert plan(ASSIGNEE, at_level_2, steps=3, repeat=0) == Move(stand=(1, 0), then=(2, 0))
    # Nothing paged yet: every change of course starts at level 1 (and pages the assignee).
    assert plan(ESCALATE, START, steps=3, repeat=0) == Move(fire=(0, 0))
    assert plan(ASSIGNEE, START, steps=3, repeat=0) == Move(fire=(0, 0), also_assignee=True)


def test_the_plan_of_a_policy_that_ran_out():
    ran_out = Where(level=3, level_cycle=0, next_step=0, next_cycle=1)
    again = plan(ESCALATE, ran_out, steps=3, repeat=0)
    assert again.fire == (2, 0) and "level 3" in again.note.lower()
    repeats = Where(level=3, level_cycle=1, next_step=0, next_cycle=2)
    over = plan(ESCALATE, repeats, steps=3, repeat=1)
    assert over.fire == (0, 0) and "starts again at level 1" in over.note
    # The assignee of a policy that ran out is paged, and nothing follows.
    assert plan(ASSIGNEE, ran_out, steps=3, repeat=0) == Move(stand=(2, 0), then=None)


# --- firing levels -------------------------------------------------------------------------------


def test_first_level_pages_at_once_and_delivery_sends_it(
    policy, service, bob, alice, committed, traveller
):
    reachable(bob)
    reachable(alice)
    incident = committed(open_sev1, service)
    [page] = pages_to(bob)
    page.refresh_from_db()
    assert page.status == PageStatus.SENT and page.provider_id == f"console-{page.pk}"
    assert f"#{incident.number}" in page.body and "Reply 4 to ack" in page.body
    assert pages_to(alice) == []
    run = Escalation.objects.get(incident=incident)
    assert run.cause.kind == EntryKind.OPENED
    assert (run.level, run.step) == (1, 1)
    assert run.next_at == timezone.now() + timedelta(minutes=5)
    messages = list(incident.timeline.filter(kind=EntryKind.PAGE).values_list("message", flat=True))
    assert messages == ["Escalation level 1: paging bob", "Paged bob by console"]


def test_next_level_fires_when_its_delay_has_passed(
    policy, service, bob, alice, committed, traveller
):
    reachable(bob)
    reachable(alice)
    committed(open_sev1, service)
    traveller.shift(timedelta(minutes=4, seconds=59))
    assert escalation.run_due_escalations() == 0
    traveller.shift(timedelta(seconds=1))
    assert escalation.run_due_escalations() == 1
    assert len(pages_to(alice)) == 1


def test_policy_repeats_then_stops(policy, service, bob, alice, committed, traveller):
    reachable(bob)
    reachable(alice)
    incident = committed(open_sev1, service)
    for minutes in (5, 10, 5, 10, 30, 60):
        tick(traveller, minutes)
    # Two passes of two levels: bob, alice, bob, alice — and then nothing more.
    assert len(pages_to(bob)) == 2 and len(pages_to(alice)) == 2
    assert Escalation.objects.get(incident=incident).status == EscalationStatus.DONE


def test_acknowledge_stops_escalation_and_cancels_queued_pages(
    policy, service, bob, committed, traveller
):
    reachable(bob, delays=(0, 2))
    incident = committed(open_sev1, service)
    first, later = pages_to(bob)
    assert first.status == PageStatus.SENT
    assert later.status == PageStatus.QUEUED
    committed(services.acknowledge_incident, incident, by=bob, source=Source.SMS)
    later.refresh_from_db()
    assert later.status == PageStatus.CANCELLED
    tick(traveller, 30)
    assert len(pages_to(bob)) == 2


def test_delivery_rechecks_the_incident_before_the_receiver_stops_it(policy, service, bob):
    reachable(bob)
    incident = open_sev1(service)
    entry = incident.timeline.get(kind=EntryKind.OPENED)
    escalation.follow(entry.pk)
    [page] = pages_to(bob)
    services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    assert delivery.deliver(page.pk) == "cancelled"


def test_resolve_stops_escalation(policy, service, bob, alice, committed, traveller):
    reachable(bob)
    reachable(alice)
    incident = committed(open_sev1, service)
    committed(services.resolve_incident, incident, by=bob, source=Source.API)
    tick(traveller, 6)
    assert pages_to(alice) == []
    assert Escalation.objects.get(incident=incident).status == EscalationStatus.STOPPED


def test_a_new_run_notes_whom_the_service_pages_first_after_its_commit(
    policy,
    service,
    bob,
    traveller,
    monkeypatch,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    reachable(bob)
    with django_capture_on_commit_callbacks():  # not announced: the run is started below
        incident = open_sev1(service)
    opened = incident.timeline.get(kind=EntryKind.OPENED)

    with django_capture_on_commit_callbacks() as after_commit:
        escalation.follow(opened.pk)
    # Not while the incident is locked: a cache that hangs must not hold the lock.
    assert schedules.cache.get(f"oncall:first:{service.pk}") is None
    # The run's own work after commit, not its entries' announcements (the war room's opening
    # post would find out itself).
    monkeypatch.setattr(incident_changed, "send_robust", lambda *args, **kwargs: [])
    for callback in after_commit:
        callback()

    with django_assert_num_queries(0):  # the war room's opening post asks this
        assert first_on_call_names(service) == ["bob"]


def test_a_cache_that_fails_never_fails_the_escalation(
    policy, service, bob, committed, traveller, monkeypatch
):
    reachable(bob)

    kept = schedules.cache.set

    def refuse(key, *args, **kwargs):
        if key.startswith("oncall:first:"):
            raise ConnectionError("redis is down")
        return kept(key, *args, **kwargs)

    monkeypatch.setattr(schedules.cache, "set", refuse)
    incident = committed(open_sev1, service)

    assert len(pages_to(bob)) == 1
    assert Escalation.objects.get(incident=incident).level == 1


def test_a_replayed_step_or_task_pages_nobody_twice(policy, service, bob, committed, traveller):
    reachable(bob)
    incident = committed(open_sev1, service)
    run = Escalation.objects.get(incident=incident)
    # Rewind the row as if the tick that fired level 1 had never committed its advance.
    Escalation.objects.filter(pk=run.pk).update(step=0, cycle=0, next_at=timezone.now())
    assert escalation.run_due_escalations() == 1
    assert len(pages_to(bob)) == 1
    # The opening's task, delivered twice, finds its run and starts nothing.
    assert escalation.follow(run.cause_id) is None
    assert Escalation.objects.filter(incident=incident).count() == 1


def test_nobody_reachable_pages_the_admins_and_flags_the_incident(
    policy, service, committed, traveller
):
    admin = User.objects.create_user("dora", role=Role.ADMIN)
    reachable(admin)
    incident = committed(open_sev1, service)  # bob has no contact method
    incident.refresh_from_db()
    assert incident.unpaged
    assert len(pages_to(admin)) >= 1
    unpaged = incident.timeline.get(kind=EntryKind.UNPAGED)
    assert "no verified contact method for bob" in unpaged.message
    assert "dora" in unpaged.message


def test_a_service_without_policy_is_never_silent(service, committed, traveller):
    admin = User.objects.create_user("dora", role=Role.ADMIN)
    reachable(admin)
    incident = committed(open_sev1, service)
    incident.refresh_from_db()
    assert incident.unpaged and len(pages_to(admin)) == 1


def test_low_urgency_pages_wait_for_the_end_of_quiet_hours(service, bob, traveller):

    reachable(bob, urgency="low")
    PersonSettings.objects.create(
        user=bob, time_zone="UTC", quiet_start=time(22), quiet_end=time(7)
    )
    traveller.move_to(timezone.now().replace(hour=23, minute=0, second=0, microsecond=0))
    incident = opening.open_incident(service, title="queue slow", severity=4, source="alert")
    [page] = paging.page_person(incident, bob, by=None, source=Source.API)
    assert page.send_after.hour == 7 and page.send_after > timezone.now()


# --- escalate ------------------------------------------------------------------------------------


def test_escalate_pages_the_next_level_now_and_says_whom(three_levels, service, bob, committed):
    incident = committed(open_sev1, service)
    before = last_page_id()
    incident, outcome = committed(
        escalation.escalate_incident, incident, by=bob, source=Source.CHAT
    )
    assert paged_names(before) == ["carol"]
    assert (outcome.level, outcome.paged) == (2, ("carol",))
    assert outcome.describe() == "Level 2: paging carol."


def test_escalate_on_an_acknowledged_incident_pages_the_level_after_the_acknowledged_one(
    three_levels, service, bob, committed, traveller
):
    """was: it restarted the policy at level 1 and paged bob, who had just acknowledged."""
    incident = committed(open_sev1, service)
    committed(services.acknowledge_incident, incident, by=bob, source=Source.SMS)
    before = last_page_id()
    incident, outcome = committed(
        escalation.escalate_incident, incident, by=bob, source=Source.CHAT
    )
    assert incident.status == Status.TRIGGERED
    assert paged_names(before) == ["carol"] and outcome.level == 2
    # And from level 2, acknowledged by carol, the next escalate pages level 3.
    committed(services.acknowledge_incident, incident, by=carol_of(), source=Source.SMS)
    before = last_page_id()
    committed(escalation.escalate_incident, incident, by=bob, source=Source.CHAT)
    assert paged_names(before) == ["dave"]


def carol_of() -> User:
    return User.objects.get(username="carol")


def test_escalate_to_a_level_pages_that_level_and_goes_on_from_there(
    three_levels, service, bob, committed, traveller
):
    incident = committed(open_sev1, service)
    before = last_page_id()
    _, outcome = committed(
        escalation.escalate_incident, incident, level=3, by=bob, source=Source.API
    )
    assert paged_names(before) == ["dave"] and outcome.level == 3
    # Level 3 is the last, the policy does not repeat: nothing more, ever.
    tick(traveller, 60)
    assert paged_names(before) == ["dave"]
    # Back to level 1 by hand: then level 2 follows its delay.
    committed(escalation.escalate_incident, incident, level=1, by=bob, source=Source.API)
    tick(traveller, 5)
    assert paged_names(before) == ["dave", "bob", "carol"]


def test_escalate_to_a_level_the_policy_lacks_is_refused_and_changes_nothing(
    three_levels, service, bob, committed
):
    incident = committed(open_sev1, service)
    before = last_page_id()
    with pytest.raises(IncidentError, match="has 3 levels; choose 1 to 3, not 4"):
        escalation.escalate_incident(incident, level=4, by=bob, source=Source.API)
    assert paged_names(before) == []
    assert not incident.timeline.filter(kind=EntryKind.ESCALATED).exists()


def test_escalate_when_the_policy_ran_out_pages_its_last_level_again_and_says_so(
    three_levels, service, bob, committed, traveller
):
    """was: nobody was paged, yet "Escalated" was recorded."""
    incident = committed(open_sev1, service)
    tick(traveller, 5)
    tick(traveller, 5)
    assert Escalation.objects.get(incident=incident).status == EscalationStatus.DONE
    before = last_page_id()
    _, outcome = committed(escalation.escalate_incident, incident, by=bob, source=Source.CHAT)
    assert paged_names(before) == ["dave"]
    assert outcome.level == 3 and "Level 3 is the policy's last" in outcome.note


def test_escalate_when_a_repeating_policy_ran_out_starts_it_over(
    policy, service, bob, alice, committed, traveller
):
    reachable(bob)
    reachable(alice)
    incident = committed(open_sev1, service)
    for minutes in (5, 10, 5, 10):
        tick(traveller, minutes)
    before = last_page_id()
    _, outcome = committed(escalation.escalate_incident, incident, by=bob, source=Source.CHAT)
    assert paged_names(before) == ["bob"] and "starts again at level 1" in outcome.note
    tick(traveller, 5)
    assert paged_names(before) == ["bob", "alice"]


def test_escalate_without_a_policy_pages_the_admins_and_says_why(service, bob, committed):
    admin = User.objects.create_user("dora", role=Role.ADMIN)
    reachable(admin)
    incident = committed(open_sev1, service)
    before = last_page_id()
    _, outcome = committed(escalation.escalate_incident, incident, by=bob, source=Source.CHAT)
    assert paged_names(before) == ["dora"]
    assert "checkout has no escalation policy" in outcome.note
    assert outcome.paged == ("dora",)


def test_escalate_to_a_level_without_a_policy_is_refused(service, bob, committed):
    incident = committed(open_sev1, service)
    with pytest.raises(IncidentError, match="no escalation policy, so it has no levels"):
        escalation.escalate_incident(incident, level=1, by=bob, source=Source.API)


# --- merge, reassign, acknowledgement timeout, unacknowledge -------------------------------------


def test_merging_into_a_triggered_incident_keeps_it_paging(
    three_levels, service, bob, committed, traveller
):
    """was: the target's own MERGED entry stopped its escalation, for good."""
    target = committed(open_sev1, service)
    other = committed(
        opening.open_incident, service, title="Disk full on db-2", severity=1, source="alert"
    )
    committed(services.merge_incidents, target, [other], by=bob, source=Source.API)
    run = Escalation.objects.filter(incident=target).latest("id")
    assert run.status == EscalationStatus.ACTIVE
    before = last_page_id()
    tick(traveller, 5)
    assert paged_names(before) == ["carol"]
    other_runs = Escalation.objects.filter(incident=other)
    assert {r.status for r in other_runs} == {EscalationStatus.STOPPED}


def test_reassigning_pages_the_new_assignee_only_and_no_sweep_restarts_the_policy(
    three_levels, service, bob, carol, dave, committed, traveller
):
    """was: about 5 s later the orphan sweep restarted the whole policy, paging level 1."""
    incident = committed(open_sev1, service)
    committed(services.acknowledge_incident, incident, by=bob, source=Source.SMS)
    before = last_page_id()
    committed(services.reassign_incident, incident, to=dave, by=bob, source=Source.CHAT)
    assert paged_names(before) == ["dave"]
    traveller.shift(timedelta(seconds=30))
    committed(sweep_outbox)
    escalation.run_due_escalations()
    assert paged_names(before) == ["dave"]
    # Nobody acknowledged within level 1's delay: the policy goes on at level 2.
    tick(traveller, 5)
    assert paged_names(before) == ["dave", "carol"]


def test_an_acknowledgement_that_times_out_pages_the_assignee_first_then_the_policy(
    three_levels, service, bob, carol, committed, traveller
):
    service.ack_timeout_minutes = 30
    service.save()
    incident = committed(open_sev1, service)
    tick(traveller, 5)  # level 2: carol
    committed(services.acknowledge_incident, incident, by=carol, source=Source.SMS)
    before = last_page_id()
    traveller.shift(timedelta(minutes=31))
    committed(services.retrigger_due_incidents)
    assert paged_names(before) == ["carol"]  # the assignee, not level 1
    tick(traveller, 5)
    assert paged_names(before) == ["carol", "dave"]


def test_unacknowledging_resumes_at_the_level_that_was_acknowledged(
    three_levels, service, bob, carol, committed, traveller
):
    incident = committed(open_sev1, service)
    tick(traveller, 5)  # level 2: carol
    committed(services.acknowledge_incident, incident, by=carol, source=Source.API)
    before = last_page_id()
    committed(services.unacknowledge_incident, incident, by=carol, source=Source.API)
    assert paged_names(before) == ["carol"]
    tick(traveller, 5)
    assert paged_names(before) == ["carol", "dave"]


def test_a_stop_that_arrives_after_a_newer_trigger_stops_nothing(
    three_levels, service, bob, committed
):
    incident = committed(open_sev1, service)
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    unacked = services.unacknowledge_incident(incident, by=bob, source=Source.API)
    entry = unacked.timeline.get(kind=EntryKind.UNACKNOWLEDGED)
    escalation.follow(entry.pk)
    # The acknowledgement's stop task runs late, after the new run started.
    assert escalation.stop_escalations(incident.pk, reason="acknowledged") == 0
    assert Escalation.objects.filter(incident=incident).latest("id").status == "active"


def test_an_older_cause_delivered_late_starts_nothing(three_levels, service, bob):
    incident = open_sev1(service)
    opened = incident.timeline.get(kind=EntryKind.OPENED)
    _, outcome = escalation.escalate_incident(incident, level=2, by=bob, source=Source.API)
    assert outcome.paged == ("carol",)
    assert escalation.follow(opened.pk) is None
    assert paged_names() == ["carol"]


def test_the_sweep_starts_a_lost_trigger_as_its_cause_asked(
    three_levels, service, bob, dave, traveller
):
    incident = open_sev1(service)
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    escalation.stop_escalations(incident.pk, reason="acknowledged")
    services.reassign_incident(incident, to=dave, by=bob, source=Source.API)
    before = last_page_id()
    # The reassignment's task was lost with its worker: the sweep starts what it asked for.
    traveller.shift(timedelta(seconds=10))
    assert sweep_outbox()["orphans"] == 1
    assert paged_names(before) == ["dave"]
    assert sweep_outbox()["orphans"] == 0


def test_the_sweep_recovers_a_lost_trigger_behind_a_finished_run(service, bob, traveller):
    """The run ran out (one level) and the acknowledgement timed out, but the task that would
    page the assignee was lost: the sweep pages them."""
    reachable(bob)
    make_policy("checkout", {"users": [bob], "delay": 5}, service=service)
    service.ack_timeout_minutes = 10
    service.save()
    incident = open_sev1(service)
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)
    assert Escalation.objects.get(incident=incident).status == EscalationStatus.DONE
    services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    traveller.shift(timedelta(minutes=11))
    services.retrigger_due_incidents()  # its follow_entry task is never run: lost
    before = last_page_id()
    traveller.shift(timedelta(seconds=10))
    assert sweep_outbox()["orphans"] == 1
    assert paged_names(before) == ["bob"]
    assert sweep_outbox()["orphans"] == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the query plan is PostgreSQL's")
def test_the_sweep_finds_each_latest_starting_entry_in_its_own_index(service):
    """The sweep looks up the latest starting entry of every triggered incident each tick: it
    read all of an incident's entries, thousands in a storm of alerts."""
    incident = open_sev1(service)
    TimelineEntry.objects.bulk_create(
        TimelineEntry(
            incident=incident,
            at=timezone.now(),
            kind=EntryKind.ALERT_ATTACHED,
            actor_name="alertmanager",
            source=Source.ALERT,
            message=f"alert {i} attached",
        )
        for i in range(500)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE incidents_timelineentry")
        sql, params = _orphans(timezone.now()).values_list("pk").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "using timeline_starting on incidents_timelineentry" in plan
    assert "Seq Scan on incidents_timelineentry" not in plan


def test_a_change_of_course_cancels_what_the_run_before_it_still_had_queued(
    three_levels, service, bob, carol, dave, committed, traveller
):
    """was: bob's call two minutes after his SMS went out although the incident had been
    reassigned to dave meanwhile."""
    NotificationRule.objects.create(
        user=bob, urgency="high", delay_minutes=2, contact_method=bob.contact_methods.get()
    )
    incident = committed(open_sev1, service)
    later = Page.objects.get(person=bob, rule__delay_minutes=2)
    traveller.shift(timedelta(seconds=30))
    committed(services.reassign_incident, incident, to=dave, by=carol, source=Source.CHAT)
    later.refresh_from_db()
    assert later.status == PageStatus.CANCELLED and later.error.startswith("superseded")
    traveller.shift(timedelta(minutes=2))
    committed(sweep_outbox)
    assert delivery.deliver(later.pk) == "not due or taken"
    assert not Page.objects.filter(person=bob, handed_at__gt=timezone.now() - timedelta(minutes=1))


def test_a_superseded_runs_page_in_flight_is_not_sent(three_levels, service, bob, dave, traveller):
    incident = open_sev1(service)
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)
    [page] = pages_to(bob)
    # A delivery claimed it, then its worker died; meanwhile the incident is reassigned.
    Page.objects.filter(pk=page.pk).update(
        status=PageStatus.SENDING, claimed_at=timezone.now(), attempts=1
    )
    reassigned = services.reassign_incident(incident, to=dave, by=bob, source=Source.CHAT)
    escalation.follow(reassigned.timeline.get(kind=EntryKind.REASSIGNED).pk)
    traveller.shift(timedelta(seconds=10))
    assert sweep_outbox()["reclaimed"] == 1
    assert delivery.deliver(page.pk) == "cancelled"
    [to_dave] = pages_to(dave)
    assert delivery.deliver(to_dave.pk) == "sent"

"""The escalation engine with time under control: steps, delays, repeats, stops, replays."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Role, User
from incidents import services
from incidents.models import EntryKind, Incident, Source
from oncall import engine
from oncall.models import (
    ContactKind,
    ContactMethod,
    Escalation,
    EscalationPolicy,
    EscalationStatus,
    EscalationStep,
    NotificationRule,
    Page,
    PageStatus,
    ServicePolicy,
)


def reachable(user: User, *, urgency: str = "high", delays=(0,)) -> ContactMethod:
    """Give `user` a verified SMS number and a rule per delay."""
    method = ContactMethod.objects.create(
        user=user,
        kind=ContactKind.SMS,
        address=f"+1415555{user.pk:04d}",
        verified_at=timezone.now(),
    )
    for delay in delays:
        NotificationRule.objects.create(
            user=user, urgency=urgency, delay_minutes=delay, contact_method=method
        )
    return method


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
def traveller():
    with time_machine.travel(timezone.now(), tick=False) as t:
        yield t


def open_sev1(service) -> Incident:
    return services.open_incident(service, title="Disk full on db-1", severity=1, source="alert")


def pages_to(user: User) -> list[Page]:
    return list(Page.objects.filter(person=user).order_by("id"))


def test_first_step_pages_at_once_and_delivery_sends_it(policy, service, bob, alice, traveller):
    reachable(bob)
    reachable(alice)
    incident = open_sev1(service)
    escalation = engine.start_escalation(incident.pk)
    [page] = pages_to(bob)
    assert page.status == PageStatus.QUEUED and page.channel == "console"
    assert engine.deliver(page.pk) == "sent"
    page.refresh_from_db()
    assert page.status == PageStatus.SENT and page.provider_id == f"console-{page.pk}"
    assert f"#{incident.number}" in page.body and "Reply 4 to ack" in page.body
    assert pages_to(alice) == []
    escalation.refresh_from_db()
    assert escalation.step == 1 and escalation.next_at == timezone.now() + timedelta(minutes=5)
    messages = list(incident.timeline.filter(kind=EntryKind.PAGE).values_list("message", flat=True))
    assert messages == ["Escalation step 1: paging bob", "Paged bob by console"]


def test_next_step_fires_when_its_delay_has_passed(policy, service, bob, alice, traveller):
    reachable(bob)
    reachable(alice)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    traveller.shift(timedelta(minutes=4, seconds=59))
    assert engine.run_due_escalations() == 0
    traveller.shift(timedelta(seconds=1))
    assert engine.run_due_escalations() == 1
    assert len(pages_to(alice)) == 1


def test_policy_repeats_then_stops(policy, service, bob, alice, traveller):
    reachable(bob)
    reachable(alice)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    for minutes in (5, 10, 5, 10, 30, 60):
        traveller.shift(timedelta(minutes=minutes))
        engine.run_due_escalations()
    # Two passes of two steps: bob, alice, bob, alice — and then nothing more.
    assert len(pages_to(bob)) == 2 and len(pages_to(alice)) == 2
    assert Escalation.objects.get(incident=incident).status == EscalationStatus.DONE


def test_acknowledge_stops_escalation_and_cancels_queued_pages(policy, service, bob, traveller):
    reachable(bob, delays=(0, 2))
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    first, later = pages_to(bob)
    services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    # Even before the receiver stops it, delivery re-checks the incident under lock.
    assert engine.deliver(first.pk) == "cancelled"
    engine.stop_escalations(incident.pk, reason="acknowledged")
    later.refresh_from_db()
    assert later.status == PageStatus.CANCELLED
    traveller.shift(timedelta(minutes=30))
    assert engine.run_due_escalations() == 0
    assert len(pages_to(bob)) == 2


def test_resolve_stops_escalation(policy, service, bob, alice, traveller):
    reachable(bob)
    reachable(alice)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    services.resolve_incident(incident, by=bob, source=Source.API)
    traveller.shift(timedelta(minutes=6))
    assert engine.run_due_escalations() == 0
    assert pages_to(alice) == []
    assert Escalation.objects.get(incident=incident).status == EscalationStatus.STOPPED


def test_escalate_fires_the_next_step_now(policy, service, bob, alice, traveller):
    reachable(bob)
    reachable(alice)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    services.escalate_incident(incident, by=bob, source=Source.CHAT)
    engine.escalate_now(incident.pk)
    assert len(pages_to(alice)) == 1


def test_a_replayed_step_pages_nobody_twice(policy, service, bob, traveller):
    reachable(bob)
    incident = open_sev1(service)
    escalation = engine.start_escalation(incident.pk)
    # Rewind the row as if the tick that fired step 1 had never committed its advance.
    Escalation.objects.filter(pk=escalation.pk).update(step=0, cycle=0, next_at=timezone.now())
    assert engine.run_due_escalations() == 1
    assert len(pages_to(bob)) == 1
    # Starting again for the same trigger finds the same escalation.
    assert engine.start_escalation(incident.pk).pk == escalation.pk


def test_a_retrigger_pages_again(policy, service, bob, traveller):
    reachable(bob)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    engine.stop_escalations(incident.pk, reason="acknowledged")
    traveller.shift(timedelta(minutes=1))
    services.unacknowledge_incident(incident, by=bob, source=Source.API)
    engine.start_escalation(incident.pk)
    assert len(pages_to(bob)) == 2


def test_a_page_is_claimed_by_one_delivery_only(policy, service, bob, traveller):
    reachable(bob)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    [page] = pages_to(bob)
    assert engine.deliver(page.pk) == "sent"
    assert engine.deliver(page.pk) == "not due or taken"


def test_nobody_reachable_pages_the_admins_and_flags_the_incident(policy, service, traveller):
    admin = User.objects.create_user("dora", role=Role.ADMIN)
    reachable(admin)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)  # bob has no contact method
    incident.refresh_from_db()
    assert incident.unpaged
    assert len(pages_to(admin)) >= 1
    unpaged = incident.timeline.get(kind=EntryKind.UNPAGED)
    assert "no verified contact method for bob" in unpaged.message
    assert "dora" in unpaged.message


def test_a_service_without_policy_is_never_silent(service, traveller):
    admin = User.objects.create_user("dora", role=Role.ADMIN)
    reachable(admin)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    incident.refresh_from_db()
    assert incident.unpaged and len(pages_to(admin)) == 1


def test_a_worker_dying_before_handing_over_loses_nothing(policy, service, bob, traveller):
    reachable(bob)
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    [page] = pages_to(bob)
    # The claim committed, then the worker died before calling the provider.
    Page.objects.filter(pk=page.pk).update(
        status=PageStatus.SENDING, claimed_at=timezone.now(), attempts=1
    )
    traveller.shift(timedelta(seconds=10))
    assert engine.sweep_outbox()["reclaimed"] == 1
    assert engine.deliver(page.pk) == "sent"


def test_a_send_that_never_finished_becomes_unknown_and_is_not_repeated(
    policy, service, bob, traveller
):
    reachable(bob, delays=(0, 2))
    incident = open_sev1(service)
    engine.start_escalation(incident.pk)
    first, fallback = pages_to(bob)
    now = timezone.now()
    Page.objects.filter(pk=first.pk).update(
        status=PageStatus.SENDING, claimed_at=now, handed_at=now, attempts=1
    )
    traveller.shift(timedelta(seconds=61))
    assert engine.sweep_outbox()["unknown"] == 1
    first.refresh_from_db()
    fallback.refresh_from_db()
    assert first.status == PageStatus.UNKNOWN
    assert engine.deliver(first.pk) == "not due or taken"
    # The next contact method is used now rather than at its own delay.
    assert fallback.send_after <= timezone.now()


def test_pages_over_the_rate_limit_wait_and_are_bundled(service, bob, settings, traveller):
    settings.PAGE_RATE_LIMIT_COUNT = 2
    reachable(bob)
    incidents = [open_sev1(service) for _ in range(4)]
    pages = [engine.page_person(i, bob, by=None, source=Source.API)[0] for i in incidents]
    assert engine.deliver(pages[0].pk) == "sent"
    assert engine.deliver(pages[1].pk) == "sent"
    assert engine.deliver(pages[2].pk) == "delayed"
    assert engine.deliver(pages[3].pk) == "delayed"
    traveller.shift(timedelta(minutes=15, seconds=1))
    assert engine.deliver(pages[2].pk) == "sent"
    for page in pages:
        page.refresh_from_db()
    assert (
        pages[3].status == PageStatus.SENT and pages[3].error == f"bundled into page {pages[2].pk}"
    )
    assert "2 incidents" in pages[2].body and "ack all" in pages[2].body


def test_low_urgency_pages_wait_for_the_end_of_quiet_hours(service, bob, traveller):
    from datetime import time

    from oncall.models import PersonSettings

    reachable(bob, urgency="low")
    PersonSettings.objects.create(
        user=bob, time_zone="UTC", quiet_start=time(22), quiet_end=time(7)
    )
    traveller.move_to(timezone.now().replace(hour=23, minute=0, second=0, microsecond=0))
    incident = services.open_incident(service, title="queue slow", severity=4, source="alert")
    [page] = engine.page_person(incident, bob, by=None, source=Source.API)
    assert page.send_after.hour == 7 and page.send_after > timezone.now()

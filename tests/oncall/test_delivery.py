"""Delivery: a page goes out at most once, and the rate limit never sits on a SEV1."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from incidents import opening, services
from incidents.models import EntryKind, Incident, Source
from oncall import delivery, escalation, messages, pacing
from oncall.channels.base import DeliveryError
from oncall.channels.registry import CHANNELS
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
from tests.oncall.builders import make_policy, reachable
from tests.oncall.test_escalation import pages_to


@pytest.fixture
def traveller():
    with time_machine.travel(timezone.now(), tick=False) as t:
        yield t


@pytest.fixture
def bob_first(service, bob):
    return make_policy("checkout", {"users": [bob], "delay": 5}, service=service)


def opened(service, title="Disk full on db-1", severity=1) -> Incident:
    incident = opening.open_incident(service, title=title, severity=severity, source="alert")
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)
    return incident


def test_a_page_is_claimed_by_one_delivery_only(bob_first, service, bob, traveller):
    reachable(bob)
    opened(service)
    [page] = pages_to(bob)
    assert delivery.deliver(page.pk) == "sent"
    assert delivery.deliver(page.pk) == "not due or taken"


def test_a_run_stopped_while_the_delivery_waits_for_its_locks_sends_nothing(
    bob_first, service, bob, traveller, monkeypatch
):
    """The run's status is read again once the incident is locked: a change of course that
    committed after the delivery first read its page (and run) still stops the page."""
    reachable(bob)
    opened(service)
    [page] = pages_to(bob)
    waiting = pacing.waiting_pages

    def stopped_meanwhile(page, now):
        Escalation.objects.filter(pk=page.escalation_id).update(status=EscalationStatus.STOPPED)
        return waiting(page, now)

    monkeypatch.setattr(pacing, "waiting_pages", stopped_meanwhile)

    assert delivery.deliver(page.pk) == "cancelled"
    assert Page.objects.get(pk=page.pk).status == PageStatus.CANCELLED


def test_a_worker_dying_before_handing_over_loses_nothing(bob_first, service, bob, traveller):
    reachable(bob)
    opened(service)
    [page] = pages_to(bob)
    # The claim committed, then the worker died before calling the provider.
    Page.objects.filter(pk=page.pk).update(
        status=PageStatus.SENDING, claimed_at=timezone.now(), attempts=1
    )
    traveller.shift(timedelta(seconds=10))
    assert sweep_outbox()["reclaimed"] == 1
    assert delivery.deliver(page.pk) == "sent"


def test_a_send_that_never_finished_becomes_unknown_and_is_not_repeated(
    bob_first, service, bob, traveller
):
    reachable(bob, delays=(0, 2))
    opened(service)
    first, fallback = pages_to(bob)
    now = timezone.now()
    Page.objects.filter(pk=first.pk).update(
        status=PageStatus.SENDING, claimed_at=now, handed_at=now, attempts=1
    )
    traveller.shift(timedelta(seconds=61))
    assert sweep_outbox()["unknown"] == 1
    first.refresh_from_db()
    fallback.refresh_from_db()
    assert first.status == PageStatus.UNKNOWN
    assert delivery.deliver(first.pk) == "not due or taken"
    # The next contact method is used now rather than at its own delay.
    assert fallback.send_after <= timezone.now()


# --- the rate limit and bundles ------------------------------------------------------------------


def deliver_due() -> list[str]:
    """Do what the sweep and the workers do: deliver every page that is due now."""
    due = Page.objects.filter(status=PageStatus.QUEUED, send_after__lte=timezone.now())
    return [delivery.deliver(pk) for pk in due.order_by("id").values_list("pk", flat=True)]


def messages_to(person) -> list[Page]:
    """The messages a person got: pages handed over on their own (a bundle counts once)."""
    return list(
        Page.objects.filter(person=person, handed_at__isnull=False, carried_by__isnull=True)
        .exclude(status=PageStatus.CANCELLED)
        .order_by("handed_at", "id")
    )


def storm(service, count: int, severity: int = 1) -> list[Incident]:
    return [opened(service, title=f"Disk full on db-{i}", severity=severity) for i in range(count)]


def test_a_high_urgency_page_above_the_limit_goes_at_once_as_a_bundle(
    bob_first, service, bob, traveller
):
    """was: the 4th page in 15 minutes waited up to 15 minutes ("delayed until 09:33")."""
    reachable(bob)
    storm(service, 4)
    assert deliver_due() == ["sent"] * 4
    sent = messages_to(bob)
    assert [p.bundle for p in sent] == [False, False, False, True]


def test_after_a_bundle_high_urgency_pages_ride_in_the_next_within_a_minute(
    bob_first, service, bob, traveller, settings
):
    reachable(bob)
    storm(service, 4)
    deliver_due()
    traveller.shift(timedelta(seconds=5))
    later = storm(service, 3)
    fired_at = timezone.now()
    assert deliver_due() == ["held"] * 3
    held = [p for p in pages_to(bob) if p.incident in later]
    assert all(p.status == PageStatus.QUEUED and p.held_at == fired_at for p in held)
    # Released before the minute is up (the tick's margin), not after 15 minutes.
    [release] = {p.send_after for p in held}
    assert release <= fired_at + timedelta(seconds=60)
    traveller.move_to(release)
    assert deliver_due().count("sent") == 1
    [bundle] = messages_to(bob)[4:]
    riders = list(bundle.carried.all())
    assert len(riders) == 2 and all(r.status == PageStatus.SENT for r in riders)
    for incident in later:
        assert f"#{incident.number} SEV1 Disk full on db-" in bundle.body
    assert "Reply 'ack all'" in bundle.body
    # Bundles are a minute apart: the next held page waits for it.
    traveller.shift(timedelta(seconds=1))
    storm(service, 1)
    assert deliver_due() == ["held"]


def test_a_page_due_when_a_bundle_goes_rides_in_it_though_it_was_never_held(
    bob_first, service, bob, traveller
):
    reachable(bob)
    storm(service, 4)
    deliver_due()
    traveller.shift(timedelta(seconds=1))
    [held] = storm(service, 1)
    assert deliver_due() == ["held"]
    traveller.shift(timedelta(seconds=60))
    [fresh] = storm(service, 1)  # its step fired; its delivery has not run yet
    [carrier] = Page.objects.filter(incident=held)
    assert delivery.deliver(carrier.pk) == "sent"
    page = Page.objects.get(incident=fresh)
    assert page.carried_by_id == carrier.pk and page.held_at is None
    assert delivery.deliver(page.pk) == "not due or taken"
    assert len(messages_to(bob)) == 5


def test_low_urgency_above_the_limit_waits_for_the_window_or_rides_in_a_bundle(
    service, bob, traveller
):
    make_policy("checkout", {"users": [bob], "delay": 5}, service=service)
    reachable(bob)
    method = bob.contact_methods.get()
    NotificationRule.objects.create(user=bob, urgency="low", delay_minutes=0, contact_method=method)
    storm(service, 3)
    deliver_due()
    [quiet] = storm(service, 1, severity=4)
    assert deliver_due() == ["held"]
    page = Page.objects.get(incident=quiet)
    assert page.send_after == page.held_at + timedelta(minutes=15)
    # A SEV1 now goes as a bundle, and carries the low-urgency page along.
    [loud] = storm(service, 1)
    assert deliver_due() == ["sent"]
    page.refresh_from_db()
    assert page.status == PageStatus.SENT and page.carried_by.incident == loud


def test_a_bundle_never_carries_an_incident_acknowledged_meanwhile(
    bob_first, service, bob, traveller
):
    reachable(bob)
    storm(service, 4)
    deliver_due()
    acked, still = storm(service, 2)
    deliver_due()
    services.acknowledge_incident(acked, by=bob, source=Source.SMS)
    traveller.shift(timedelta(seconds=60))
    assert "sent" in deliver_due()
    bundle = messages_to(bob)[-1]
    assert f"#{still.number}" in bundle.body and f"#{acked.number}" not in bundle.body
    assert Page.objects.get(incident=acked).status == PageStatus.CANCELLED


def test_a_bundle_of_many_names_every_incident_within_two_segments(
    bob_first, service, bob, traveller
):

    reachable(bob)
    storm(service, 4)
    deliver_due()
    traveller.shift(timedelta(seconds=1))
    many = storm(service, 12)
    deliver_due()
    traveller.shift(timedelta(seconds=60))
    deliver_due()
    bundle = messages_to(bob)[-1]
    assert bundle.carried.count() == 11
    for incident in many:
        assert f"#{incident.number} SEV1" in bundle.body
    assert messages.segments(bundle.body) <= 2


def test_a_bundle_that_fails_leaves_its_riders_for_the_next_message(
    bob_first, service, bob, traveller, monkeypatch
):

    reachable(bob)
    storm(service, 4)
    deliver_due()
    traveller.shift(timedelta(seconds=1))
    storm(service, 2)
    deliver_due()
    traveller.shift(timedelta(seconds=60))

    def refuse(delivery, message):
        raise DeliveryError("carrier down")

    monkeypatch.setattr(CHANNELS["console"], "send", refuse)
    carrier, rider = Page.objects.filter(status=PageStatus.QUEUED).order_by("id")
    assert delivery.deliver(carrier.pk) == "retry"
    rider.refresh_from_db()
    assert rider.status == PageStatus.QUEUED and rider.carried_by is None
    assert rider.send_after <= timezone.now()
    monkeypatch.undo()
    assert deliver_due() == ["sent"]
    # The rider's message carries the failed carrier too, sooner than its own retry.
    assert list(messages_to(bob)[-1].carried.all()) == [carrier]


def test_escalation_runs_are_unaffected_by_bundles(bob_first, service, bob, traveller):
    reachable(bob)
    incidents = storm(service, 6)
    deliver_due()
    runs = Escalation.objects.filter(incident__in=incidents)
    assert {r.level for r in runs} == {1}


def test_a_second_phone_gets_its_own_message_never_a_ride(bob_first, service, bob, traveller):
    """A bundle carries only what goes to its own number: a person's second phone is their
    redundancy, not a rider."""
    reachable(bob)
    spare = ContactMethod.objects.create(
        user=bob, kind=ContactKind.SMS, address="+14155559999", verified_at=timezone.now()
    )
    NotificationRule.objects.create(user=bob, urgency="high", delay_minutes=0, contact_method=spare)
    storm(service, 3)
    deliver_due()  # six messages: three to each number
    storm(service, 1)
    deliver_due()
    for page in Page.objects.filter(carried_by__isnull=False):
        assert page.address == page.carried_by.address
    numbers = {p.address for p in messages_to(bob)[-2:]}
    assert numbers == {bob.contact_methods.exclude(pk=spare.pk).get().address, spare.address}

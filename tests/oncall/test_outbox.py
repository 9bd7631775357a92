"""The console outbox: every message the console channel "sends" is an OutboxMessage row, listed
newest first at /api/v1/outbox/ — pages, verification codes and test pages alike."""

from __future__ import annotations

import logging
import re

import pytest
from django.utils import timezone

from incidents.models import Source
from oncall import delivery, messages, paging, people
from oncall.channels import registry
from oncall.channels.base import Delivery
from oncall.channels.registry import CHANNELS
from oncall.models import ContactKind, ContactMethod, NotificationRule, OutboxMessage
from oncall.testpage import send_test_page
from tests.helpers.api import API, assert_error
from tests.helpers.twilio import BOB_PHONE

pytestmark = pytest.mark.django_db

OUTBOX = f"{API}outbox/"


def verified(user, kind: str = ContactKind.SMS, address: str = BOB_PHONE) -> ContactMethod:
    return ContactMethod.objects.create(
        user=user, kind=kind, address=address, verified_at=timezone.now()
    )


def test_the_console_records_a_page_it_sends_and_still_logs_it(make_page, incident, caplog):
    page = make_page("console")
    message = messages.for_incident(incident)
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        assert CHANNELS["console"].send(Delivery.of_page(page), message) == f"console-{page.pk}"
    [sent] = OutboxMessage.objects.all()
    assert (sent.kind, sent.page_id, sent.person.username) == ("page", page.pk, "bob")
    assert (sent.channel, sent.address, sent.body) == ("sms", BOB_PHONE, message.sms)
    [record] = caplog.records
    assert record.getMessage() == f"page {page.pk} to bob (sms {BOB_PHONE}): {message.sms}"


def test_a_voice_page_is_recorded_as_the_call_would_read_it(make_page, incident):
    page = make_page("console")
    page.contact_method.kind = ContactKind.VOICE
    message = messages.for_incident(incident)
    CHANNELS["console"].send(Delivery.of_page(page), message)
    [sent] = OutboxMessage.objects.all()
    assert (sent.channel, sent.body) == ("voice", message.speech)


def test_a_verification_code_lands_in_the_outbox_and_verifies_the_method(bob):
    method = people.add_contact_method(bob, ContactKind.VOICE, "+1 415 555 0101")
    people.start_verification(method)
    [sent] = OutboxMessage.objects.all()
    code = re.fullmatch(
        r"Your Muster verification code is (\d{6})\. It expires in 10 minutes\.", sent.body
    )[1]
    # A voice number gets its code by SMS, as through Twilio.
    assert (sent.kind, sent.page, sent.person, sent.channel) == ("verification", None, bob, "sms")
    assert sent.address == BOB_PHONE
    assert people.confirm_verification(method, code).is_verified


def test_a_test_page_lands_in_the_outbox(bob):
    method = verified(bob)
    assert send_test_page(method, by=bob) == f"outbox-{OutboxMessage.objects.get().pk}"
    [sent] = OutboxMessage.objects.all()
    assert (sent.kind, sent.page, sent.channel, sent.address) == ("test", None, "sms", BOB_PHONE)
    assert sent.body == (
        "Muster test page for bob: this is how a page reaches you by SMS. No action needed."
    )


def test_the_outbox_keeps_only_the_latest_messages(bob, settings):
    settings.OUTBOX_KEEP = 3
    method = verified(bob)
    for _ in range(5):
        registry.send_verification_code(method, "123456")
    kept = list(OutboxMessage.objects.values_list("pk", flat=True))
    assert len(kept) == 3 and kept == sorted(kept, reverse=True)
    assert kept[-1] == kept[0] - 2


def test_the_api_lists_every_kind_newest_first(as_charlie, incident, bob, alice):
    method = verified(bob)
    NotificationRule.objects.create(
        user=bob, urgency=incident.urgency, delay_minutes=0, contact_method=method
    )
    [page] = paging.page_person(incident, bob, by=alice, source=Source.WEB)
    assert delivery.deliver(page.pk) == "sent"
    send_test_page(method, by=bob)
    registry.send_verification_code(method, "654321")
    verification, test, paged = OutboxMessage.objects.all()

    # Observers read the outbox.
    response = as_charlie.get(OUTBOX)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["id"] for r in rows] == [verification.pk, test.pk, paged.pk]
    page.refresh_from_db()
    assert rows[2] == {
        "id": paged.pk,
        "kind": "page",
        "incident": incident.number,
        "page": page.pk,
        "person": "bob",
        "channel": "sms",
        "address": "+14•••••••01",  # Charlie is an observer: masked
        "body": page.body,
        "status": "sent",
        "created_at": rows[2]["created_at"],
    }
    assert rows[0] == {
        "id": verification.pk,
        "kind": "verification",
        "incident": None,
        "page": None,
        "person": "bob",
        "channel": "sms",
        "address": "+14•••••••01",
        # Charlie is an observer, not its owner: the code is a credential, masked.
        "body": "Your Muster verification code is ••••••. It expires in 10 minutes.",
        "status": None,
        "created_at": rows[0]["created_at"],
    }
    assert rows[1]["kind"] == "test" and rows[1]["body"].startswith("Muster test page for bob")

    by_kind = as_charlie.get(OUTBOX, {"kind": "test"}).json()["results"]
    assert [r["id"] for r in by_kind] == [test.pk]
    by_incident = as_charlie.get(OUTBOX, {"incident": incident.number}).json()["results"]
    assert [r["id"] for r in by_incident] == [paged.pk]
    assert as_charlie.get(OUTBOX, {"person": "alice"}).json()["results"] == []
    assert as_charlie.get(f"{OUTBOX}{verification.pk}/").json()["kind"] == "verification"


def test_a_verification_code_is_read_by_its_owner_and_admins_only(
    as_bob, as_alice, as_charlie, bob, caplog
):
    method = verified(bob)
    with caplog.at_level(logging.DEBUG):
        registry.send_verification_code(method, "654321")
    assert "654321" not in caplog.text  # never in a log, not even the outbox's
    bodies = {
        who: client.get(OUTBOX).json()["results"][0]["body"]
        for who, client in (("bob", as_bob), ("alice", as_alice), ("charlie", as_charlie))
    }
    assert "654321" in bodies["bob"] and "654321" in bodies["alice"]
    assert "654321" not in bodies["charlie"] and "••••••" in bodies["charlie"]


def test_the_api_refuses_an_incident_that_is_no_number(as_charlie):
    assert_error(as_charlie.get(OUTBOX, {"incident": "abc"}), 400, "incident number")


def test_the_api_lists_many_messages_in_a_fixed_number_of_queries(
    as_charlie, make_page, incident, bob, alice, django_assert_max_num_queries
):
    message = messages.for_incident(incident)
    for i in range(30):
        CHANNELS["console"].send(
            Delivery.of_page(make_page("console", person=bob if i % 2 else alice)), message
        )
        registry.send_verification_code(verified(alice, address=f"+1415555{i:04d}"), "111111")
    # The token lookup, the page of rows with their page, incident and person.
    with django_assert_max_num_queries(3):
        response = as_charlie.get(OUTBOX)
    assert len(response.json()["results"]) == 50
    assert response.json()["next"]

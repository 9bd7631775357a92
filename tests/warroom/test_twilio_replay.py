"""Replayed Twilio requests change nothing (review L6): an inbound SMS acts once per
MessageSid, a keypress once per (CallSid, gather step); the SIDs seen are kept in PostgreSQL
for the replay window and then forgotten."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from incidents.models import EntryKind, Status
from oncall.models import Page
from tests.helpers.twilio import BOB_PHONE, give_phone, twiml, twiml_text
from tests.warroom.test_sms import sms
from tests.warroom.test_voice import keys
from warroom import replay
from warroom.models import RequestSeen
from warroom.tasks import forget_twilio_requests

SMS = "/twilio/sms/"
SID = "SM" + "7" * 32


def keypad(page_id: int, step: int | None = None) -> str:
    return f"/twilio/voice/{page_id}/keypress/" + ("" if step is None else f"?step={step}")


@pytest.fixture
def bob_phone(bob):
    return give_phone(bob, BOB_PHONE)


def acted(incident) -> int:
    return incident.timeline.exclude(kind__in=[EntryKind.PAGE, EntryKind.UNPAGED]).count()


def test_a_replayed_sms_ack_does_not_acknowledge_the_next_page(
    twilio_post, open_incident, page, bob, bob_phone
):
    first = open_incident("first")
    page(first, bob)
    assert twiml_text(twilio_post(SMS, sms("4", sid=SID))).startswith("Acknowledged")
    second = open_incident("second")
    page(second, bob)  # now the latest page: a replayed "4" would acknowledge it
    before = acted(second)

    replayed = twilio_post(SMS, sms("4", sid=SID))

    assert list(twiml(replayed)) == []  # 200, empty TwiML: Twilio does not retry, nothing sent
    second.refresh_from_db()
    assert second.status == Status.TRIGGERED
    assert acted(second) == before


def test_a_replayed_resolve_does_not_act_twice_even_after_the_cache_is_flushed(
    twilio_post, open_incident, page, bob, bob_phone
):
    incident = open_incident()
    page(incident, bob)
    twilio_post(SMS, sms("6", sid=SID))
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED
    before = acted(incident)
    cache.clear()  # the SIDs seen live in PostgreSQL, not only in a cache

    assert list(twiml(twilio_post(SMS, sms("6", sid=SID)))) == []
    assert acted(incident) == before
    assert RequestSeen.objects.filter(key=f"sms:{SID}").count() == 1


def test_each_new_message_acts(twilio_post, open_incident, page, bob, bob_phone):
    first = open_incident("first")
    page(first, bob)
    twilio_post(SMS, sms("4"))
    second = open_incident("second")
    page(second, bob)
    assert twiml_text(twilio_post(SMS, sms("4"))).startswith(f"Acknowledged #{second.number}")


def test_a_message_without_a_sid_is_refused(twilio_post, bob_phone):
    form = sms("4")
    for name in ("MessageSid", "SmsSid", "SmsMessageSid"):
        del form[name]
    assert twilio_post(SMS, form).status_code == 400


@pytest.fixture
def call(open_incident, page, bob):
    return page(open_incident(), bob, channel="voice")


def test_a_replayed_keypress_does_not_act_twice(twilio_post, call):
    incident = call.incident
    assert "escalated" in twiml_text(twilio_post(keypad(call.pk, 0), keys("5")))
    escalations = incident.timeline.filter(kind=EntryKind.ESCALATED).count()

    replayed = twilio_post(keypad(call.pk, 0), keys("5"))

    assert list(twiml(replayed)) == []
    assert incident.timeline.filter(kind=EntryKind.ESCALATED).count() == escalations


def test_one_call_carries_a_key_per_gather(twilio_post, call):
    # A wrong key, then the Gather it offers again (the next step) takes the right one.
    again = twiml(twilio_post(keypad(call.pk, 0), keys("9"))).find("Gather").get("action")
    assert again.endswith(keypad(call.pk, 1))
    said = twiml_text(twilio_post(keypad(call.pk, 1), keys("4")))
    assert said == f"Incident {call.incident.number} acknowledged. Goodbye."
    call.incident.refresh_from_db()
    assert call.incident.status == Status.ACKNOWLEDGED


def test_a_gather_url_without_a_step_is_step_zero(twilio_post, call):
    twilio_post(keypad(call.pk), keys("5"))
    assert list(twiml(twilio_post(keypad(call.pk, 0), keys("5")))) == []


def test_a_keypress_for_a_page_older_than_the_window_is_refused(twilio_post, call, settings):
    Page.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - timedelta(days=settings.TWILIO_REPLAY_WINDOW_DAYS + 1)
    )
    text = twiml_text(twilio_post(keypad(call.pk, 0), keys("4")))
    assert "no longer valid" in text
    call.incident.refresh_from_db()
    assert call.incident.status == Status.TRIGGERED


def test_seen_sids_are_forgotten_after_the_window(db, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    assert replay.first_time(replay.sms_key(SID))
    assert not replay.first_time(replay.sms_key(SID))
    time_machine.shift(timedelta(days=settings.TWILIO_REPLAY_WINDOW_DAYS - 1))
    assert forget_twilio_requests() == 0
    time_machine.shift(timedelta(days=2))
    assert forget_twilio_requests() == 1
    assert replay.first_time(replay.sms_key(SID))

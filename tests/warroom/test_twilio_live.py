"""Both webhooks end to end: the fake Twilio signs and posts to the running server."""

from __future__ import annotations

from incidents.models import EntryKind, Source, Status
from oncall.models import PageStatus
from tests.fakes.twilio import FakeTwilio
from tests.helpers.twilio import BOB_PHONE, CHARLIE_PHONE, give_phone


def test_bob_texts_4_and_his_page_is_acknowledged(fake_twilio, open_incident, page, bob):
    give_phone(bob, BOB_PHONE)
    incident = open_incident()
    page(incident, bob)
    reply = fake_twilio.send_inbound_sms(BOB_PHONE, "4")
    assert reply.status == 200
    assert reply.text == f"Acknowledged #{incident.number}: Disk full on db-1"
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    assert incident.timeline.get(kind=EntryKind.ACKNOWLEDGED).source == Source.SMS


def test_stop_then_start_by_text(fake_twilio, bob):
    method = give_phone(bob, BOB_PHONE)
    assert fake_twilio.send_inbound_sms(BOB_PHONE, "STOP").text == ""
    method.refresh_from_db()
    assert method.opted_out
    fake_twilio.send_inbound_sms(BOB_PHONE, "start")
    method.refresh_from_db()
    assert not method.opted_out


def test_a_stranger_is_told_the_number_is_not_registered(fake_twilio, db):
    reply = fake_twilio.send_inbound_sms(CHARLIE_PHONE, "ack 1000")
    assert reply.text.startswith("This number is not registered with Muster.")


def test_bob_presses_4_on_the_call_and_it_is_acknowledged(fake_twilio, open_incident, page, bob):
    call = page(open_incident(), bob, channel="voice")
    params = {"CallSid": "CA" + "3" * 32, "CallStatus": "in-progress", "To": BOB_PHONE}
    reply = fake_twilio.signed_request(
        f"/twilio/voice/{call.pk}/keypress/", {**params, "Digits": "4"}
    )
    assert reply.status == 200
    assert reply.text == f"Incident {call.incident.number} acknowledged. Goodbye."
    call.refresh_from_db()
    call.incident.refresh_from_db()
    assert call.status == PageStatus.ANSWERED
    assert call.incident.status == Status.ACKNOWLEDGED
    assert call.incident.timeline.get(kind=EntryKind.ACKNOWLEDGED).source == Source.VOICE


def test_requests_signed_with_another_token_are_refused(fake_twilio, open_incident, page, bob):
    give_phone(bob, BOB_PHONE)
    call = page(open_incident(), bob, channel="voice")
    with FakeTwilio(auth_token="not-our-token", muster_url=fake_twilio.muster_url) as impostor:
        assert impostor.send_inbound_sms(BOB_PHONE, "4").status == 403
        keypress = impostor.signed_request(f"/twilio/voice/{call.pk}/keypress/", {"Digits": "4"})
        assert keypress.status == 403
    call.incident.refresh_from_db()
    assert call.incident.status == Status.TRIGGERED

"""SMS and voice pages through the real Twilio SDK, against the Twilio fake on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from oncall import messages
from oncall.channels.base import Delivery, DeliveryError
from oncall.channels.registry import CHANNELS
from oncall.models import PageStatus
from tests.helpers.twilio import BOB_PHONE, OUR_NUMBER


@pytest.fixture
def message(incident):
    return messages.for_incident(incident)


def test_an_sms_page_is_texted_from_our_number(fake_twilio, make_page, message, incident):
    page = make_page("sms")
    before = time.time()
    sid = CHANNELS["sms"].send(Delivery.of_page(page), message)
    [sent] = fake_twilio.messages
    assert sid == sent.sid and sid.startswith("SM") and len(sid) == 34
    assert (sent.to, sent.from_, sent.body) == (BOB_PHONE, OUR_NUMBER, message.sms)
    assert f"Muster #{incident.number} SEV1 checkout" in sent.body
    assert sent.status_callback == f"http://testserver/twilio/status/sms/{page.pk}/"
    assert before <= sent.received_at <= time.time()


def test_a_messaging_service_can_be_the_sender(fake_twilio, settings, make_page, message):
    settings.TWILIO_FROM_NUMBER = "MG" + "9" * 32
    CHANNELS["sms"].send(Delivery.of_page(make_page("sms")), message)
    [sent] = fake_twilio.messages
    assert (sent.from_, sent.messaging_service_sid) == ("", "MG" + "9" * 32)


def test_a_verification_code_asks_for_no_status(fake_twilio, bob, message):
    # How the engine sends codes: no page anyone tracks.
    CHANNELS["sms"].send(Delivery(address="+14155550101", kind="sms", person=bob), message)
    assert fake_twilio.messages[0].status_callback == ""


def test_a_voice_page_calls_and_asks_for_progress(fake_twilio, make_page, message):
    page = make_page("voice")
    sid = CHANNELS["voice"].send(Delivery.of_page(page), message)
    [call] = fake_twilio.calls
    assert sid == call.sid and sid.startswith("CA") and len(sid) == 34
    assert (call.to, call.from_) == (BOB_PHONE, OUR_NUMBER)
    assert (call.url, call.method) == (f"http://testserver/twilio/voice/{page.pk}/", "POST")
    assert call.status_callback == f"http://testserver/twilio/status/voice/{page.pk}/"
    assert call.status_callback_events == ["initiated", "ringing", "answered", "completed"]
    assert call.timeout == 30


@pytest.mark.parametrize(
    ("code", "message_text"),
    [
        (21211, "The 'To' number is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21614, "'To' number is not a valid mobile number"),
    ],
)
def test_a_refused_number_is_a_permanent_failure(
    fake_twilio, make_page, message, code, message_text
):
    fake_twilio.fail_number(BOB_PHONE, code=code, message=message_text)
    with pytest.raises(DeliveryError) as caught:
        CHANNELS["sms"].send(Delivery.of_page(make_page("sms")), message)
    assert caught.value.permanent and not caught.value.maybe_sent
    assert str(code) in str(caught.value) and message_text in str(caught.value)
    assert fake_twilio.messages == []


@pytest.mark.parametrize("channel", ["sms", "voice"])
def test_a_number_that_is_not_e164_is_a_permanent_failure(fake_twilio, make_page, message, channel):
    with pytest.raises(DeliveryError) as caught:
        CHANNELS[channel].send(
            Delivery.of_page(make_page(channel, address="0415 555 0101")), message
        )
    assert caught.value.permanent
    assert "21211" in str(caught.value)


@pytest.mark.parametrize("status", [500, 503, 429])
@pytest.mark.parametrize("channel", ["sms", "voice"])
def test_twilio_errors_and_rate_limits_are_transient(
    fake_twilio, make_page, message, channel, status
):
    fake_twilio.fail_next(status=status)
    with pytest.raises(DeliveryError) as caught:
        CHANNELS[channel].send(Delivery.of_page(make_page(channel)), message)
    assert not caught.value.permanent and not caught.value.maybe_sent
    assert f"HTTP {status}" in str(caught.value)
    # Nothing was sent, so the retry sends it.
    assert CHANNELS[channel].send(
        Delivery.of_page(make_page(channel, address="+14155550199")), message
    )


def test_wrong_credentials_are_a_permanent_failure(fake_twilio, settings, make_page, message):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    with pytest.raises(DeliveryError) as caught:
        CHANNELS["sms"].send(Delivery.of_page(make_page("sms")), message)
    assert caught.value.permanent and "20003" in str(caught.value)
    assert [r.status for r in fake_twilio.requests] == [401]
    assert fake_twilio.messages == []


def test_no_answer_in_time_may_have_been_sent(fake_twilio, settings, make_page, message):
    settings.TWILIO_TIMEOUT_SECONDS = 0.5
    fake_twilio.hang_next()
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        CHANNELS["voice"].send(Delivery.of_page(make_page("voice")), message)
    assert time.monotonic() - started < 5
    # Twilio got it (the fake recorded the call): sending again could call bob twice.
    assert caught.value.maybe_sent and not caught.value.permanent
    assert len(fake_twilio.calls) == 1


def test_twilio_unreachable_is_transient_and_nothing_was_sent(settings, make_page, message):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "t"
    settings.TWILIO_FROM_NUMBER = OUR_NUMBER
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(DeliveryError) as caught:
        CHANNELS["sms"].send(Delivery.of_page(make_page("sms")), message)
    assert not caught.value.permanent and not caught.value.maybe_sent
    assert "unreachable" in str(caught.value)


def test_a_send_held_by_twilio_returns_when_twilio_answers(fake_twilio, make_page, message):
    hold = fake_twilio.hold_next()
    result = {}
    page = make_page("sms")
    sender = threading.Thread(
        target=lambda: result.update(sid=CHANNELS["sms"].send(Delivery.of_page(page), message))
    )
    sender.start()
    assert hold.arrived.wait(5)
    assert sender.is_alive() and "sid" not in result
    hold.set()
    sender.join(5)
    assert result["sid"] == fake_twilio.messages[0].sid


def test_each_thread_keeps_its_connection_to_twilio(fake_twilio, make_page, message):
    from oncall.channels.twilio import client

    assert client() is client()
    for _ in range(3):
        CHANNELS["sms"].send(Delivery.of_page(make_page("sms")), message)
    assert len(fake_twilio.messages) == 3


# --- through the engine ------------------------------------------------------------------------


def test_the_engine_delivers_a_page_through_twilio(fake_twilio, make_page, incident):
    from oncall import delivery

    page = make_page("sms", status=PageStatus.QUEUED, handed_at=None)
    assert delivery.deliver(page.pk) == "sent"
    [sent] = fake_twilio.messages
    page.refresh_from_db()
    assert (page.status, page.provider_id) == (PageStatus.SENT, sent.sid)
    assert sent.body == page.body and f"#{incident.number}" in sent.body


def test_the_engine_fails_a_page_twilio_refuses_for_good(fake_twilio, make_page):
    from oncall import delivery

    fake_twilio.fail_number(BOB_PHONE, code=21610, message="Attempt to send to unsubscribed")
    page = make_page("sms", status=PageStatus.QUEUED, handed_at=None)
    assert delivery.deliver(page.pk) == "failed"
    page.refresh_from_db()
    assert page.status == PageStatus.FAILED and "21610" in page.error

"""The channel registry, the console outbox, email, Twilio's TwiML and its webhook signatures."""

from __future__ import annotations

import logging
import socket
import xml.etree.ElementTree as ET

import pytest
from django.core import mail
from django.test import RequestFactory
from twilio.request_validator import RequestValidator

from oncall import messages
from oncall.channels.base import Delivery, DeliveryError
from oncall.channels.registry import CHANNELS, channel_for
from oncall.channels.twilio import (
    KEYS,
    rebase,
    sms_reply_twiml,
    verify_request,
    voice_gather_twiml,
    voice_say_twiml,
)
from oncall.models import ContactKind

TOKEN = "token-for-signatures"


@pytest.fixture
def no_twilio(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_FROM_NUMBER = ""
    return settings


@pytest.fixture
def with_twilio(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.PUBLIC_URL = "https://muster.example.com"
    return settings


# --- the registry ------------------------------------------------------------------------------


def test_every_contact_kind_has_a_channel_either_way(settings, no_twilio):
    for kind in ContactKind.values:
        assert kind in CHANNELS
        assert channel_for(kind) in CHANNELS
    assert "console" in CHANNELS
    assert all(channel.name == name for name, channel in CHANNELS.items())


def test_without_twilio_sms_and_calls_go_to_the_console(no_twilio):
    assert channel_for("sms") == "console"
    assert channel_for("voice") == "console"
    assert channel_for("email") == "email"


def test_with_twilio_sms_and_calls_go_through_it(with_twilio):
    assert channel_for("sms") == "sms"
    assert channel_for("voice") == "voice"
    assert channel_for("email") == "email"


@pytest.mark.parametrize(
    "missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"]
)
def test_twilio_half_configured_still_uses_the_console(with_twilio, missing):
    setattr(with_twilio, missing, "")
    assert channel_for("sms") == "console"


def test_an_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="pigeon"):
        channel_for("pigeon")


# --- console and email -------------------------------------------------------------------------


def test_the_console_prints_the_page_to_the_outbox_logger(make_page, caplog, incident):
    page = make_page("console")
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        provider_id = CHANNELS["console"].send(
            Delivery.of_page(page), messages.for_incident(incident)
        )
    assert provider_id == f"console-{page.pk}"
    [record] = caplog.records
    assert record.name == "muster.outbox" and record.levelno == logging.WARNING
    text = record.getMessage()
    assert f"#{incident.number}" in text and "Checkout latency over 2s" in text
    assert "bob" in text and "+14155550101" in text


def test_the_console_reads_a_voice_page_as_the_call_would(make_page, caplog, incident):
    page = make_page("console")
    page.contact_method.kind = ContactKind.VOICE
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        CHANNELS["console"].send(Delivery.of_page(page), messages.for_incident(incident))
    assert "Muster alert. Incident" in caplog.records[0].getMessage()


def test_email_lands_in_the_outbox(make_page, incident):
    page = make_page("email", address="bob@example.com")
    message = messages.for_incident(incident)
    assert CHANNELS["email"].send(Delivery.of_page(page), message) == f"email-{page.pk}"
    [sent] = mail.outbox
    assert sent.to == ["bob@example.com"]
    assert sent.subject == message.subject and f"#{incident.number}" in sent.subject
    assert "Checkout latency over 2s" in sent.body


def test_an_unreachable_mail_server_is_a_transient_failure(settings, make_page, incident):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    page = make_page("email", address="bob@example.com")
    with pytest.raises(DeliveryError) as caught:
        CHANNELS["email"].send(Delivery.of_page(page), messages.for_incident(incident))
    assert not caught.value.permanent and not caught.value.maybe_sent


# --- TwiML -------------------------------------------------------------------------------------


def parse(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)  # noqa: S314 - our own output
    assert root.tag == "Response"
    return root


def test_the_gather_reads_the_speech_and_the_keys_twice_then_hangs_up():
    root = parse(voice_gather_twiml("Muster alert.", "https://m.example.com/twilio/voice/1/k/"))
    gather, hangup = list(root)
    assert gather.tag == "Gather" and hangup.tag == "Hangup"
    assert gather.get("action") == "https://m.example.com/twilio/voice/1/k/"
    assert (gather.get("numDigits"), gather.get("method"), gather.get("timeout")) == (
        "1",
        "POST",
        "10",
    )
    [say] = list(gather)
    assert say.tag == "Say" and say.get("loop") == "2"
    assert say.text == f"Muster alert. {KEYS}"
    assert KEYS == "Press 4 to acknowledge, 6 to resolve, 5 to escalate."


def test_speech_that_already_offers_the_keys_is_not_given_them_twice():
    root = parse(voice_gather_twiml(f"Sorry, 9 is not an option. {KEYS}", "https://m/"))
    assert root.find("Gather/Say").text == f"Sorry, 9 is not an option. {KEYS}"


def test_say_and_sms_replies_escape_what_they_are_given():
    root = parse(voice_say_twiml("Disk <full> & slow"))
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert root.find("Say").text == "Disk <full> & slow"
    assert parse(sms_reply_twiml("Acknowledged #1042 <ok>")).find("Message").text == (
        "Acknowledged #1042 <ok>"
    )
    assert list(parse(sms_reply_twiml(""))) == []


# --- the API's address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
            "http://127.0.0.1:9999",
            "http://127.0.0.1:9999/2010-04-01/Accounts/AC1/Messages.json",
        ),
        (
            "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
            "https://space.signalwire.com/api/laml/",
            "https://space.signalwire.com/api/laml/2010-04-01/Accounts/AC1/Calls.json",
        ),
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
            "https://api.twilio.com",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
        ),
        # Only Twilio's own origin is replaced.
        (
            "https://api.twilio.com.evil.example/x",
            "http://b",
            "https://api.twilio.com.evil.example/x",
        ),
    ],
)
def test_the_api_origin_is_rebased(url, base, expected):
    assert rebase(url, base) == expected


# --- webhook signatures ------------------------------------------------------------------------


def signed(path: str, params: dict, *, url: str | None = None, token: str = TOKEN, method="post"):
    signature = RequestValidator(token).compute_signature(
        url or "https://muster.example.com" + path, params if method == "post" else {}
    )
    factory = RequestFactory()
    make = factory.post if method == "post" else factory.get
    return make(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


PARAMS = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "ErrorCode": ""}


def test_a_request_signed_for_its_public_url_verifies(with_twilio):
    assert verify_request(signed("/twilio/status/sms/1/", PARAMS))


def test_the_query_string_is_part_of_what_is_signed(with_twilio):
    path = "/twilio/voice/1/?attempt=2"
    assert verify_request(signed(path, PARAMS))
    forged = signed(path, PARAMS, url="https://muster.example.com/twilio/voice/1/?attempt=3")
    assert not verify_request(forged)


def test_a_get_is_signed_over_its_url_alone(with_twilio):
    request = signed("/twilio/voice/1/", {"CallSid": "CA1"}, method="get")
    assert request.get_full_path() == "/twilio/voice/1/?CallSid=CA1"
    signature = RequestValidator(TOKEN).compute_signature(
        "https://muster.example.com/twilio/voice/1/?CallSid=CA1", {}
    )
    request.META["HTTP_X_TWILIO_SIGNATURE"] = signature
    assert verify_request(request)


def test_twilio_may_sign_with_the_default_port(with_twilio):
    url = "https://muster.example.com:443/twilio/status/sms/1/"
    assert verify_request(signed("/twilio/status/sms/1/", PARAMS, url=url))


@pytest.mark.parametrize(
    "forgery",
    [
        pytest.param({"token": "someone-elses-token"}, id="wrong-token"),
        pytest.param({"url": "https://muster.example.com/twilio/status/sms/2/"}, id="other-url"),
        pytest.param({"url": "https://evil.example.com/twilio/status/sms/1/"}, id="other-host"),
        pytest.param({"url": "http://muster.example.com/twilio/status/sms/1/"}, id="other-scheme"),
    ],
)
def test_forged_signatures_do_not_verify(with_twilio, forgery):
    assert not verify_request(signed("/twilio/status/sms/1/", PARAMS, **forgery))


def test_changed_params_do_not_verify(with_twilio):
    request = signed("/twilio/status/sms/1/", PARAMS)
    changed = RequestFactory().post(
        "/twilio/status/sms/1/",
        {**PARAMS, "MessageStatus": "failed"},
        HTTP_X_TWILIO_SIGNATURE=request.headers["X-Twilio-Signature"],
    )
    assert not verify_request(changed)


def test_no_signature_or_no_token_verifies_nothing(with_twilio):
    assert not verify_request(RequestFactory().post("/twilio/status/sms/1/", PARAMS))
    with_twilio.TWILIO_AUTH_TOKEN = ""
    # Even a request signed with the empty token: no token means no check passes.
    assert not verify_request(signed("/twilio/status/sms/1/", PARAMS, token=""))

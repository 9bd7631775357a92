"""Twilio's webhooks for pages: signed status callbacks, the TwiML a paging call reads, and the
whole round trip — the fake Twilio calling a live Muster back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from incidents import services
from incidents.models import Source, Status
from oncall import messages
from oncall.channels.base import Delivery
from oncall.channels.registry import CHANNELS
from oncall.models import PageStatus
from tests.helpers.twilio import BOB_PHONE, OUR_NUMBER, TWILIO_TOKEN


@pytest.fixture
def twilio(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "a1" * 16
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = OUR_NUMBER
    settings.PUBLIC_URL = "http://testserver"
    return settings


@pytest.fixture
def post(client, twilio):
    """POST form `params` to `path` as Twilio does: signed for `signed_url` (the path's own
    public URL by default) with `token`; no signature if `token` is None."""

    def post(path: str, params: dict, *, token: str | None = TWILIO_TOKEN, signed_url=None):
        headers = {}
        if token is not None:
            url = signed_url or twilio.PUBLIC_URL + path
            signature = RequestValidator(token).compute_signature(url, params)
            headers["HTTP_X_TWILIO_SIGNATURE"] = signature
        return client.post(path, params, **headers)

    return post


def sms_status(status: str, error_code: str = "") -> dict:
    params = {
        "AccountSid": "AC" + "a1" * 16,
        "MessageSid": "SM" + "2" * 32,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": OUR_NUMBER,
        "To": BOB_PHONE,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return params


def call_status(status: str) -> dict:
    return {
        "AccountSid": "AC" + "a1" * 16,
        "CallSid": "CA" + "3" * 32,
        "CallStatus": status,
        "From": OUR_NUMBER,
        "To": BOB_PHONE,
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)  # noqa: S314 - our own answer
    assert root.tag == "Response"
    return root


def spoken(number: int) -> str:
    return " ".join(str(number))


# --- status callbacks --------------------------------------------------------------------------


def test_a_signed_delivery_status_marks_the_sms_page_delivered(post, make_page):
    page = make_page("sms", status=PageStatus.SENT)
    response = post(f"/twilio/status/sms/{page.pk}/", sms_status("delivered"))
    twiml(response)
    page.refresh_from_db()
    assert (page.status, page.provider_status) == (PageStatus.DELIVERED, "delivered")


def test_an_undelivered_sms_reaches_the_engine_with_its_error_code(post, make_page):
    page = make_page("sms", status=PageStatus.SENT)
    twiml(post(f"/twilio/status/sms/{page.pk}/", sms_status("undelivered", "30003")))
    page.refresh_from_db()
    assert page.provider_status == "undelivered"
    assert page.status != PageStatus.SENT and "30003" in page.error


def test_intermediate_statuses_are_only_noted(post, make_page):
    page = make_page("sms", status=PageStatus.SENT)
    twiml(post(f"/twilio/status/sms/{page.pk}/", sms_status("sent")))
    page.refresh_from_db()
    assert (page.status, page.provider_status) == (PageStatus.SENT, "sent")


def test_a_call_nobody_answered_reaches_the_engine(post, make_page):
    page = make_page("voice", status=PageStatus.SENT)
    twiml(post(f"/twilio/status/voice/{page.pk}/", call_status("no-answer")))
    page.refresh_from_db()
    assert page.provider_status == "no-answer" and page.status != PageStatus.SENT


@pytest.mark.parametrize("kind", ["sms", "voice"])
@pytest.mark.parametrize(
    "forgery",
    [
        pytest.param({"token": None}, id="missing"),
        pytest.param({"token": "someone-elses-token"}, id="wrong-token"),
        pytest.param({"signed_url": "http://testserver/twilio/status/{kind}/999/"}, id="other-url"),
        pytest.param({"signed_url": "https://testserver/twilio/status/{kind}/{pk}/"}, id="https"),
    ],
)
def test_unsigned_or_forged_callbacks_are_refused(post, make_page, kind, forgery):
    page = make_page(kind, status=PageStatus.SENT)
    params = sms_status("failed") if kind == "sms" else call_status("failed")
    if "signed_url" in forgery:
        forgery = {"signed_url": forgery["signed_url"].format(kind=kind, pk=page.pk)}
    response = post(f"/twilio/status/{kind}/{page.pk}/", params, **forgery)
    assert response.status_code == 403
    page.refresh_from_db()
    assert (page.status, page.provider_status) == (PageStatus.SENT, "")


def test_callbacks_are_refused_when_no_auth_token_is_configured(post, twilio, make_page):
    page = make_page("sms", status=PageStatus.SENT)
    twilio.TWILIO_AUTH_TOKEN = ""
    response = post(f"/twilio/status/sms/{page.pk}/", sms_status("delivered"), token="")
    assert response.status_code == 403


def test_a_callback_for_an_unknown_page_is_answered_200(post, db):
    twiml(post("/twilio/status/sms/999999/", sms_status("delivered")))
    twiml(post("/twilio/status/voice/999999/", call_status("completed")))


def test_status_callbacks_only_take_post(client, twilio):
    assert client.get("/twilio/status/sms/1/").status_code == 405


# Status callbacks are not deduplicated by SID (review L6): they only move a page forward.


def test_a_replayed_or_late_status_callback_does_not_move_a_page_back(post, make_page):
    page = make_page("sms", status=PageStatus.SENT, provider_id="SM" + "2" * 32)
    twiml(post(f"/twilio/status/sms/{page.pk}/", sms_status("delivered")))
    for late in ("sent", "failed", "undelivered", "delivered"):
        twiml(post(f"/twilio/status/sms/{page.pk}/", sms_status(late, "30003")))
        page.refresh_from_db()
        assert (page.status, page.error, page.attempts) == (PageStatus.DELIVERED, "", 0)


def test_an_answered_call_stays_answered_whatever_callback_follows(post, make_page):
    page = make_page("voice", status=PageStatus.ANSWERED, provider_id="CA" + "3" * 32)
    for late in ("no-answer", "busy", "failed", "completed"):
        twiml(post(f"/twilio/status/voice/{page.pk}/", call_status(late)))
        page.refresh_from_db()
        assert (page.status, page.error) == (PageStatus.ANSWERED, "")


def test_a_callback_about_an_earlier_send_of_the_page_changes_nothing(post, make_page):
    # The page was sent again (a retry, a new MessageSid): the first send's "undelivered",
    # late or replayed, must not fail the second.
    page = make_page("sms", status=PageStatus.SENT, provider_id="SM" + "9" * 32)
    twiml(post(f"/twilio/status/sms/{page.pk}/", sms_status("undelivered", "30003")))
    page.refresh_from_db()
    assert (page.status, page.error) == (PageStatus.SENT, "")


# --- what a paging call says -------------------------------------------------------------------


def test_the_call_reads_the_incident_and_offers_the_keys(post, make_page, incident):
    page = make_page("voice", status=PageStatus.SENT)
    root = twiml(post(f"/twilio/voice/{page.pk}/", call_status("in-progress")))
    gather = root.find("Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"http://testserver/twilio/voice/{page.pk}/keypress/?step=0"
    said = gather.find("Say").text
    assert said.startswith(
        f"Muster alert. Incident {spoken(incident.number)}, severity 1, on checkout: "
        "Checkout latency over 2s."
    )
    assert said.endswith("Press 4 to acknowledge, 6 to resolve, 5 to escalate.")
    assert root[-1].tag == "Hangup"


def test_the_call_can_be_fetched_with_get(client, twilio, make_page):
    page = make_page("voice", status=PageStatus.SENT)
    path = f"/twilio/voice/{page.pk}/?CallSid=CA1"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://testserver" + path, {})
    root = twiml(client.get(path, HTTP_X_TWILIO_SIGNATURE=signature))
    assert root.find("Gather") is not None


def test_a_call_for_an_acknowledged_incident_says_so(post, make_page, incident, alice):
    services.acknowledge_incident(incident, by=alice, source=Source.WEB)
    page = make_page("voice", status=PageStatus.SENT)
    root = twiml(post(f"/twilio/voice/{page.pk}/", call_status("in-progress")))
    assert "It has been acknowledged." in root.find("Gather/Say").text


def test_a_call_for_a_resolved_incident_offers_nothing(post, make_page, incident, alice):
    services.resolve_incident(incident, by=alice, source=Source.WEB)
    page = make_page("voice", status=PageStatus.SENT)
    root = twiml(post(f"/twilio/voice/{page.pk}/", call_status("in-progress")))
    assert root.find("Gather") is None
    assert "resolved" in root.find("Say").text


def test_a_call_for_an_unknown_page_apologises(post, db):
    root = twiml(post("/twilio/voice/999999/", call_status("in-progress")))
    assert root.find("Say").text == "Sorry, this call is no longer valid. Goodbye."


def test_a_forged_call_fetch_learns_nothing(post, make_page):
    page = make_page("voice", status=PageStatus.SENT)
    response = post(f"/twilio/voice/{page.pk}/", call_status("in-progress"), token="guess")
    assert response.status_code == 403
    assert b"Checkout" not in response.content


# --- the round trip: the fake Twilio calls a live Muster back ------------------------------------


def test_an_sms_page_is_delivered_end_to_end(live_twilio, make_page, incident):
    page = make_page("sms")
    sid = CHANNELS["sms"].send(Delivery.of_page(page), messages.for_incident(incident))
    page.status = PageStatus.SENT
    page.save(update_fields=["status"])
    assert live_twilio.send_message_status(sid, "sent").status == 200
    assert live_twilio.send_message_status(sid, "delivered").status == 200
    page.refresh_from_db()
    assert (page.status, page.provider_status) == (PageStatus.DELIVERED, "delivered")


def test_a_call_is_answered_and_acknowledged_with_a_key_end_to_end(
    live_twilio, make_page, incident
):
    page = make_page("voice")
    sid = CHANNELS["voice"].send(Delivery.of_page(page), messages.for_incident(incident))
    page.status = PageStatus.SENT
    page.save(update_fields=["status"])
    twiml_reply = live_twilio.fetch_twiml(sid)
    assert twiml_reply.status == 200
    assert f"Incident {spoken(incident.number)}" in twiml_reply.text
    assert "Checkout latency over 2s" in twiml_reply.text
    gather = twiml_reply.xml().find("Gather")
    assert (
        gather.get("action") == f"{live_twilio.muster_url}/twilio/voice/{page.pk}/keypress/?step=0"
    )
    reply = live_twilio.press_keys(sid, "4", twiml=twiml_reply)
    assert reply.status == 200
    assert reply.text == f"Incident {incident.number} acknowledged. Goodbye."
    assert live_twilio.send_call_status(sid, "completed").status == 200
    incident.refresh_from_db()
    page.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    assert (page.status, page.provider_status) == (PageStatus.ANSWERED, "completed")


def test_an_sms_reply_acknowledges_end_to_end(live_twilio, make_page, incident):
    page = make_page("sms", status=PageStatus.SENT)
    CHANNELS["sms"].send(Delivery.of_page(page), messages.for_incident(incident))
    reply = live_twilio.send_inbound_sms(BOB_PHONE, f"ack {incident.number}")
    assert reply.status == 200
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED


def test_a_forged_webhook_to_a_live_muster_is_refused(live_twilio, make_page, incident):
    page = make_page("sms", status=PageStatus.SENT)
    sid = CHANNELS["sms"].send(Delivery.of_page(page), messages.for_incident(incident))
    live_twilio.auth_token = "an-attackers-token"
    assert live_twilio.send_message_status(sid, "delivered").status == 403
    page.refresh_from_db()
    assert page.status == PageStatus.SENT

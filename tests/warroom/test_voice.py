"""The phone keypad over HTTP: a paging call's Gather posts the key; TwiML speaks the answer."""

from __future__ import annotations

import pytest

from incidents import services
from incidents.models import EntryKind, Source, Status
from oncall.models import Page, PageStatus
from tests.helpers.twilio import BOB_PHONE, twiml, twiml_text


def keys(digits: str) -> dict[str, str]:
    """Return the form Twilio posts to a Gather's action."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": "CA" + "2" * 32,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": "+14155550000",
        "To": BOB_PHONE,
        "Digits": digits,
        "FinishedOnKey": "",
        "ApiVersion": "2010-04-01",
    }


@pytest.fixture
def call(open_incident, page, bob):
    """A voice page to bob for a triggered incident."""
    return page(open_incident(), bob, channel="voice")


def path(page_id: int) -> str:
    return f"/twilio/voice/{page_id}/keypress/"


@pytest.mark.parametrize(
    ("digit", "status", "kind", "said"),
    [
        ("4", Status.ACKNOWLEDGED, EntryKind.ACKNOWLEDGED, "acknowledged"),
        ("6", Status.RESOLVED, EntryKind.RESOLVED, "resolved"),
        ("5", Status.TRIGGERED, EntryKind.ESCALATED, "escalated"),
    ],
)
def test_a_key_acts_on_the_paged_incident(twilio_post, call, digit, status, kind, said):
    incident = call.incident
    text = twiml_text(twilio_post(path(call.pk), keys(digit)))
    assert text == f"Incident {incident.number} {said}. Goodbye."
    incident.refresh_from_db()
    assert incident.status == status
    entry = incident.timeline.get(kind=kind)
    assert (entry.actor.username, entry.source) == ("bob", Source.VOICE)
    assert entry.message.endswith("by bob via voice")


def test_a_keypress_marks_the_call_answered(twilio_post, call):
    twilio_post(path(call.pk), keys("4"))
    call.refresh_from_db()
    assert call.status == PageStatus.ANSWERED


def test_any_other_key_offers_the_options_again(twilio_post, call, twilio):
    response = twilio_post(path(call.pk), keys("9"))
    assert (
        twiml_text(response)
        == "Sorry, 9 is not an option. Press 4 to acknowledge, 6 to resolve, 5 to escalate."
    )
    gather = twiml(response).find("Gather")
    assert gather is not None
    assert gather.get("action") == f"http://testserver{path(call.pk)}?step=1"  # the next Gather
    call.incident.refresh_from_db()
    assert call.incident.status == Status.TRIGGERED


def test_a_key_on_an_incident_resolved_meanwhile_says_why(twilio_post, call, alice):
    services.resolve_incident(call.incident, by=alice, source=Source.WEB)
    text = twiml_text(twilio_post(path(call.pk), keys("4")))
    n = call.incident.number
    assert text == f"Incident {n} is resolved; it cannot be acknowledged. Goodbye."


def test_an_observer_pressing_4_is_refused(twilio_post, open_incident, page, charlie):
    call = page(open_incident(), charlie, channel="voice")
    text = twiml_text(twilio_post(path(call.pk), keys("4")))
    assert text == "This needs the responder role; charlie is observer. Goodbye."
    call.incident.refresh_from_db()
    assert call.incident.status == Status.TRIGGERED


@pytest.mark.parametrize("token", [None, "someone-elses-token"])
def test_unsigned_or_forged_keypresses_are_refused(twilio_post, call, token):
    response = twilio_post(path(call.pk), keys("4"), token=token)
    assert response.status_code == 403
    call.refresh_from_db()
    call.incident.refresh_from_db()
    assert call.incident.status == Status.TRIGGERED
    assert call.status != PageStatus.ANSWERED


def test_a_signature_for_another_page_is_refused(client, twilio, call):
    from twilio.request_validator import RequestValidator

    params = keys("4")
    signature = RequestValidator(twilio.TWILIO_AUTH_TOKEN).compute_signature(
        twilio.PUBLIC_URL + path(call.pk + 1), params
    )
    response = client.post(path(call.pk), params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403


def test_an_unknown_page_is_answered_politely(twilio_post, db):
    text = twiml_text(twilio_post(path(999999), keys("4")))
    assert text == "Sorry, this call is no longer valid. Goodbye."


def test_a_bundles_call_reads_every_incident_and_4_acknowledges_them_all(
    twilio_post, open_incident, page, bob
):
    first, second, third, untold = (open_incident(f"Disk full on db-{i}") for i in range(4))
    queued = page(untold, bob, channel="voice")  # not yet sent: bob knows nothing of it
    Page.objects.filter(pk=queued.pk).update(status=PageStatus.QUEUED, handed_at=None)
    carrier = page(first, bob, channel="voice")
    for other in (second, third):
        rider = page(other, bob, channel="voice")
        rider.carried_by = carrier
        rider.save(update_fields=["carried_by"])
    answer = twiml_text(twilio_post(f"/twilio/voice/{carrier.pk}/", keys("")))
    assert answer.startswith("Muster alert. 3 incidents need you.")
    for incident in (first, second, third):
        assert " ".join(str(incident.number)) in answer
    assert "Press 4 to acknowledge all of them." in answer
    # Another key is not an option on a bundle's call.
    again = twiml_text(twilio_post(path(carrier.pk), keys("6")))
    assert "Press 4 to acknowledge all." in again
    said = twiml_text(twilio_post(path(carrier.pk) + "?step=1", keys("4")))
    assert said == "Acknowledged 3 incidents. Goodbye."
    for incident in (first, second, third):
        incident.refresh_from_db()
        assert incident.status == Status.ACKNOWLEDGED
    untold.refresh_from_db()
    assert untold.status == Status.TRIGGERED  # only what the call named

"""Inbound SMS over HTTP: Twilio's signed webhook, the person found by number, TwiML answers."""

from __future__ import annotations

import uuid

import pytest

from incidents.models import EntryKind, Source, Status
from oncall.models import ContactKind, ContactMethod, Page
from tests.helpers.twilio import BOB_PHONE, CHARLIE_PHONE, give_phone, twiml_text

PATH = "/twilio/sms/"


def sms(body: str, sender: str = BOB_PHONE, sid: str | None = None) -> dict[str, str]:
    """Return the form Twilio posts for an incoming message (each a new MessageSid, unless
    `sid` names one)."""
    sid = sid or "SM" + uuid.uuid4().hex
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": "+14155550000",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


@pytest.fixture
def bob_phone(bob):
    return give_phone(bob, BOB_PHONE)


@pytest.fixture
def paged(open_incident, page, bob, bob_phone):
    incident = open_incident()
    page(incident, bob)
    return incident


def test_short_code_acks_the_latest_page(twilio_post, paged):
    response = twilio_post(PATH, sms("4"))
    assert twiml_text(response) == f"Acknowledged #{paged.number}: Disk full on db-1"
    paged.refresh_from_db()
    assert paged.status == Status.ACKNOWLEDGED
    entry = paged.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.actor.username, entry.source) == ("bob", Source.SMS)
    assert entry.message == "Acknowledged by bob via SMS"


@pytest.mark.parametrize(
    ("body", "status", "reply"),
    [
        ("ack {n}", Status.ACKNOWLEDGED, "Acknowledged #{n}"),
        ("4 {n}", Status.ACKNOWLEDGED, "Acknowledged #{n}"),
        (" Resolve #{n} rolled back ", Status.RESOLVED, "Resolved #{n}"),
        ("6", Status.RESOLVED, "Resolved #{n}"),
        ("esc incident {n}", Status.TRIGGERED, "Escalated #{n}"),
    ],
)
def test_text_commands_change_the_incident(twilio_post, paged, body, status, reply):
    n = paged.number
    text = twiml_text(twilio_post(PATH, sms(body.format(n=n))))
    assert text.startswith(reply.format(n=n))
    paged.refresh_from_db()
    assert paged.status == status
    acted = paged.timeline.exclude(kind__in=[EntryKind.PAGE, EntryKind.UNPAGED])
    assert acted.order_by("-id").first().source == Source.SMS


def test_ack_all_by_sms(twilio_post, open_incident, page, bob, bob_phone):
    first, second, untold = open_incident("a"), open_incident("b"), open_incident("c")
    page(first, bob)
    page(second, bob)
    held = page(untold, bob)  # held back for a bundle: not sent, so bob knows nothing of it
    Page.objects.filter(pk=held.pk).update(status="queued", handed_at=None)
    text = twiml_text(twilio_post(PATH, sms("ACK ALL")))
    assert text == f"Acknowledged 2 incidents: #{first.number}, #{second.number}"
    untold.refresh_from_db()
    assert untold.status == Status.TRIGGERED


def test_a_voice_number_identifies_the_person_too(twilio_post, open_incident, bob):
    give_phone(bob, BOB_PHONE, kind=ContactKind.VOICE)
    incident = open_incident()
    assert twiml_text(twilio_post(PATH, sms(f"ack {incident.number}"))).startswith("Acknowledged")


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param({"token": None}, id="missing"),
        pytest.param({"token": "someone-elses-token"}, id="wrong-token"),
    ],
)
def test_unsigned_or_forged_requests_are_refused(twilio_post, paged, forge):
    response = twilio_post(PATH, sms("4"), **forge)
    assert response.status_code == 403
    paged.refresh_from_db()
    assert paged.status == Status.TRIGGERED


def test_a_body_changed_after_signing_is_refused(client, twilio, paged):
    from twilio.request_validator import RequestValidator

    signed = sms("help")
    signature = RequestValidator(twilio.TWILIO_AUTH_TOKEN).compute_signature(
        twilio.PUBLIC_URL + PATH, signed
    )
    response = client.post(PATH, sms("4"), HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    paged.refresh_from_db()
    assert paged.status == Status.TRIGGERED


def test_only_post_is_answered(client, twilio):
    assert client.get(PATH).status_code == 405


@pytest.mark.parametrize("verified", [True, False])
def test_unknown_number_gets_a_helpful_answer_and_changes_nothing(
    twilio_post, open_incident, charlie, verified
):
    incident = open_incident()
    if not verified:
        give_phone(charlie, CHARLIE_PHONE, verified=False)
    text = twiml_text(twilio_post(PATH, sms(f"ack {incident.number}", sender=CHARLIE_PHONE)))
    assert text.startswith("This number is not registered with Muster.")
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_number_two_people_share_identifies_nobody(twilio_post, open_incident, bob, alice):
    give_phone(bob, BOB_PHONE)
    give_phone(alice, BOB_PHONE)
    incident = open_incident()
    text = twiml_text(twilio_post(PATH, sms(f"ack {incident.number}")))
    assert text.startswith("This number belongs to more than one person")
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_an_observer_is_told_and_nothing_changes(twilio_post, open_incident, page, charlie):
    give_phone(charlie, CHARLIE_PHONE)
    incident = open_incident()
    page(incident, charlie)
    text = twiml_text(twilio_post(PATH, sms("4", sender=CHARLIE_PHONE)))
    assert text == "This needs the responder role; charlie is observer."
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_an_illegal_transition_replies_why(twilio_post, paged):
    twilio_post(PATH, sms("4"))
    text = twiml_text(twilio_post(PATH, sms(f"ack {paged.number}")))
    assert text == f"Incident #{paged.number} is already acknowledged."


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("akc", 'Unknown command "akc". Did you mean "ack"? e.g. ack 1042'),
        ("reslove 1042", 'Did you mean "resolve"?'),
        ("ok thanks", "Commands: ack, ack all, resolve, escalate, help."),
        ("", "Nothing to do. Reply HELP for the commands."),
    ],
)
def test_unknown_commands_get_help_and_change_nothing(twilio_post, paged, body, says):
    text = twiml_text(twilio_post(PATH, sms(body)))
    assert says in text
    paged.refresh_from_db()
    assert paged.status == Status.TRIGGERED
    assert paged.timeline.count() == 1


def test_help_lists_the_commands(twilio_post, bob_phone):
    text = twiml_text(twilio_post(PATH, sms("HELP")))
    assert text.startswith("Commands: 4 or ack (N)")


def test_stop_and_start_toggle_the_numbers_sms_methods(twilio_post, bob, alice, bob_phone):
    voice = give_phone(bob, BOB_PHONE, kind=ContactKind.VOICE)
    unverified = give_phone(alice, BOB_PHONE, verified=False)
    other = give_phone(alice, "+14155550199")

    def opted_out():
        return {
            m.pk: m.opted_out
            for m in ContactMethod.objects.filter(
                pk__in=[bob_phone.pk, voice.pk, unverified.pk, other.pk]
            )
        }

    response = twilio_post(PATH, sms("STOP"))
    assert twiml_text(response) == ""  # Twilio confirms it itself
    assert opted_out() == {
        bob_phone.pk: True,
        voice.pk: False,
        unverified.pk: True,
        other.pk: False,
    }

    assert twiml_text(twilio_post(PATH, sms("Start"))) == ""
    assert not any(opted_out().values())

    twilio_post(PATH, sms("unsubscribe"))
    assert opted_out()[bob_phone.pk]
    twilio_post(PATH, sms("YES"))
    assert not opted_out()[bob_phone.pk]


def test_stop_from_an_unknown_number_changes_nothing(twilio_post, bob_phone):
    assert twiml_text(twilio_post(PATH, sms("stop", sender=CHARLIE_PHONE))) == ""
    bob_phone.refresh_from_db()
    assert not bob_phone.opted_out

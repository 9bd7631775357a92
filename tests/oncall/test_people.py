"""Contact methods, verification codes, notification rules and quiet hours (services)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from oncall import people
from oncall.models import (
    ContactKind,
    ContactMethod,
    NotificationRule,
    OutboxKind,
    OutboxMessage,
    PersonSettings,
)
from tests.oncall.builders import make_person, verified_phone

NOON = datetime(2025, 6, 2, 12, tzinfo=UTC)


@pytest.fixture
def ann(db):
    return make_person("ann")


def code_in(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text)[1]


# --- adding contact methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "region"),
    [
        ("+1 415 555 0100", None),
        ("+14155550100", None),
        ("(415) 555-0100", "US"),
        ("415.555.0100", "us"),
        ("+1 (415) 555-0100", "DE"),  # a + number ignores the region
    ],
)
def test_a_phone_number_is_stored_in_e164(ann, typed, region):
    method = people.add_contact_method(ann, ContactKind.SMS, typed, region=region)
    assert method.address == "+14155550100"
    assert not method.is_verified


def test_a_german_number_written_locally_needs_its_region():
    assert people.normalize_phone("030 901820", "DE") == "+4930901820"


@pytest.mark.parametrize(
    ("typed", "region", "message"),
    [
        ("(415) 555-0100", None, "no country code"),
        ("+1 999 555 0100", None, "not a valid phone number"),
        ("call me maybe", None, "not a phone number"),
        ("", None, "a phone number is needed"),
        ("555-0100", "XX", "XX is not a country code"),
    ],
)
def test_an_unusable_phone_number_is_refused_saying_why(ann, typed, region, message):
    with pytest.raises(people.InvalidAddress, match=message) as caught:
        people.add_contact_method(ann, ContactKind.VOICE, typed, region=region)
    assert isinstance(caught.value, ValueError)
    assert not ContactMethod.objects.exists()


def test_an_email_address_is_checked_and_its_domain_lowercased(ann):
    method = people.add_contact_method(ann, ContactKind.EMAIL, " Ann.Smith@Example.COM ")
    assert method.address == "Ann.Smith@example.com"
    with pytest.raises(people.InvalidAddress, match="not an email address"):
        people.add_contact_method(ann, ContactKind.EMAIL, "ann at example")


def test_the_same_address_twice_is_refused_but_another_person_may_have_it(ann):
    people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with pytest.raises(people.InvalidAddress, match="you already have sms"):
        people.add_contact_method(ann, ContactKind.SMS, "(415) 555-0100", region="US")
    other = make_person("other")
    assert people.add_contact_method(other, ContactKind.SMS, "+14155550100").user == other


def test_an_unknown_kind_is_refused(ann):
    with pytest.raises(people.InvalidAddress, match="kind must be one of"):
        people.add_contact_method(ann, "pigeon", "roof")


def test_changing_the_address_needs_a_new_verification(ann):
    method = verified_phone(ann)
    people.update_contact_method(method, label="work")
    method.refresh_from_db()
    assert method.is_verified and method.label == "work"

    people.update_contact_method(method, address="+1 415 555 0111")

    method.refresh_from_db()
    assert method.address == "+14155550111"
    assert not method.is_verified


# --- verification -----------------------------------------------------------------------------


def test_a_code_is_six_digits_stored_only_as_a_keyed_hash_for_ten_minutes(ann):
    method = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with time_machine.travel(NOON, tick=False):
        code = people.issue_verification_code(method)
    method.refresh_from_db()

    assert re.fullmatch(r"\d{6}", code)
    assert code not in method.verification_code_hash
    assert len(method.verification_code_hash) == 64
    assert method.verification_expires_at == NOON + timedelta(minutes=10)


def test_start_verification_sends_the_code_through_the_console_outbox_without_twilio(ann, caplog):
    method = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        people.start_verification(method)

    sent = [r.getMessage() for r in caplog.records if r.name == "muster.outbox"]
    assert sent == ["verification code for ann (+14155550100): in the outbox"]
    [listed] = OutboxMessage.objects.filter(kind=OutboxKind.VERIFICATION)
    assert code_in(listed.body) not in sent[0]  # a credential: listed for its owner, never logged
    people.confirm_verification(method, code_in(listed.body))
    method.refresh_from_db()
    assert method.is_verified


def test_start_verification_texts_the_code_through_twilio_when_it_is_configured(ann, fake_twilio):
    method = people.add_contact_method(ann, ContactKind.VOICE, "+1 415 555 0100")

    people.start_verification(method)

    (message,) = fake_twilio.messages  # a voice number gets its code by SMS
    assert message.to == "+14155550100"
    assert "expires in 10 minutes" in message.body
    assert people.confirm_verification(method, code_in(message.body)).is_verified


def test_an_email_address_gets_its_code_by_email(ann):
    method = people.add_contact_method(ann, ContactKind.EMAIL, "ann@example.com")
    people.start_verification(method)
    (sent,) = mail.outbox
    assert sent.to == ["ann@example.com"]
    assert people.confirm_verification(method, code_in(sent.body)).is_verified
    # Email is not a phone: no default phone rules.
    assert not NotificationRule.objects.exists()


def test_a_new_code_is_refused_within_thirty_seconds_of_the_last(ann):
    method = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with time_machine.travel(NOON, tick=False):
        first = people.issue_verification_code(method)
    with (
        time_machine.travel(NOON + timedelta(seconds=10), tick=False),
        pytest.raises(people.VerificationFailed, match="ask again in 20 s"),
    ):
        people.issue_verification_code(method)
    with time_machine.travel(NOON + timedelta(seconds=31), tick=False):
        second = people.issue_verification_code(method)
        with pytest.raises(people.VerificationFailed, match="wrong code"):
            people.confirm_verification(method, first if first != second else "x")
        assert people.confirm_verification(method, second).is_verified


def test_a_wrong_code_says_how_many_tries_are_left_and_the_fifth_voids_the_code(ann):
    method = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    code = people.issue_verification_code(method)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    for left in (4, 3, 2):
        with pytest.raises(people.VerificationFailed, match=f"{left} tries left"):
            people.confirm_verification(method, wrong)
    with pytest.raises(people.VerificationFailed, match="1 try left"):
        people.confirm_verification(method, wrong)
    with pytest.raises(people.VerificationFailed, match="that was the last try"):
        people.confirm_verification(method, wrong)
    with pytest.raises(people.VerificationFailed, match="no code was sent"):
        people.confirm_verification(method, code)  # even the right one: it is void now
    method.refresh_from_db()
    assert not method.is_verified


def test_an_expired_code_is_refused(ann):
    method = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with time_machine.travel(NOON, tick=False):
        code = people.issue_verification_code(method)
    with (
        time_machine.travel(NOON + timedelta(minutes=10), tick=False),
        pytest.raises(people.VerificationFailed, match="expired"),
    ):
        people.confirm_verification(method, code)


def test_a_code_typed_with_spaces_still_counts(ann):
    sms = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    code = people.issue_verification_code(sms)
    assert people.confirm_verification(sms, f" {code[:3]} {code[3:]} ").is_verified


def test_confirming_a_method_no_code_was_sent_to_is_refused(ann):
    sms = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with pytest.raises(people.VerificationFailed, match="no code was sent"):
        people.confirm_verification(sms, "123456")


# --- default rules ----------------------------------------------------------------------------


def test_a_first_verified_phone_gets_sms_at_once_and_a_call_two_minutes_later(ann):
    sms = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    people.confirm_verification(sms, people.issue_verification_code(sms))

    voice = ContactMethod.objects.get(user=ann, kind=ContactKind.VOICE)
    assert voice.address == "+14155550100" and voice.is_verified
    rules = [
        (r.urgency, r.contact_method.kind, r.delay_minutes)
        for r in NotificationRule.objects.filter(user=ann).order_by("urgency", "delay_minutes")
    ]
    assert rules == [("high", "sms", 0), ("high", "voice", 2), ("low", "sms", 0)]


def test_verifying_one_kind_verifies_the_other_kind_of_the_same_number(ann):
    voice = people.add_contact_method(ann, ContactKind.VOICE, "+14155550100")
    sms = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    other = people.add_contact_method(ann, ContactKind.SMS, "+14155550111")

    people.confirm_verification(voice, people.issue_verification_code(voice))

    sms.refresh_from_db()
    other.refresh_from_db()
    assert sms.is_verified and not other.is_verified
    assert ContactMethod.objects.filter(user=ann).count() == 3


def test_no_default_rules_for_someone_who_has_rules_or_had_a_phone_already(ann):
    first = verified_phone(ann, "+14155550100")
    second = people.add_contact_method(ann, ContactKind.SMS, "+14155550111")
    people.confirm_verification(second, people.issue_verification_code(second))
    assert not NotificationRule.objects.exists()  # the first phone was theirs already

    bea = make_person("bea")
    mail_method = verified_phone(bea, "bea@example.com", kind=ContactKind.EMAIL)
    people.add_notification_rule(bea, urgency="high", delay_minutes=0, contact_method=mail_method)
    phone = people.add_contact_method(bea, ContactKind.SMS, "+14155550122")
    people.confirm_verification(phone, people.issue_verification_code(phone))
    assert NotificationRule.objects.filter(user=bea).count() == 1
    assert first.user == ann


# --- notification rules -----------------------------------------------------------------------


def test_rules_are_added_changed_and_removed(ann):
    phone = verified_phone(ann)
    rule = people.add_notification_rule(ann, urgency="low", delay_minutes=5, contact_method=phone)
    people.update_notification_rule(rule, delay_minutes=10, urgency="high")
    rule.refresh_from_db()
    assert (rule.urgency, rule.delay_minutes) == ("high", 10)
    people.delete_notification_rule(rule)
    assert not NotificationRule.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"urgency": "medium"}, "urgency must be one of"),
        ({"delay_minutes": -1}, "delay_minutes must be 0 to 1440"),
        ({"delay_minutes": 1441}, "delay_minutes must be 0 to 1440"),
    ],
)
def test_a_rule_with_a_bad_urgency_or_delay_is_refused(ann, changes, message):
    args = {"urgency": "high", "delay_minutes": 0, "contact_method": verified_phone(ann)}
    with pytest.raises(people.ContactMethodError, match=message):
        people.add_notification_rule(ann, **{**args, **changes})


def test_a_rule_needs_ones_own_verified_method_and_may_not_repeat(ann):
    unverified = people.add_contact_method(ann, ContactKind.SMS, "+14155550100")
    with pytest.raises(people.ContactMethodError, match="verify SMS \\+14155550100 before"):
        people.add_notification_rule(
            ann, urgency="high", delay_minutes=0, contact_method=unverified
        )
    theirs = verified_phone(make_person("bea"), "+14155550199")
    with pytest.raises(people.ContactMethodError, match="your own contact methods"):
        people.add_notification_rule(ann, urgency="high", delay_minutes=0, contact_method=theirs)
    mine = verified_phone(ann, "+14155550111")
    people.add_notification_rule(ann, urgency="high", delay_minutes=0, contact_method=mine)
    with pytest.raises(people.ContactMethodError, match="already have this rule"):
        people.add_notification_rule(ann, urgency="high", delay_minutes=0, contact_method=mine)


def test_deleting_a_contact_method_deletes_its_rules(ann):
    phone = verified_phone(ann)
    people.add_notification_rule(ann, urgency="high", delay_minutes=0, contact_method=phone)
    people.delete_contact_method(phone)
    assert not NotificationRule.objects.exists()


# --- settings and quiet hours -----------------------------------------------------------------


def test_settings_start_in_utc_without_quiet_hours(ann):
    prefs = people.person_settings(ann)
    assert (prefs.time_zone, prefs.quiet_start, prefs.quiet_end) == ("UTC", None, None)
    assert people.person_settings(ann).pk == prefs.pk
    assert people.quiet_hours_end(ann, NOON) is None


def test_a_time_zone_must_be_an_iana_zone_and_quiet_hours_need_both_ends(ann):
    with pytest.raises(people.ContactMethodError, match="not an IANA time zone"):
        people.update_person_settings(ann, time_zone="Mars/Olympus")
    with pytest.raises(people.ContactMethodError, match="both quiet_start and quiet_end"):
        people.update_person_settings(ann, quiet_start=time(22))
    with pytest.raises(people.ContactMethodError, match="must differ"):
        people.update_person_settings(ann, quiet_start=time(22), quiet_end=time(22))
    prefs = people.update_person_settings(ann, time_zone="Europe/Berlin")
    assert PersonSettings.objects.get(user=ann).time_zone == prefs.time_zone == "Europe/Berlin"


def test_overnight_quiet_hours_in_the_persons_zone_end_the_next_morning(ann):
    people.update_person_settings(
        ann, time_zone="America/New_York", quiet_start=time(22), quiet_end=time(7)
    )
    ny = ZoneInfo("America/New_York")

    assert people.quiet_hours_end(ann, datetime(2025, 6, 2, 21, 59, tzinfo=ny)) is None
    assert people.quiet_hours_end(ann, datetime(2025, 6, 2, 23, tzinfo=ny)) == datetime(
        2025, 6, 3, 7, tzinfo=ny
    )
    assert people.quiet_hours_end(ann, datetime(2025, 6, 3, 6, tzinfo=ny)) == datetime(
        2025, 6, 3, 7, tzinfo=ny
    )
    assert people.quiet_hours_end(ann, datetime(2025, 6, 3, 7, tzinfo=ny)) is None
    # The night the clocks go back lasts an hour longer: 07:00 local is still the end.
    end = people.quiet_hours_end(ann, datetime(2025, 11, 2, 3, tzinfo=UTC))
    assert end == datetime(2025, 11, 2, 7, tzinfo=ny)
    assert end.utcoffset() == timedelta(0)  # answered in the zone it was asked in


def test_daytime_quiet_hours_end_the_same_day(ann):
    people.update_person_settings(ann, quiet_start=time(9), quiet_end=time(17))
    with time_machine.travel(NOON, tick=False):
        assert people.quiet_hours_end(ann) == datetime(2025, 6, 2, 17, tzinfo=UTC)


def test_rotating_the_ical_token_gives_a_new_secret(ann):
    old = people.person_settings(ann).ical_token
    assert people.rotate_ical_token(ann).ical_token != old

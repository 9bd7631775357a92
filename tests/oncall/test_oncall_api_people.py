"""The API of one's own on-call setup: contact methods and their verification, notification
rules, settings and the personal iCal URL."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine

from oncall.models import ContactMethod, NotificationRule, OutboxKind, OutboxMessage
from tests.helpers.api import API, assert_error
from tests.oncall.builders import verified_phone

METHODS = API + "me/contact-methods/"
RULES = API + "me/notification-rules/"
NOON = datetime(2025, 6, 2, 12, tzinfo=UTC)


def add_phone(client, address="(415) 555-0100", **extra):
    return client.post(
        METHODS, {"kind": "sms", "address": address, "region": "US", **extra}, format="json"
    )


def sent_code(caplog) -> str:
    """The code, as its owner reads it in the console outbox; never in the log."""
    body = OutboxMessage.objects.filter(kind=OutboxKind.VERIFICATION).latest("id").body
    code = re.search(r"code is (\d{6})", body)[1]
    assert all(code not in r.getMessage() for r in caplog.records), "a code was logged"
    return code


# --- contact methods --------------------------------------------------------------------------


def test_a_responder_adds_a_phone_number_stored_in_e164_and_unverified(as_bob):
    response = add_phone(as_bob, label="mobile")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["address"], body["label"], body["verified"]) == ("+14155550100", "mobile", False)
    assert "region" not in body


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"kind": "sms", "address": "(415) 555-0100"}, "has no country code"),
        ({"kind": "voice", "address": "+1 999 555 0100"}, "not a valid phone number"),
        ({"kind": "email", "address": "bob-at-example"}, "not an email address"),
        ({"kind": "pigeon", "address": "roof"}, "kind"),
    ],
)
def test_an_unusable_address_is_a_400_saying_why(as_bob, payload, fragment):
    assert_error(as_bob.post(METHODS, payload, format="json"), 400, fragment)
    assert not ContactMethod.objects.exists()


def test_a_duplicate_is_refused(as_bob):
    add_phone(as_bob)
    assert_error(add_phone(as_bob, address="+14155550100"), 400, "you already have sms")


def test_people_see_and_touch_only_their_own_contact_methods(as_bob, as_alice, alice, bob):
    mine = verified_phone(bob)
    theirs = verified_phone(alice, "+14155550111")
    assert [m["id"] for m in as_bob.get(METHODS).json()["results"]] == [mine.pk]
    assert_error(as_bob.get(METHODS + f"{theirs.pk}/"), 404)
    assert_error(as_bob.patch(METHODS + f"{theirs.pk}/", {"label": "x"}, format="json"), 404)
    assert_error(as_bob.delete(METHODS + f"{theirs.pk}/"), 404)
    assert as_alice.get(METHODS + f"{theirs.pk}/").status_code == 200


def test_an_observer_reads_but_cannot_add_contact_methods(as_charlie):
    assert as_charlie.get(METHODS).status_code == 200
    assert_error(add_phone(as_charlie), 403, "This needs the responder role; you are observer.")


def test_a_new_address_must_be_verified_again_and_the_kind_cannot_change(as_bob, bob):
    method = verified_phone(bob)
    response = as_bob.patch(
        METHODS + f"{method.pk}/", {"address": "415 555 0111", "region": "US"}, format="json"
    )
    assert (response.json()["address"], response.json()["verified"]) == ("+14155550111", False)
    assert_error(
        as_bob.patch(METHODS + f"{method.pk}/", {"kind": "voice"}, format="json"),
        400,
        "kind cannot change",
    )


def test_verifying_a_phone_sends_a_code_and_confirming_it_sets_up_default_rules(as_bob, caplog):
    method = add_phone(as_bob).json()
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        sent = as_bob.post(METHODS + f"{method['id']}/verify/")
    assert sent.status_code == 202, sent.content
    code = sent_code(caplog)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    refused = as_bob.post(METHODS + f"{method['id']}/confirm/", {"code": wrong}, format="json")
    assert_error(refused, 400, "wrong code; 4 tries left")
    confirmed = as_bob.post(METHODS + f"{method['id']}/confirm/", {"code": code}, format="json")

    assert confirmed.status_code == 200 and confirmed.json()["verified"] is True
    rules = as_bob.get(RULES).json()["results"]
    assert sorted((r["urgency"], r["delay_minutes"]) for r in rules) == [
        ("high", 0),
        ("high", 2),
        ("low", 0),
    ]
    kinds = {m["kind"] for m in as_bob.get(METHODS).json()["results"]}
    assert kinds == {"sms", "voice"}
    assert_error(as_bob.post(METHODS + f"{method['id']}/verify/"), 409, "already verified")


def test_asking_for_codes_too_often_is_a_429(as_bob):
    method = add_phone(as_bob).json()
    with time_machine.travel(NOON, tick=False):
        assert as_bob.post(METHODS + f"{method['id']}/verify/").status_code == 202
    with time_machine.travel(NOON + timedelta(seconds=5), tick=False):
        response = as_bob.post(METHODS + f"{method['id']}/verify/")
    assert_error(response, 429, "ask again in 25 s")


def test_confirm_needs_a_code(as_bob):
    method = add_phone(as_bob).json()
    assert_error(as_bob.post(METHODS + f"{method['id']}/confirm/", {}, format="json"), 400, "code")


def test_deleting_a_contact_method_deletes_its_rules(as_bob, bob):
    method = verified_phone(bob)
    NotificationRule.objects.create(user=bob, urgency="high", contact_method=method)
    assert as_bob.delete(METHODS + f"{method.pk}/").status_code == 204
    assert not NotificationRule.objects.exists()


# --- notification rules -----------------------------------------------------------------------


def test_a_responder_manages_their_notification_rules(as_bob, bob):
    phone = verified_phone(bob)
    created = as_bob.post(
        RULES, {"urgency": "low", "delay_minutes": 5, "contact_method": phone.pk}, format="json"
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    changed = as_bob.patch(RULES + f"{rule['id']}/", {"delay_minutes": 15}, format="json")
    assert changed.json() == {**rule, "delay_minutes": 15}
    assert as_bob.delete(RULES + f"{rule['id']}/").status_code == 204
    assert not NotificationRule.objects.exists()


def test_a_rule_needs_a_verified_method_of_ones_own(as_bob, bob, alice):
    unverified = ContactMethod.objects.create(user=bob, kind="sms", address="+14155550100")
    response = as_bob.post(
        RULES,
        {"urgency": "high", "delay_minutes": 0, "contact_method": unverified.pk},
        format="json",
    )
    assert_error(response, 400, "verify SMS +14155550100 before a rule can use it")
    theirs = verified_phone(alice, "+14155550111")
    response = as_bob.post(
        RULES, {"urgency": "high", "delay_minutes": 0, "contact_method": theirs.pk}, format="json"
    )
    assert_error(response, 400, "contact_method")


def test_the_same_rule_twice_is_refused(as_bob, bob):
    phone = verified_phone(bob)
    payload = {"urgency": "high", "delay_minutes": 0, "contact_method": phone.pk}
    as_bob.post(RULES, payload, format="json")
    assert_error(as_bob.post(RULES, payload, format="json"), 400, "already have this rule")


# --- settings and iCal ------------------------------------------------------------------------


def test_settings_start_in_utc_and_take_a_zone_and_quiet_hours(as_charlie):
    first = as_charlie.get(API + "me/settings/").json()
    assert (first["time_zone"], first["quiet_start"], first["quiet_end"]) == ("UTC", None, None)
    assert re.fullmatch(r"http://.+/oncall/ical/person/[\w-]+\.ics", first["ical_url"])

    changed = as_charlie.put(
        API + "me/settings/",
        {"time_zone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:00"},
        format="json",
    ).json()
    assert (changed["time_zone"], changed["quiet_start"], changed["quiet_end"]) == (
        "Europe/Berlin",
        "22:00:00",
        "07:00:00",
    )
    cleared = as_charlie.patch(
        API + "me/settings/", {"quiet_start": None, "quiet_end": None}, format="json"
    ).json()
    assert cleared["quiet_start"] is None and cleared["time_zone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"time_zone": "Moon/Base"}, "not an IANA time zone"),
        ({"quiet_start": "22:00"}, "both quiet_start and quiet_end"),
        ({"quiet_start": "late"}, "quiet_start"),
    ],
)
def test_bad_settings_are_refused(as_bob, payload, fragment):
    assert_error(as_bob.patch(API + "me/settings/", payload, format="json"), 400, fragment)


def test_my_ical_url_works_until_i_rotate_it(as_bob, client):
    old = urlsplit(as_bob.get(API + "me/ical/").json()["url"]).path
    assert client.get(old).status_code == 200
    new = urlsplit(as_bob.post(API + "me/ical/rotate/").json()["url"]).path
    assert new != old
    assert client.get(new).status_code == 200
    assert client.get(old).status_code == 404

"""My profile: contact methods and their verification, test pages, notification rules,
settings, API tokens and the iCal URL, through the web UI."""

from __future__ import annotations

import logging
import re
from datetime import time, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry
from accounts.services import create_api_token
from oncall.models import ContactMethod, NotificationRule, OutboxKind, OutboxMessage, PersonSettings
from tests.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.django_db

PROFILE = "/profile/"
BOB_PHONE = "+14155550100"


def outbox_texts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "muster.outbox"]


def sent_code(caplog) -> str:
    """The code, as its owner reads it in the console outbox; never in the log."""
    body = OutboxMessage.objects.filter(kind=OutboxKind.VERIFICATION).latest("id").body
    code = re.search(r"code is (\d{6})", body)[1]
    assert all(code not in r.getMessage() for r in caplog.records), "a code was logged"
    return code


def verified(user, kind="sms", address=BOB_PHONE) -> ContactMethod:
    return ContactMethod.objects.create(
        user=user, kind=kind, address=address, verified_at=timezone.now()
    )


def add_phone(client, address="(415) 555-0100", **extra):
    data = {"kind": "sms", "address": address, "region": "US", "label": "mobile", **extra}
    return client.post("/profile/contact-methods/", data)


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio(account_sid="AC" + "a1" * 16, auth_token="auth-token") as fake:
        settings.TWILIO_ACCOUNT_SID = "AC" + "a1" * 16
        settings.TWILIO_AUTH_TOKEN = "auth-token"
        settings.TWILIO_FROM_NUMBER = "+15005550006"
        settings.TWILIO_API_BASE_URL = fake.url
        yield fake


# --- the page ---------------------------------------------------------------------------------


def test_the_profile_needs_login():
    response = Client().get(PROFILE)
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/profile/")


def test_the_profile_lists_methods_with_their_state_rules_tokens_and_ical(web_bob, bob):
    phone = verified(bob)
    email = ContactMethod.objects.create(user=bob, kind="email", address="bob@example.com")
    NotificationRule.objects.create(user=bob, urgency="high", delay_minutes=3, contact_method=phone)
    create_api_token(bob, name="laptop")
    prefs = PersonSettings.objects.create(user=bob, ical_token="tok-bob")
    response = web_bob.get(PROFILE)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<tr id="method-{phone.pk}" data-verified="true">' in html
    assert f'<tr id="method-{email.pk}" data-verified="false">' in html
    assert "Send test page" in html and "Send code" in html
    assert f'id="rule-{response.context["rules"][0].pk}"' in html
    assert "laptop" in html
    assert f"http://127.0.0.1:8000/oncall/ical/person/{prefs.ical_token}.ics" in html
    assert 'data-copy="#ical-url"' in html


def test_the_profile_page_queries_do_not_grow_with_rows(
    web_bob, bob, django_assert_max_num_queries
):
    for i in range(30):
        method = verified(bob, address=f"+1415555{i:04d}")
        for urgency in ("high", "low"):
            NotificationRule.objects.create(
                user=bob, urgency=urgency, delay_minutes=i, contact_method=method
            )
        create_api_token(bob, name=f"token {i}")
    PersonSettings.objects.create(user=bob)
    # Session, user, methods, rules, settings, tokens, linked Slack accounts: the same seven
    # whatever the row counts.
    with django_assert_max_num_queries(7):
        response = web_bob.get(PROFILE)
    assert response.status_code == 200
    assert len(response.context["rules"]) == 60
    assert response.content.decode().count('<tr id="method-') == 30


def test_an_observer_sees_their_profile_but_cannot_add_a_contact_method(web_charlie, charlie):
    response = web_charlie.get(PROFILE)
    assert response.status_code == 200
    assert b"cannot add contact methods" in response.content
    assert add_phone(web_charlie).status_code == 403
    assert not ContactMethod.objects.exists()


# --- contact methods and verification ---------------------------------------------------------


def test_add_a_phone_send_the_code_and_verify_it(web_bob, bob, caplog):
    response = add_phone(web_bob)
    assert (response.status_code, response["Location"]) == (302, PROFILE)
    method = ContactMethod.objects.get(user=bob)
    assert (method.kind, method.address, method.label, method.verified_at) == (
        "sms",
        BOB_PHONE,
        "mobile",
        None,
    )
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        response = web_bob.post(f"/profile/contact-methods/{method.pk}/send-code/")
    verify_url = f"/profile/contact-methods/{method.pk}/verify/"
    assert (response.status_code, response["Location"]) == (302, verify_url)
    assert f"verification code for bob ({BOB_PHONE})" in outbox_texts(caplog)[-1]
    page = web_bob.get(verify_url)
    assert page.status_code == 200 and b'id="verify-form"' in page.content
    response = web_bob.post(verify_url, {"code": sent_code(caplog)})
    assert (response.status_code, response["Location"]) == (302, PROFILE)
    method.refresh_from_db()
    assert method.is_verified
    # A first verified phone gets the default rules, which the page then lists.
    assert NotificationRule.objects.filter(user=bob).count() == 3
    assert b"is verified" in web_bob.get(PROFILE).content


def test_a_wrong_code_is_said_next_to_the_field(web_bob, bob, caplog):
    method = ContactMethod.objects.create(user=bob, kind="sms", address=BOB_PHONE)
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        web_bob.post(f"/profile/contact-methods/{method.pk}/send-code/")
    code = sent_code(caplog)
    wrong = "000000" if code != "000000" else "111111"
    response = web_bob.post(f"/profile/contact-methods/{method.pk}/verify/", {"code": wrong})
    assert response.status_code == 400
    assert response.context["form"].errors == {"code": ["wrong code; 4 tries left"]}
    assert (
        b'class="problem field-error" id="id_code_error" role="alert">wrong code; 4 tries left<'
        in response.content
    )
    method.refresh_from_db()
    assert not method.is_verified


def test_an_expired_code_says_so_and_offers_a_new_one(web_bob, bob, caplog):
    method = ContactMethod.objects.create(user=bob, kind="sms", address=BOB_PHONE)
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        web_bob.post(f"/profile/contact-methods/{method.pk}/send-code/")
    code = sent_code(caplog)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = web_bob.post(f"/profile/contact-methods/{method.pk}/verify/", {"code": code})
    assert response.status_code == 400
    assert response.context["form"].errors == {"code": ["the code has expired; ask for a new one"]}
    assert b"Send code</button>" in response.content
    assert not ContactMethod.objects.get(pk=method.pk).is_verified


def test_a_second_code_within_30_seconds_is_refused_with_a_message(web_bob, bob, caplog):
    method = ContactMethod.objects.create(user=bob, kind="sms", address=BOB_PHONE)
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        web_bob.post(f"/profile/contact-methods/{method.pk}/send-code/")
        response = web_bob.post(f"/profile/contact-methods/{method.pk}/send-code/", follow=True)
    assert response.status_code == 200
    assert len(outbox_texts(caplog)) == 1
    assert b"No new code sent: a code was sent moments ago" in response.content


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        (
            {"kind": "sms", "address": "(415) 555-0100", "region": ""},
            "address",
            "(415) 555-0100 has no country code: write it as +<country code> … or give a region",
        ),
        (
            {"kind": "voice", "address": "+1 999 555 0100"},
            "address",
            "+1 999 555 0100 is not a valid phone number",
        ),
        (
            {"kind": "email", "address": "bob-at-example"},
            "address",
            "'bob-at-example' is not an email address",
        ),
        (
            {"kind": "sms", "address": "555-0100", "region": "XX"},
            "region",
            "XX is not a country code, like US or DE",
        ),
        ({"kind": "pigeon", "address": "roof"}, "kind", None),
    ],
)
def test_a_bad_address_is_shown_next_to_its_field(web_bob, data, field, error):
    response = web_bob.post("/profile/contact-methods/", data)
    assert response.status_code == 400
    errors = response.context["method_form"].errors
    assert list(errors) == [field]
    if error:
        assert errors[field] == [error]
    assert not ContactMethod.objects.exists()


def test_a_duplicate_contact_method_is_refused(web_bob, bob):
    verified(bob)
    response = add_phone(web_bob)
    assert response.status_code == 400
    assert response.context["method_form"].errors == {
        "address": [f"you already have sms {BOB_PHONE}"]
    }


def test_deleting_a_method_deletes_its_rules_and_is_audited(web_bob, bob):
    method = verified(bob)
    NotificationRule.objects.create(
        user=bob, urgency="high", delay_minutes=0, contact_method=method
    )
    response = web_bob.post(f"/profile/contact-methods/{method.pk}/delete/")
    assert response.status_code == 302
    assert not ContactMethod.objects.exists() and not NotificationRule.objects.exists()
    entry = AuditEntry.objects.get(object_type="oncall.contactmethod", action="deleted")
    assert (entry.actor, entry.object_id) == (bob, str(method.pk))


def test_another_persons_contact_method_cannot_be_touched(web_bob, alice, caplog):
    theirs = verified(alice)
    base = f"/profile/contact-methods/{theirs.pk}"
    with caplog.at_level(logging.INFO):
        for action in ("send-code", "verify", "delete", "test"):
            assert web_bob.post(f"{base}/{action}/", {"code": "123456"}).status_code == 404
        assert web_bob.get(f"{base}/verify/").status_code == 404
    assert outbox_texts(caplog) == []
    assert ContactMethod.objects.filter(pk=theirs.pk).exists()


def test_another_persons_rule_and_token_cannot_be_touched(web_bob, alice):
    rule = NotificationRule.objects.create(
        user=alice, urgency="high", delay_minutes=0, contact_method=verified(alice)
    )
    token, _ = create_api_token(alice, name="alice's")
    assert web_bob.post(f"/profile/rules/{rule.pk}/delete/").status_code == 404
    assert web_bob.post(f"/profile/rules/{rule.pk}/", {}).status_code == 404
    assert web_bob.post(f"/profile/tokens/{token.pk}/revoke/").status_code == 404
    assert NotificationRule.objects.filter(pk=rule.pk).exists()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_posts_need_the_csrf_token(bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert add_phone(client).status_code == 403
    assert client.post("/profile/ical/rotate/").status_code == 403
    assert not ContactMethod.objects.exists()
    token = client.get(PROFILE).cookies["csrftoken"].value
    response = add_phone(client, csrfmiddlewaretoken=token)
    assert response.status_code == 302
    assert ContactMethod.objects.filter(user=bob).count() == 1


def test_the_actions_are_posts(web_bob, bob):
    method = verified(bob)
    assert web_bob.get(f"/profile/contact-methods/{method.pk}/delete/").status_code == 405
    assert web_bob.get("/profile/ical/rotate/").status_code == 405


# --- test pages -------------------------------------------------------------------------------


def test_a_test_page_lands_in_the_console_outbox(web_bob, bob, caplog):
    method = verified(bob)
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        response = web_bob.post(f"/profile/contact-methods/{method.pk}/test/", follow=True)
    [text] = outbox_texts(caplog)
    assert text == (
        f"page 0 to bob (sms {BOB_PHONE}): Muster test page for bob: this is how a page reaches "
        "you by SMS. No action needed."
    )
    assert f"Test page sent to SMS {BOB_PHONE} (see the dev outbox).".encode() in response.content


def test_a_voice_test_page_reads_out_through_the_console(web_bob, bob, caplog):
    method = verified(bob, kind="voice")
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        web_bob.post(f"/profile/contact-methods/{method.pk}/test/")
    [text] = outbox_texts(caplog)
    assert text.startswith(f"page 0 to bob (voice {BOB_PHONE}): Muster test page")
    assert "by phone call" in text


def test_a_test_page_goes_through_twilio_when_it_is_configured(web_bob, bob, fake_twilio):
    method = verified(bob)
    response = web_bob.post(f"/profile/contact-methods/{method.pk}/test/", follow=True)
    [sent] = fake_twilio.messages
    assert (sent.to, sent.status_callback) == (BOB_PHONE, "")
    assert sent.body.startswith("Muster test page for bob")
    assert f"Test page sent to SMS {BOB_PHONE}.".encode() in response.content


def test_a_test_page_twilio_refuses_is_reported_not_a_500(web_bob, bob, fake_twilio):
    method = verified(bob)
    fake_twilio.fail_number(BOB_PHONE)
    response = web_bob.post(f"/profile/contact-methods/{method.pk}/test/", follow=True)
    assert response.status_code == 200
    assert f"The test page to SMS {BOB_PHONE} failed: Twilio error".encode() in response.content


def test_a_test_page_needs_a_verified_method_and_waits_between_sends(web_bob, bob, caplog):
    unverified = ContactMethod.objects.create(user=bob, kind="sms", address="+14155550199")
    method = verified(bob)
    with caplog.at_level(logging.WARNING, logger="muster.outbox"):
        first = web_bob.post(f"/profile/contact-methods/{unverified.pk}/test/", follow=True)
        web_bob.post(f"/profile/contact-methods/{method.pk}/test/")
        again = web_bob.post(f"/profile/contact-methods/{method.pk}/test/", follow=True)
    assert b"No test page sent: verify SMS +14155550199 before sending it a test page." in (
        first.content
    )
    assert b"No test page sent: a test page was sent moments ago" in again.content
    assert len(outbox_texts(caplog)) == 1


def test_a_test_page_opens_no_incident_and_no_page(web_bob, bob):
    from incidents.models import Incident
    from oncall.models import Page

    web_bob.post(f"/profile/contact-methods/{verified(bob).pk}/test/")
    assert not Page.objects.exists() and not Incident.objects.exists()


# --- notification rules -----------------------------------------------------------------------


def test_add_change_and_delete_a_rule(web_bob, bob):
    method = verified(bob)
    data = {
        "new-rule-urgency": "low",
        "new-rule-delay_minutes": "5",
        "new-rule-contact_method": method.pk,
    }
    response = web_bob.post("/profile/rules/", data)
    assert response.status_code == 302
    rule = NotificationRule.objects.get(user=bob)
    assert (rule.urgency, rule.delay_minutes, rule.contact_method) == ("low", 5, method)
    prefix = f"rule-{rule.pk}"
    changed = {
        f"{prefix}-urgency": "high",
        f"{prefix}-delay_minutes": "2",
        f"{prefix}-contact_method": method.pk,
    }
    assert web_bob.post(f"/profile/rules/{rule.pk}/", changed).status_code == 302
    rule.refresh_from_db()
    assert (rule.urgency, rule.delay_minutes) == ("high", 2)
    assert web_bob.post(f"/profile/rules/{rule.pk}/delete/").status_code == 302
    assert not NotificationRule.objects.exists()
    actions = list(
        AuditEntry.objects.filter(object_type="oncall.notificationrule")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["created", "updated", "deleted"]


def test_a_rule_refuses_an_unverified_or_foreign_method_and_duplicates(web_bob, bob, alice):
    method = verified(bob)
    unverified = ContactMethod.objects.create(user=bob, kind="email", address="bob@example.com")
    theirs = verified(alice)
    for other in (unverified, theirs):
        response = web_bob.post(
            "/profile/rules/",
            {
                "new-rule-urgency": "high",
                "new-rule-delay_minutes": "0",
                "new-rule-contact_method": other.pk,
            },
        )
        assert response.status_code == 400
        assert list(response.context["rule_form"].errors) == ["contact_method"]
    data = {
        "new-rule-urgency": "high",
        "new-rule-delay_minutes": "0",
        "new-rule-contact_method": method.pk,
    }
    web_bob.post("/profile/rules/", data)
    response = web_bob.post("/profile/rules/", data)
    assert response.status_code == 400
    assert response.context["rule_form"].non_field_errors() == ["you already have this rule"]
    assert b"you already have this rule" in response.content
    assert NotificationRule.objects.count() == 1


def test_a_rule_delay_is_bounded(web_bob, bob):
    method = verified(bob)
    response = web_bob.post(
        "/profile/rules/",
        {
            "new-rule-urgency": "high",
            "new-rule-delay_minutes": "-1",
            "new-rule-contact_method": method.pk,
        },
    )
    assert response.status_code == 400
    assert response.context["rule_form"].errors == {
        "delay_minutes": ["Ensure this value is greater than or equal to 0."]
    }


def test_an_observer_cannot_add_rules(web_charlie, charlie):
    method = verified(charlie)
    data = {
        "new-rule-urgency": "high",
        "new-rule-delay_minutes": "0",
        "new-rule-contact_method": method.pk,
    }
    assert web_charlie.post("/profile/rules/", data).status_code == 403


# --- settings ---------------------------------------------------------------------------------


def test_an_observer_sets_time_zone_and_quiet_hours(web_charlie, charlie):
    data = {"time_zone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:00"}
    response = web_charlie.post("/profile/settings/", data)
    assert response.status_code == 302
    prefs = PersonSettings.objects.get(user=charlie)
    assert (prefs.time_zone, prefs.quiet_start, prefs.quiet_end) == (
        "Europe/Berlin",
        time(22),
        time(7),
    )


def test_bad_settings_are_shown_next_to_the_field(web_bob, bob):
    response = web_bob.post("/profile/settings/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert response.context["settings_form"].errors == {
        "time_zone": ["'Mars/Olympus' is not an IANA time zone, like Europe/Berlin"]
    }
    response = web_bob.post("/profile/settings/", {"time_zone": "UTC", "quiet_start": "22:00"})
    assert response.status_code == 400
    assert response.context["settings_form"].non_field_errors() == [
        "quiet hours need both quiet_start and quiet_end, or neither"
    ]
    assert PersonSettings.objects.get(user=bob).quiet_start is None


# --- API tokens -------------------------------------------------------------------------------


def test_a_token_secret_is_shown_once_then_never(web_charlie, charlie):
    response = web_charlie.post("/profile/tokens/", {"name": "ci"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = response.context["secret"]
    assert secret.encode() in response.content
    token = ApiToken.objects.get(user=charlie)
    assert (token.name, token.prefix) == ("ci", secret[:10])
    # The secret works, and the profile never shows it again: only its name and prefix.
    assert (
        Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").json()["username"]
        == "charlie"
    )
    later = web_charlie.get(PROFILE).content.decode()
    assert secret not in later
    assert f"<code>{token.prefix}…</code>" in later and "<td>ci</td>" in later


def test_revoking_a_token_stops_it(web_bob, bob):
    token, secret = create_api_token(bob, name="old")
    assert web_bob.post(f"/profile/tokens/{token.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert b"<td>old</td>" not in web_bob.get(PROFILE).content


def test_a_token_needs_a_name(web_bob):
    response = web_bob.post("/profile/tokens/", {"name": ""})
    assert response.status_code == 400
    assert response.context["token_form"].errors == {"name": ["This field is required."]}
    assert not ApiToken.objects.exists()


# --- iCal -------------------------------------------------------------------------------------


def test_rotating_the_ical_url_changes_it_and_kills_the_old_one(web_charlie, charlie):
    before = web_charlie.get(PROFILE).context["ical_url"]
    assert Client().get(before.removeprefix("http://127.0.0.1:8000")).status_code == 200
    response = web_charlie.post("/profile/ical/rotate/", follow=True)
    after = response.context["ical_url"]
    assert after != before and after.startswith("http://127.0.0.1:8000/oncall/ical/person/")
    assert after.encode() in response.content
    assert Client().get(before.removeprefix("http://127.0.0.1:8000")).status_code == 404
    assert Client().get(after.removeprefix("http://127.0.0.1:8000")).status_code == 200


def test_an_email_is_verified_with_the_code_mailed_to_it_and_tested_by_mail(
    web_bob, bob, mailoutbox
):
    response = web_bob.post(
        "/profile/contact-methods/", {"kind": "email", "address": "Bob@Example.COM"}
    )
    assert response.status_code == 302
    method = ContactMethod.objects.get(user=bob)
    assert method.address == "Bob@example.com"
    web_bob.post(f"/profile/contact-methods/{method.pk}/send-code/")
    [mail] = mailoutbox
    assert (mail.to, mail.subject) == (["Bob@example.com"], "Muster verification code")
    code = re.search(r"code is (\d{6})", mail.body)[1]
    web_bob.post(f"/profile/contact-methods/{method.pk}/verify/", {"code": code})
    assert ContactMethod.objects.get(pk=method.pk).is_verified
    web_bob.post(f"/profile/contact-methods/{method.pk}/test/")
    assert (mailoutbox[1].subject, mailoutbox[1].to) == ("Muster test page", ["Bob@example.com"])
    assert "this is how a page reaches you by email" in mailoutbox[1].body


def test_a_rule_change_that_fails_is_shown_on_that_rule(web_bob, bob):
    method = verified(bob)
    rule = NotificationRule.objects.create(
        user=bob, urgency="high", delay_minutes=0, contact_method=method
    )
    NotificationRule.objects.create(user=bob, urgency="low", delay_minutes=0, contact_method=method)
    prefix = f"rule-{rule.pk}"
    response = web_bob.post(
        f"/profile/rules/{rule.pk}/",
        {
            f"{prefix}-urgency": "low",
            f"{prefix}-delay_minutes": "0",
            f"{prefix}-contact_method": method.pk,
        },
    )
    assert response.status_code == 400
    [shown] = [r for r in response.context["rules"] if r.pk == rule.pk]
    assert shown.form.non_field_errors() == ["you already have this rule"]
    assert NotificationRule.objects.get(pk=rule.pk).urgency == "high"

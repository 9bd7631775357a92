"""The dev outbox page: what the console channel "sent" instead of Twilio."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from incidents import opening
from incidents.models import Source
from oncall import delivery, paging, people
from oncall.channels import registry
from oncall.models import (
    ContactKind,
    ContactMethod,
    NotificationRule,
    OutboxKind,
    OutboxMessage,
    Page,
    PageStatus,
)
from oncall.testpage import send_test_page

pytestmark = pytest.mark.django_db

BOB_PHONE = "+14155550100"


@pytest.fixture
def incident(service):
    return opening.open_incident(
        service, title="Checkout latency over 2s", severity=1, source=Source.ALERT
    )


def console_page(incident, person, *, kind="sms", body="", address=BOB_PHONE) -> OutboxMessage:
    """Return the outbox's copy of a page to `person` the console channel sent."""
    method, _ = ContactMethod.objects.get_or_create(
        user=person, kind=kind, address=address, defaults={"verified_at": timezone.now()}
    )
    page = Page.objects.create(
        incident=incident,
        person=person,
        contact_method=method,
        channel="console",
        address=address,
        send_after=timezone.now(),
        status=PageStatus.SENT,
        body=body,
    )
    return OutboxMessage.objects.create(
        kind=OutboxKind.PAGE, page=page, person=person, channel=kind, address=address, body=body
    )


def row_of(html: str, message: OutboxMessage) -> str:
    row = html[html.index(f'<tr id="outbox-{message.pk}" data-kind="{message.kind}">') :]
    return row[: row.index("</tr>")]


def test_the_outbox_needs_login():
    response = Client().get("/outbox/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/outbox/")


def test_a_page_the_engine_sends_through_the_console_is_listed(web_charlie, incident, bob, alice):
    method = ContactMethod.objects.create(
        user=bob, kind="sms", address=BOB_PHONE, verified_at=timezone.now()
    )
    NotificationRule.objects.create(
        user=bob, urgency=incident.urgency, delay_minutes=0, contact_method=method
    )
    [page] = paging.page_person(incident, bob, by=alice, source=Source.WEB)
    assert delivery.deliver(page.pk) == "sent"
    page.refresh_from_db()
    [sent] = OutboxMessage.objects.all()
    # Observers read the outbox, as they read /api/v1/outbox/.
    response = web_charlie.get("/outbox/")
    assert response.status_code == 200
    html = response.content.decode()
    row = row_of(html, sent)
    assert (
        f'<td>page for <a href="/incidents/{incident.number}/">#{incident.number}</a></td>' in row
    )
    # Charlie is an observer: bob's number is masked for him (owner and admins read it).
    assert '<td>bob<br><code class="small">+14•••••••00</code></td>' in row
    assert BOB_PHONE not in row
    assert "<td>SMS</td>" in row
    assert page.body.startswith(f"Muster #{incident.number} SEV1 checkout: Checkout latency")
    assert escape(page.body.split(" Room: ")[0]) in row
    room = f"http://127.0.0.1:8000/rooms/incident/{incident.number}/"
    assert f'Room: <a href="{room}" rel="nofollow">{room}</a>' in row
    assert '<span class="badge">sent</span>' in row
    assert f"{sent.created_at:%Y-%m-%d %H:%M:%S}" in row
    assert "Twilio is not configured" in html


def test_a_new_users_verification_code_is_listed(web_bob, bob):
    method = people.add_contact_method(bob, ContactKind.SMS, BOB_PHONE)
    people.start_verification(method)
    [sent] = OutboxMessage.objects.all()
    html = web_bob.get("/outbox/").content.decode()
    row = row_of(html, sent)
    assert "<td>verification code</td>" in row
    assert f'<td>bob<br><code class="small">{BOB_PHONE}</code></td>' in row
    assert "<td>SMS</td>" in row
    code = sent.body.split(" is ")[1][:6]
    assert f"<td>Your Muster verification code is {code}. It expires in 10 minutes.</td>" in row
    # What the outbox shows is the code that verifies the number.
    assert people.confirm_verification(method, code).is_verified


def test_someone_elses_verification_code_is_masked(web_charlie, web_alice, bob):
    method = people.add_contact_method(bob, ContactKind.SMS, BOB_PHONE)
    people.start_verification(method)
    [sent] = OutboxMessage.objects.all()
    code = sent.body.split(" is ")[1][:6]
    observer = row_of(web_charlie.get("/outbox/").content.decode(), sent)
    assert code not in observer and "Your Muster verification code is ••••••." in observer
    admin = row_of(web_alice.get("/outbox/").content.decode(), sent)
    assert code in admin  # admins help people who cannot verify


def test_a_test_page_is_listed(web_bob, bob):
    method = ContactMethod.objects.create(
        user=bob, kind=ContactKind.VOICE, address=BOB_PHONE, verified_at=timezone.now()
    )
    send_test_page(method, by=bob)
    [sent] = OutboxMessage.objects.all()
    row = row_of(web_bob.get("/outbox/").content.decode(), sent)
    assert "<td>test page</td>" in row and "<td>voice call</td>" in row
    body = (
        "Muster test page for bob: this is how a page reaches you by phone call. No action needed."
    )
    assert f"<td>{body}</td>" in row
    # A test page is no page: no page status.
    assert '<td class="hide-narrow"></td>' in row


def test_pages_codes_and_test_pages_are_listed_together_newest_first(web_bob, incident, bob):
    page = console_page(incident, bob, body="first")
    method = ContactMethod.objects.get(user=bob, kind="sms")
    send_test_page(method, by=bob)
    registry.send_verification_code(method, "123456")
    code, test = OutboxMessage.objects.exclude(pk=page.pk)
    response = web_bob.get("/outbox/")
    assert [m.pk for m in response.context["outbox_messages"]] == [code.pk, test.pk, page.pk]
    html = response.content.decode()
    assert html.index('data-kind="verification"') < html.index('data-kind="test"')
    assert html.index('data-kind="test"') < html.index('data-kind="page"')


def test_a_voice_page_reads_as_the_call_would(web_bob, incident, bob):
    console_page(incident, bob, kind="voice", body="Muster alert. Incident")
    html = web_bob.get("/outbox/").content.decode()
    assert "<td>voice call</td>" in html and "<td>Muster alert. Incident</td>" in html


def test_the_outbox_pages_by_50_with_older_links(
    web_bob, incident, bob, alice, charlie, django_assert_max_num_queries
):
    people_ = [alice, bob, charlie]
    messages = [
        console_page(incident, people_[i % 3], body=f"page {i}", address=f"+1415555{i:04d}")
        for i in range(60)
    ]
    for i in range(60):
        registry.send_verification_code(ContactMethod.objects.get(address=f"+1415555{i:04d}"), "1")
    newest_first = list(OutboxMessage.objects.values_list("pk", flat=True))
    assert len(newest_first) == 120 and newest_first[-1] == messages[0].pk
    # Session, user, one query for the rows with their page, incident and person.
    with django_assert_max_num_queries(3):
        first = web_bob.get("/outbox/")
    assert [m.pk for m in first.context["outbox_messages"]] == newest_first[:50]
    assert first.context["older"] == newest_first[49]
    assert b'hx-trigger="every 5s"' in first.content
    assert f'href="/outbox/?before={newest_first[49]}" rel="next">Older<'.encode() in first.content
    with django_assert_max_num_queries(3):
        second = web_bob.get(f"/outbox/?before={newest_first[49]}")
    assert [m.pk for m in second.context["outbox_messages"]] == newest_first[50:100]
    assert b'data-kind="page"' in second.content and b'data-kind="verification"' in second.content
    # An older page does not poll: it would jump back to the newest rows while being read.
    assert b"hx-trigger" not in second.content
    last = web_bob.get(f"/outbox/?before={newest_first[99]}")
    assert [m.pk for m in last.context["outbox_messages"]] == newest_first[100:]
    assert last.context["older"] is None
    assert b"Older<" not in last.content and b">Newest<" in last.content


def test_a_junk_before_is_the_first_page(web_bob, incident, bob):
    message = console_page(incident, bob, body="hello")
    response = web_bob.get("/outbox/?before=abc")
    assert response.status_code == 200
    assert [m.pk for m in response.context["outbox_messages"]] == [message.pk]


def test_htmx_polling_gets_only_the_rows(web_bob, incident, bob):
    message = console_page(incident, bob, body="hello pager")
    response = web_bob.get("/outbox/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<tbody id="outbox-rows" hx-get="/outbox/"')
    assert f'<tr id="outbox-{message.pk}" data-kind="page">' in html and "<h1>" not in html


def test_an_empty_outbox_says_so(web_bob):
    assert b"Nothing in the outbox." in web_bob.get("/outbox/").content


def test_with_twilio_configured_the_page_says_the_outbox_is_not_in_use(web_bob, settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "a1" * 16
    settings.TWILIO_AUTH_TOKEN = "auth-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    response = web_bob.get("/outbox/")
    assert b"Twilio is configured: SMS and calls go out through Twilio" in response.content


def test_the_outbox_is_read_only(web_alice):
    assert web_alice.post("/outbox/").status_code == 405

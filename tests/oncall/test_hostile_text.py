"""Text from alerts never breaks a page: titles are one line, mail headers are clean, and a
channel that fails in a way nobody foresaw moves on to the next contact method at once."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from incidents import opening
from incidents.models import EntryKind, Incident, Source
from oncall import delivery, escalation, messages
from oncall.channels import registry
from oncall.channels.base import DeliveryError
from oncall.channels.registry import CHANNELS
from oncall.models import ContactKind, ContactMethod, NotificationRule, Page, PageStatus
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.system import wait_for
from tests.oncall.builders import make_policy
from warroom import status_updates
from warroom.commands.parser import parse
from warroom.execute import run
from warroom.models import Subscription
from warroom.tasks import mail_status_update

MULTI_LINE = "Disk full on db-2\nfilesystem /var at 99%\r\nBcc: victim@example.com"


def test_an_alerts_multi_line_summary_makes_a_one_line_title(post_json, make_integration):
    integration = make_integration("generic")
    response = post_json(
        f"/integrations/generic/{integration.token}/",
        {"summary": MULTI_LINE + "\x07\u2028end", "severity": "critical"},
    )
    assert response.status_code == 200
    incident = Incident.objects.get()
    assert incident.title == (
        "Disk full on db-2 filesystem /var at 99% Bcc: victim@example.com end"
    )


def test_a_title_with_line_breaks_still_mails_one_clean_subject(service, bob):
    # An incident from before titles were cleaned, or written by anything that skips the verb.
    incident = Incident.objects.create(
        number=4242, title=MULTI_LINE, service=service, severity=1, triggered_at=timezone.now()
    )
    message = messages.for_incident(incident)
    assert "\n" not in message.subject and "\r" not in message.subject
    page = Page.objects.create(
        incident=incident,
        person=bob,
        channel="email",
        address="bob@example.com",
        send_after=timezone.now(),
        manual=True,
    )
    assert delivery.deliver(page.pk) == "sent"
    [sent] = mail.outbox
    assert sent.subject.startswith("[Muster] #4242 SEV1 checkout: Disk full on db-2 filesystem")
    assert "Bcc" not in sent.message()
    assert sent.bcc == []


def test_an_unexpected_channel_failure_falls_back_at_once_and_is_never_unknown(
    service, bob, monkeypatch
):
    email = ContactMethod.objects.create(
        user=bob, kind=ContactKind.EMAIL, address="bob@example.com", verified_at=timezone.now()
    )
    sms = ContactMethod.objects.create(
        user=bob, kind=ContactKind.SMS, address="+14155550101", verified_at=timezone.now()
    )
    NotificationRule.objects.create(user=bob, urgency="high", delay_minutes=0, contact_method=email)
    NotificationRule.objects.create(user=bob, urgency="high", delay_minutes=10, contact_method=sms)
    make_policy("checkout", {"users": [bob]}, service=service)
    incident = opening.open_incident(service, title="Disk full", severity=1, source="alert")
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)
    by_mail, by_sms = Page.objects.order_by("send_after")

    def broken(delivery, message):
        raise KeyError("a bug in a channel")

    monkeypatch.setattr(CHANNELS["email"], "send", broken)
    assert delivery.deliver(by_mail.pk) == "failed"
    by_mail.refresh_from_db()
    by_sms.refresh_from_db()
    assert by_mail.status == PageStatus.FAILED and "KeyError" in by_mail.error
    assert by_sms.send_after <= timezone.now()  # the next method, now rather than in 10 min
    assert delivery.deliver(by_sms.pk) == "sent"


@pytest.mark.parametrize("title", [MULTI_LINE, "ok"])
def test_a_status_update_mails_subscribers_whatever_the_title(
    title, service, bob, alice, django_capture_on_commit_callbacks
):

    incident = Incident.objects.create(
        number=4343, title=title, service=service, severity=2, triggered_at=timezone.now()
    )
    Subscription.objects.create(incident=incident, user=alice, channel=Subscription.EMAIL)
    with sent_tasks() as tasks, django_capture_on_commit_callbacks(execute=True):
        command = parse(f"status {incident.number} failover done", surface="chat")
        reply = run(command, user=bob, source=Source.CHAT)
        assert reply.changed, reply
    [task] = named(tasks, status_updates.MAIL_TASK)
    mail_status_update(*task.args)  # as a worker runs it: on a thread for the mail server
    wait_for(lambda: mail.outbox, timeout=10, what="the status mail")
    [sent] = mail.outbox
    assert sent.to == ["alice@example.com"] and "\n" not in sent.subject


def test_an_address_with_a_line_break_is_refused_not_mailed(bob):
    method = ContactMethod.objects.create(
        user=bob, kind=ContactKind.EMAIL, address="bob@example.com\r\nBcc: x@example.com"
    )
    with pytest.raises(DeliveryError) as refused:
        registry.send_verification_code(method, "123456")
    assert refused.value.permanent
    assert mail.outbox == []

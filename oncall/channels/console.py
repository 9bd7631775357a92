"""The console outbox: the embedded default when Twilio is not configured.

"Sending" records the message as an OutboxMessage row (listed at /outbox/ and /api/v1/outbox/)
and logs it to the `muster.outbox` logger, at WARNING so `./musterctl up` prints it. Pages,
verification codes and test pages all land here; only a page has a Page row (the others come
with no `page_id`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError

from oncall.channels.base import Delivery, DeliveryError, Message
from oncall.models import ContactKind, OutboxKind, OutboxMessage

log = logging.getLogger("muster.outbox")


def _kind(delivery: Delivery, message: Message) -> str:
    if delivery.page_id is not None:
        return OutboxKind.PAGE
    return message.purpose if message.purpose in OutboxKind.values else OutboxKind.OTHER


class ConsoleChannel:
    name = "console"
    provider = ""

    def send(self, delivery: Delivery, message: Message) -> str:
        """Record and print the message; return "console-<page id>" ("outbox-<id>" for a
        message that is no page)."""
        kind = delivery.kind
        what = _kind(delivery, message)
        if kind == ContactKind.VOICE:
            text = message.speech
        elif kind == ContactKind.EMAIL:
            text = f"{message.subject}\n\n{message.body}"
        else:
            text = message.sms
        person = delivery.person
        who = person.get_username() if person is not None else "?"
        # A voice number gets its verification code by SMS, as Twilio would send it.
        channel = ContactKind.SMS if what == OutboxKind.VERIFICATION and kind != "email" else kind
        try:
            sent = OutboxMessage.objects.create(
                kind=what,
                page_id=delivery.page_id,
                person=person,
                channel=channel,
                address=delivery.address,
                body=text,
            )
            # Older messages go as new ones arrive; a page's own row (status, body) stays.
            keep = settings.OUTBOX_KEEP
            OutboxMessage.objects.filter(pk__lte=sent.pk - keep).delete()
        except DatabaseError as exc:
            raise DeliveryError(f"the console outbox could not record the message: {exc}") from exc
        if what == OutboxKind.VERIFICATION:
            # A code is a credential: listed for its owner (and admins), never in a log.
            log.warning(
                "verification code for %s (%s): in the outbox", who, delivery.address or "-"
            )
        else:
            log.warning(
                "page %s to %s (%s %s): %s",
                delivery.page_id or 0,
                who,
                kind,
                delivery.address or "-",
                text,
            )
        return (
            f"console-{delivery.page_id}" if delivery.page_id is not None else f"outbox-{sent.pk}"
        )

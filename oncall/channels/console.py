"""The console outbox: the embedded default when Twilio is not configured.

"Sending" records the message as an OutboxMessage row (listed at /outbox/ and /api/v1/outbox/)
and logs it to the `muster.outbox` logger, at WARNING so `./musterctl up` prints it. Pages,
verification codes and test pages all land here; only a page has a Page row (the others come
with a stand-in whose pk is 0).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError

from oncall.channels.base import DeliveryError, Message
from oncall.models import ContactKind, OutboxKind, OutboxMessage

if TYPE_CHECKING:
    from oncall.models import Page

log = logging.getLogger("muster.outbox")


def _kind(page: Page, message: Message) -> str:
    if page.pk:
        return OutboxKind.PAGE
    return message.purpose if message.purpose in OutboxKind.values else OutboxKind.OTHER


class ConsoleChannel:
    name = "console"

    def send(self, page: Page, message: Message) -> str:
        """Record and print the message; return "console-<page id>" ("outbox-<id>" for a
        message that is no page)."""
        method = getattr(page, "contact_method", None)
        kind = method.kind if method is not None else ContactKind.SMS
        what = _kind(page, message)
        if kind == ContactKind.VOICE:
            text = message.speech
        elif kind == ContactKind.EMAIL:
            text = f"{message.subject}\n\n{message.body}"
        else:
            text = message.sms
        person = getattr(page, "person", None)
        who = person.get_username() if person is not None else "?"
        # A voice number gets its verification code by SMS, as Twilio would send it.
        channel = ContactKind.SMS if what == OutboxKind.VERIFICATION and kind != "email" else kind
        try:
            sent = OutboxMessage.objects.create(
                kind=what,
                page_id=page.pk or None,
                person=person,
                channel=channel,
                address=page.address or "",
                body=text,
            )
            # Older messages go as new ones arrive; a page's own row (status, body) stays.
            keep = settings.OUTBOX_KEEP
            OutboxMessage.objects.filter(pk__lte=sent.pk - keep).delete()
        except DatabaseError as exc:
            raise DeliveryError(f"the console outbox could not record the message: {exc}") from exc
        if what == OutboxKind.VERIFICATION:
            # A code is a credential: listed for its owner (and admins), never in a log.
            log.warning("verification code for %s (%s): in the outbox", who, page.address or "-")
        else:
            log.warning("page %s to %s (%s %s): %s", page.pk, who, kind, page.address or "-", text)
        return f"console-{page.pk}" if page.pk else f"outbox-{sent.pk}"

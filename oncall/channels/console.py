"""The console outbox: the embedded default when Twilio is not configured.

"Sending" logs the page to the `muster.outbox` logger, at WARNING so `./musterctl up` prints it;
the Page row itself is the outbox entry (listed by the API).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from oncall.channels.base import Message

if TYPE_CHECKING:
    from oncall.models import Page

log = logging.getLogger("muster.outbox")


class ConsoleChannel:
    name = "console"

    def send(self, page: Page, message: Message) -> str:
        """Print the page; return "console-<page id>"."""
        method = getattr(page, "contact_method", None)
        kind = method.kind if method is not None else "sms"
        text = message.speech if kind == "voice" else message.sms
        person = getattr(page, "person", None)
        who = person.get_username() if person is not None else "?"
        log.warning("page %s to %s (%s %s): %s", page.pk, who, kind, page.address or "-", text)
        return f"console-{page.pk}"

"""Email pages through Django's mail backends (EMAIL_BACKEND: console, SMTP, or locmem in tests)."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail

from oncall.channels.base import DeliveryError, Message

if TYPE_CHECKING:
    from oncall.models import Page


class EmailChannel:
    name = "email"

    def send(self, page: Page, message: Message) -> str:
        """Mail the page; return "email-<page id>"."""
        try:
            send_mail(
                message.subject,
                message.body,
                settings.DEFAULT_FROM_EMAIL,
                [page.address],
                fail_silently=False,
            )
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"the mail server refused {page.address}: {exc}", permanent=True
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"mail not sent: {exc}") from exc
        return f"email-{page.pk}"

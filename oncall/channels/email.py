"""Email through Django's mail backends (EMAIL_BACKEND: SMTP, console, or locmem in tests).

The one way Muster sends mail: pages, and the war room's status updates. Headers are cleaned
here, so text from an alert can never break a message (or add headers to it).
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import BadHeaderError, send_mail
from django.core.validators import validate_email

from core.text import one_line
from oncall.channels.base import Delivery, DeliveryError, Message

SUBJECT_MAX = 200


def send_email(address: str, subject: str, body: str) -> None:
    """Mail one person: the subject on one line, at most SUBJECT_MAX characters.

    Raises DeliveryError: permanent when the server refuses the address or the message cannot
    be built, transient when the server cannot be reached.
    """
    try:
        validate_email(address)
    except ValidationError as exc:
        raise DeliveryError(f"{address!r} is not an email address", permanent=True) from exc
    try:
        send_mail(
            one_line(subject)[:SUBJECT_MAX],
            body,
            settings.DEFAULT_FROM_EMAIL,
            [address],
            fail_silently=False,
        )
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"the mail server refused {address}: {exc}", permanent=True) from exc
    except (BadHeaderError, ValueError, UnicodeError) as exc:
        raise DeliveryError(f"mail could not be built: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"mail not sent: {exc}") from exc


class EmailChannel:
    name = "email"
    provider = "mail"

    def send(self, delivery: Delivery, message: Message) -> str:
        """Mail the message; return "email-<page id>" ("email-0" for a message that is no page)."""
        send_email(delivery.address, message.subject, message.body)
        return f"email-{delivery.page_id or 0}"

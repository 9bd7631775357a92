"""The channel registry: every paging channel by name, and which one reaches a contact method
now (Twilio and a mail server when configured, else the console outbox)."""

from __future__ import annotations

from django.conf import settings

from oncall.channels.base import Channel, Delivery, Message
from oncall.channels.console import ConsoleChannel
from oncall.channels.email import EmailChannel
from oncall.channels.twilio import SmsChannel, VoiceChannel
from oncall.models import ContactKind, ContactMethod

CHANNELS: dict[str, Channel] = {
    "sms": SmsChannel(),
    "voice": VoiceChannel(),
    "email": EmailChannel(),
    "console": ConsoleChannel(),
}


def twilio_configured() -> bool:
    """Return whether Twilio's account SID, auth token and sender are all set."""
    return bool(
        settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER
    )


# Django's mail backends that reach nobody: the console prints, the file backend writes files,
# the dummy drops. (locmem is the tests' outbox; any other backend is taken to deliver.)
UNDELIVERED_MAIL = frozenset(
    {
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
    }
)


def mail_configured() -> bool:
    """Return whether email goes to a mail server (EMAIL_URL, EMAIL_HOST or a backend)."""
    return settings.EMAIL_BACKEND not in UNDELIVERED_MAIL


def channel_for(kind: str) -> str:
    """Return the channel that reaches a contact method of `kind` now: SMS and voice go through
    Twilio when it is configured, email by mail when a mail server is; otherwise each goes to
    the console outbox, where the page (or code) is listed instead of sent."""
    if kind in ("sms", "voice"):
        return kind if twilio_configured() else "console"
    if kind == "email":
        return kind if mail_configured() else "console"
    if kind == "console":
        return kind
    raise ValueError(f"no channel for contact kind {kind!r}")


def console_fallbacks() -> list[str]:
    """Return the contact kinds that reach only the console outbox now (sms, voice, email)."""
    return [kind for kind in ContactKind.values if channel_for(kind) == "console"]


def send_verification_code(method: ContactMethod, code: str) -> None:
    """Send a contact-method verification code through that method's own channel (a voice
    number gets it by SMS). It is not a page: no status callback can match it."""
    text = f"Your Muster verification code is {code}. It expires in 10 minutes."
    kind = channel_for(method.kind if method.kind != ContactKind.VOICE else ContactKind.SMS)
    CHANNELS[kind].send(
        Delivery(address=method.address, kind=method.kind, person=method.user),
        Message(
            sms=text,
            subject="Muster verification code",
            body=text,
            speech=text,
            purpose="verification",
        ),
    )

"""Paging channels: one module per provider, each with `send(page, message) -> provider id`
raising `DeliveryError(permanent=…)`, and the registry the engine picks them from."""

from __future__ import annotations

from django.conf import settings

from oncall.channels.base import Channel
from oncall.channels.console import ConsoleChannel
from oncall.channels.email import EmailChannel
from oncall.channels.twilio import SmsChannel, VoiceChannel

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


def channel_for(kind: str) -> str:
    """Return the channel that reaches a contact method of `kind` now: SMS and voice go through
    Twilio when it is configured and to the console outbox otherwise; email by email."""
    if kind in ("sms", "voice"):
        return kind if twilio_configured() else "console"
    if kind in ("email", "console"):
        return kind
    raise ValueError(f"no channel for contact kind {kind!r}")

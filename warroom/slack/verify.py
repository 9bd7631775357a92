"""Slack's v0 request signature: every request to /slack/... carries one, over its raw body.

A request is accepted once: its signature is remembered (warroom.replay) in the transaction that
acts, so a captured request replayed within Slack's 5-minute window is refused as well.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from slack_sdk.signature import SignatureVerifier

from warroom import replay


def configured() -> bool:
    """Whether the Slack app is set up (a bot token and a signing secret)."""
    return bool(settings.SLACK_BOT_TOKEN and settings.SLACK_SIGNING_SECRET)


def signature(request: HttpRequest) -> str:
    return request.headers.get("X-Slack-Signature", "")


def is_signed(request: HttpRequest) -> bool:
    """Whether `request` carries Slack's valid signature with a timestamp of the last 5 minutes."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not timestamp or not signature(request):
        return False
    verifier = SignatureVerifier(settings.SLACK_SIGNING_SECRET)
    try:
        return verifier.is_valid(request.body, timestamp, signature(request))
    except ValueError:  # a timestamp that is not a number
        return False


def first_time(request: HttpRequest) -> bool:
    """Remember this signed request; False if it was seen before (a replay). Call it inside
    the transaction that acts."""
    return replay.first_time(replay.slack_request_key(signature(request)))

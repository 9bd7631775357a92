"""What an incident channel's outgoing webhook posts to `/mattermost/events/`: which incident
channel it is (its `channel_id`, and the webhook's `token` compared in constant time with the
one Mattermost gave when Muster made the webhook), and the message written there.

Mattermost posts JSON (`content_type=application/json`, as Muster asks) or, by default, a form.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from django.http import HttpRequest

from warroom.mattermost.slash import FIELD_MAX, BadPayload
from warroom.models import ChatChannel, ChatChannelState, ChatPlatform

FORM = "application/x-www-form-urlencoded"
# Compared when there is no such channel, so an unknown channel takes as long as a wrong token.
_NO_TOKEN = "x" * 26


@dataclass(frozen=True)
class ChannelPost:
    """A message someone wrote in an incident's Mattermost channel."""

    channel_id: str
    user_id: str
    post_id: str
    text: str
    user_name: str = ""


def fields(request: HttpRequest) -> dict[str, str] | None:
    """Return the payload's string fields, from a JSON object or a form; None for a body that
    is neither."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        return {key: value for key, value in body.items() if isinstance(value, str)}
    if request.content_type == FORM:
        return {key: request.POST.get(key, "") for key in request.POST}
    return None


def incident_channel(channel_id: str) -> ChatChannel | None:
    """Return the ready incident channel on Mattermost with id `channel_id`, if there is one."""
    if not channel_id or len(channel_id) > FIELD_MAX:
        return None
    return (
        ChatChannel.objects.select_related("incident")
        .filter(
            platform=ChatPlatform.MATTERMOST, channel_id=channel_id, state=ChatChannelState.READY
        )
        .first()
    )


def hook_channel(payload: dict[str, str]) -> ChatChannel | None:
    """Return the incident channel whose outgoing webhook sent `payload`, or None when the
    channel is not a ready incident channel or the token is not its webhook's."""
    channel = incident_channel(payload.get("channel_id", ""))
    expected = channel.hook_token if channel is not None and channel.hook_token else _NO_TOKEN
    given = payload.get("token", "")
    matches = hmac.compare_digest(given.encode(), expected.encode())
    if channel is None or not channel.hook_token or not matches:
        return None
    return channel


def channel_post(payload: dict[str, str]) -> ChannelPost:
    """Return the message in a webhook's payload; raise BadPayload if it is not one."""
    if any(len(value) > FIELD_MAX for key, value in payload.items() if key != "text"):
        raise BadPayload("A field is too long.")
    missing = [name for name in ("user_id", "post_id") if not payload.get(name)]
    if missing:
        raise BadPayload(f"Missing fields: {', '.join(missing)}.")
    return ChannelPost(
        channel_id=payload.get("channel_id", ""),
        user_id=payload["user_id"],
        post_id=payload["post_id"],
        text=payload.get("text", ""),
        user_name=payload.get("user_name", ""),
    )

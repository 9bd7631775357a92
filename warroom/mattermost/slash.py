"""The slash command's request: whether Mattermost is configured, whether the request carries
one of the slash commands' tokens, and what it asks (Mattermost's payload, form-encoded or
JSON).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

# Every field is an id, a name, a URL or the text: none is longer than this.
FIELD_MAX = 2_000


class BadPayload(ValueError):
    """The request is not a slash command's payload; the message says what is wrong."""


@dataclass(frozen=True)
class SlashCommand:
    """What Mattermost posts for `/muster <text>`."""

    user_id: str
    text: str
    user_name: str = ""
    command: str = ""
    channel_id: str = ""
    team_id: str = ""
    response_url: str = ""
    trigger_id: str = ""


def configured() -> bool:
    """Whether the slash command is on: Mattermost's URL, the bot's token and a command's
    token are all set."""
    return bool(
        settings.MATTERMOST_URL
        and settings.MATTERMOST_BOT_TOKEN
        and any(settings.MATTERMOST_COMMAND_TOKENS)
    )


def fields(request: HttpRequest) -> dict[str, str] | None:
    """Return the payload's string fields, from a form or a JSON object; None if the body is
    neither."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        return {key: value for key, value in body.items() if isinstance(value, str)}
    return {key: request.POST.get(key, "") for key in request.POST}


def authentic(payload: dict[str, str] | None, authorization: str) -> bool:
    """Whether the request carries a slash command's token, as the `token` field or as
    `Authorization: Token …`; each configured token is compared in constant time."""
    scheme, _, header_token = authorization.strip().partition(" ")
    presented = [(payload or {}).get("token", "")]
    if scheme.lower() == "token":
        presented.append(header_token.strip())
    found = False
    for token in settings.MATTERMOST_COMMAND_TOKENS:
        for given in presented:
            # Every pair is compared, so the time taken says nothing of which came close.
            found |= bool(given) and hmac.compare_digest(given.encode(), token.encode())
    return found


def slash_command(payload: dict[str, str] | None) -> SlashCommand:
    """Return the command in a payload; raise BadPayload if it is not one."""
    if payload is None:
        raise BadPayload("The body is neither a form nor a JSON object.")
    if any(len(value) > FIELD_MAX for key, value in payload.items() if key != "text"):
        raise BadPayload("A field is too long.")
    if not payload.get("user_id"):
        raise BadPayload("user_id is missing.")
    return SlashCommand(
        user_id=payload["user_id"],
        text=payload.get("text", ""),
        user_name=payload.get("user_name", ""),
        command=payload.get("command", ""),
        channel_id=payload.get("channel_id", ""),
        team_id=payload.get("team_id", ""),
        response_url=payload.get("response_url", ""),
        trigger_id=payload.get("trigger_id", ""),
    )

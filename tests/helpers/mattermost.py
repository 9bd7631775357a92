"""What Mattermost posts to Muster, built as its documentation shows: an incident channel's
outgoing webhook (`/mattermost/events/`) and a button's integration request
(`/mattermost/actions/`). The API v4 double itself is `tests.fakes.mattermost`."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from tests.fakes.mattermost import FakeUser, new_id
from warroom.models import ChatChannel

# The slash commands' tokens Muster is configured with, and its public URL, in the tests.
TOKENS = ["mmcommandtokenaaaaaaaaaaaaa", "mmcommandtokenbbbbbbbbbbbbb"]
PUBLIC = "https://muster.example.com"

EVENTS = "/mattermost/events/"
ACTIONS = "/mattermost/actions/"
COMMANDS = "/mattermost/commands/"


def slash_command(client: Any, user_id: str, text: str, *, channel_id: str | None = None) -> Any:
    """POST `/muster <text>` typed by `user_id` (in `channel_id`), as Mattermost sends it."""
    form = {
        "token": TOKENS[0],
        "channel_id": channel_id or new_id(),
        "team_id": new_id(),
        "user_id": user_id,
        "user_name": "bobby",
        "command": "/muster",
        "text": text,
        "response_url": "https://mattermost.example.com/hooks/commands/x",
        "trigger_id": new_id(),
    }
    return client.post(COMMANDS, urlencode(form), content_type="application/x-www-form-urlencoded")


def outgoing_webhook(
    channel: ChatChannel,
    user: FakeUser,
    text: str,
    *,
    post_id: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """The payload an outgoing webhook bound to `channel` posts for `user`'s message."""
    return {
        "token": channel.hook_token if token is None else token,
        "team_id": new_id(),
        "team_domain": "ops",
        "channel_id": channel.channel_id,
        "channel_name": channel.name,
        "timestamp": int(time.time() * 1000),
        "user_id": user.id,
        "user_name": user.username,
        "post_id": post_id or new_id(),
        "text": text,
        "trigger_word": "",
        "file_ids": "",
    }


def post_event(client: Any, payload: dict[str, Any], *, form: bool = False) -> Any:
    """POST a webhook payload to Muster as JSON (Muster's choice) or as a form (the default)."""
    if form:
        fields = {key: str(value) for key, value in payload.items()}
        return client.post(
            EVENTS, urlencode(fields), content_type="application/x-www-form-urlencoded"
        )
    return client.post(EVENTS, json.dumps(payload), content_type="application/json")


# The channel of the buttons the tests click, unless they say another.
BUTTONS_CHANNEL = "c" * 26


def button_click(
    user: FakeUser, context: Any, *, channel_id: str = BUTTONS_CHANNEL
) -> dict[str, Any]:
    """The integration request Mattermost posts when `user` clicks a button with `context`
    in `channel_id`."""
    return {
        "user_id": user.id,
        "user_name": user.username,
        "channel_id": channel_id,
        "channel_name": "inc-1-disk-full",
        "team_id": new_id(),
        "team_domain": "ops",
        "post_id": new_id(),
        "trigger_id": new_id(),
        "type": "",
        "data_source": "",
        "context": context,
    }


def post_click(client: Any, payload: Any) -> Any:
    return client.post(ACTIONS, json.dumps(payload), content_type="application/json")

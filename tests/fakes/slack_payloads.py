"""What Slack sends an app, built by the Slack double for inbound tests.

- `block_action_payload`: the `block_actions` interaction payload Slack posts to the app's
  Interactivity Request URL when someone clicks a Block Kit button (Slack's reference, "Interaction
  payloads > block_actions"): it arrives form-encoded, the JSON in one `payload` field
  (`interaction_form`), signed as every Slack request is (tests/helpers/slack.py);
- `message_event_payload`: an Events API `event_callback` envelope around a `message` event, as
  Slack posts it to the Events Request URL (JSON; `event_id`, `event_time`, `authorizations`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.fakes.slack_workspace import (
    API_APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    SlackChannel,
    SlackUser,
)


def interaction_form(payload: dict[str, Any]) -> dict[str, str]:
    """The form an interaction payload arrives in: `payload=<JSON>`."""
    return {"payload": json.dumps(payload)}


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"


class Payloads:
    users: dict[str, SlackUser]
    channels: dict[str, SlackChannel]
    posts: list[Any]
    response_url: Callable[[], str]

    def block_action_payload(
        self,
        user_id: str,
        channel_id: str,
        action_id: str,
        value: str,
        response_url: str | None = None,
        *,
        block_id: str = "",
        message_ts: str | None = None,
        text: str = "",
    ) -> dict[str, Any]:
        """A click on button `action_id` (its `value`) in a message of `channel_id` (the last
        message posted there, or the one at `message_ts`); `response_url` defaults to a new one
        of this fake's (read it back with `answers`)."""
        user = self.users.get(user_id)
        username = user.json()["name"] if user else user_id.lower()
        post = next(
            (
                p
                for p in reversed(self.posts)
                if p.channel == channel_id and (message_ts is None or p.ts == message_ts)
            ),
            None,
        )
        ts = message_ts or (post.ts if post else f"{time.time():.6f}")
        message = {"type": "message", "ts": ts, "user": BOT_USER_ID, "bot_id": BOT_ID}
        if post is not None:
            message.update(text=post.text, blocks=post.blocks or [])
        channel = self.channels.get(channel_id)
        action_ts = f"{time.time():.6f}"
        return {
            "type": "block_actions",
            "user": {"id": user_id, "username": username, "name": username, "team_id": TEAM_ID},
            "api_app_id": API_APP_ID,
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": _trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel.name if channel else "unknown"},
            "message": message,
            "state": {"values": {}},
            "response_url": response_url or self.response_url(),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id or uuid.uuid4().hex[:5],
                    "text": {"type": "plain_text", "text": text or action_id, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": action_ts,
                }
            ],
        }

    def message_event_payload(
        self,
        user: str,
        channel: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
    ) -> dict[str, Any]:
        """An `event_callback` carrying a `message` event: `user` wrote `text` in `channel`
        (a reply in a thread with `thread_ts`; a bot's message with `bot_id` and/or `subtype`
        "bot_message"; `user` may then be empty, as in Slack's bot_message events)."""
        ts = ts or f"{time.time():.6f}"
        known = self.channels.get(channel)
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "group" if known and known.is_private else "channel",
        }
        if user:
            event["user"] = user
        if thread_ts:
            event["thread_ts"] = thread_ts
        if bot_id:
            event["bot_id"] = bot_id
        if subtype:
            event["subtype"] = subtype
        return {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(float(ts)),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + uuid.uuid4().hex,
        }

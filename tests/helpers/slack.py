"""Requests as Slack sends them: form-encoded slash commands and JSON events, signed with
Slack's v0 scheme (HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the signing secret), the
scheme `slack_sdk.signature.SignatureVerifier` checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from typing import Any

from tests.fakes.slack import TEAM_ID

SIGNING_SECRET = "fake-slack-signing-secret"
BOB_SLACK = "U0BOB"


def signature(body: bytes, timestamp: int | str, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes, *, secret: str | None = SIGNING_SECRET, age: int = 0
) -> dict[str, str]:
    """Django test-client headers Slack would send for `body`, signed `age` seconds ago (no
    signature at all when `secret` is None)."""
    timestamp = int(time.time()) - age
    headers = {"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(timestamp)}
    if secret is not None:
        headers["HTTP_X_SLACK_SIGNATURE"] = signature(body, timestamp, secret)
    return headers


def command_form(
    text: str, response_url: str, *, user_id: str = BOB_SLACK, channel_id: str = "C0INCIDENTS"
) -> dict[str, str]:
    """The form Slack posts for `/muster <text>`, typed in `channel_id`."""
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "muster-test",
        "channel_id": channel_id,
        "channel_name": "incidents",
        "user_id": user_id,
        "user_name": "bob",
        "command": "/muster",
        "text": text,
        "api_app_id": "A0MUSTER",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{time.time():.0f}.{uuid.uuid4().hex[:12]}",
    }


def form_body(form: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(form).encode()


def mention_event(text: str, *, user: str = BOB_SLACK, **event: Any) -> dict[str, Any]:
    """An Events API `event_callback` carrying an `app_mention`."""
    ts = f"{time.time():.6f}"
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": "A0MUSTER",
        "event": {
            "type": "app_mention",
            "user": user,
            "text": text,
            "ts": ts,
            "channel": "C0INCIDENTS",
            "event_ts": ts,
            **event,
        },
        "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
    }


def json_body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


INCIDENT_CHANNEL = "C0INC1042"


def message_event(
    text: str, *, user: str = BOB_SLACK, channel: str = INCIDENT_CHANNEL, **event: Any
) -> dict[str, Any]:
    """An Events API `event_callback` carrying a `message` (the `message.channels` event)."""
    payload = mention_event(text, user=user, **event)
    payload["event"].update(type="message", channel=channel, channel_type="channel")
    return payload


def block_actions(
    action_id: str,
    value: str,
    response_url: str,
    *,
    user: str = BOB_SLACK,
    channel: str = INCIDENT_CHANNEL,
) -> dict[str, Any]:
    """The `payload` Slack posts for a click on a Block Kit button of the bot's post."""
    ts = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "bob", "name": "bob", "team_id": TEAM_ID},
        "api_app_id": "A0MUSTER",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "trigger_id": f"{time.time():.0f}.{uuid.uuid4().hex[:12]}",
        "team": {"id": TEAM_ID, "domain": "muster-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "inc-1042-disk-full-on-db-1"},
        "message": {"type": "message", "ts": ts, "text": "Incident opened", "blocks": []},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "muster_incident",
                "text": {"type": "plain_text", "text": action_id},
                "value": value,
                "type": "button",
                "action_ts": ts,
            }
        ],
    }


def interactivity_body(payload: Any) -> bytes:
    """The form Slack posts to the interactivity URL: one field, `payload`, of JSON."""
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return form_body({"payload": raw})

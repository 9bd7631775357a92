"""A service's chat settings, checked the same way by the API and the setup form: the shape of
a shared channel's id, and `shared` mode only with a shared channel.

The shapes are loose on purpose (Muster cannot ask the provider here): a Slack channel id is
`C…` (public) or `G…` (private, older workspaces) in upper-case letters and digits; a Mattermost
id is 26 lower-case letters and digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from incidents.models import ChatChannelMode

SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{1,39}")
MATTERMOST_CHANNEL_ID = re.compile(r"[a-z0-9]{26}")
SHAPES = {"slack": SLACK_CHANNEL_ID, "mattermost": MATTERMOST_CHANNEL_ID}
WRONG_SHAPE = {
    "slack": "{id!r} is not a Slack channel id: it starts with C (or G) and has only upper-case "
    "letters and digits, e.g. C0123ABCD (in Slack: the channel's details, at the bottom). "
    "Not its name.",
    "mattermost": "{id!r} is not a Mattermost channel id: 26 lower-case letters and digits "
    "(in Mattermost: the channel's menu, View Info). Not its name.",
}
# (platform, its label, the service's mode field, its shared channel field)
PLATFORM_FIELDS = (
    ("slack", "Slack", "slack_channel_mode", "slack_channel"),
    ("mattermost", "Mattermost", "mattermost_channel_mode", "mattermost_channel"),
)


def channel_id_error(platform: str, channel_id: str) -> str | None:
    """Why `channel_id` cannot be a channel id on `platform` ("slack", "mattermost"), or None."""
    if platform not in SHAPES:
        return f"unknown chat platform {platform!r}"
    if SHAPES[platform].fullmatch(channel_id):
        return None
    return WRONG_SHAPE[platform].format(id=channel_id[:60])


def chat_settings_errors(values: Mapping[str, Any]) -> dict[str, str]:
    """Return `{field: message}` for what is wrong in a service's chat settings (`values`: the
    service's fields after the change, by name)."""
    errors: dict[str, str] = {}
    for platform, label, mode_field, channel_field in PLATFORM_FIELDS:
        channel = values.get(channel_field) or ""
        if channel:
            error = channel_id_error(platform, channel)
            if error:
                errors[channel_field] = error
        elif values.get(mode_field) == ChatChannelMode.SHARED:
            errors[channel_field] = (
                f"Shared mode needs the service's shared {label} channel: give its id, or "
                "choose another mode."
            )
    return errors

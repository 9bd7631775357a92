"""The Slack double's workspace: its identity, its users and channels, and the Web API methods
that manage them (conversations.create / invite / archive / info / list, users.lookupByEmail).

`FakeSlack` (tests/fakes/slack.py) mixes `Conversations` in; the errors are those Slack's
method pages list, answered `{"ok": false, "error": …}` with HTTP 200 as Slack does.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

TEAM_ID = "T0MUSTER"
TEAM_DOMAIN = "muster-test"
API_APP_ID = "A0MUSTER"
BOT_USER_ID = "U0MUSTERBOT"
BOT_ID = "B0MUSTERBOT"
# conversations.create: "lowercase letters, numbers, hyphens, and underscores", 80 at most.
CHANNEL_NAME_MAX = 80
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
_channel_numbers = itertools.count(1)


@dataclass
class SlackUser:
    id: str
    email: str
    email_confirmed: bool = True
    name: str = ""
    deleted: bool = False
    is_bot: bool = False

    def json(self) -> dict[str, Any]:
        name = self.name or self.email.split("@")[0]
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": self.deleted,
            "real_name": name.title(),
            "tz": "Europe/Amsterdam",
            "tz_offset": 3600,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": self.email_confirmed,
            "profile": {
                "real_name": name.title(),
                "display_name": name,
                "email": self.email,
                "team": TEAM_ID,
            },
        }


@dataclass
class SlackChannel:
    """A conversation: `members` in the order they joined (the bot first if it created it)."""

    id: str
    name: str
    is_private: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    creator: str = BOT_USER_ID
    archived: bool = False
    members: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        """The conversation object, as conversations.create / info / list return it."""
        empty = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": self.archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "updated": self.created * 1000,
            "parent_conversation": None,
            "is_member": BOT_USER_ID in self.members,
            "topic": dict(empty),
            "purpose": dict(empty),
            "previous_names": [],
        }


def channel_name_error(name: str) -> str | None:
    """Slack's refusal of `name` for a new channel, or None."""
    if not name:
        return "invalid_name_required"
    if len(name) > CHANNEL_NAME_MAX:
        return "invalid_name_maxlength"
    if not _CHANNEL_NAME.match(name):
        return "invalid_name_specials"  # upper case included, as Slack's page says
    if not name.strip("-_"):
        return "invalid_name_punctuation"
    return None


def new_channel_id() -> str:
    """A conversation id: "C…", private channels included (Slack stopped giving them "G…" ids)."""
    return f"C0{next(_channel_numbers):08d}"


def truthy(value: Any) -> bool:
    """A boolean parameter as Slack reads it: true, "true" or "1"."""
    return value is True or str(value).lower() in {"true", "1"}


def _error(error: str, **more: Any) -> dict[str, Any]:
    return {"ok": False, "error": error, **more}


class Conversations:
    """conversations.* and users.lookupByEmail, on the mixing class's `users` and `channels`."""

    users: dict[str, SlackUser]
    channels: dict[str, SlackChannel]

    def add_channel(
        self, name: str, *, is_private: bool = False, members: tuple[str, ...] = (BOT_USER_ID,)
    ) -> SlackChannel:
        """A channel that exists already (created by someone, the bot a member by default)."""
        channel = SlackChannel(new_channel_id(), name, is_private, members=[*members])
        self.channels[channel.id] = channel
        return channel

    def channel_named(self, name: str) -> SlackChannel | None:
        return next((c for c in self.channels.values() if c.name == name), None)

    def _conversations_create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("name", ""))
        error = channel_name_error(name)
        if error is not None:
            return _error(error)
        if self.channel_named(name) is not None:
            return _error("name_taken")
        channel = self.add_channel(name, is_private=truthy(params.get("is_private")))
        return {"ok": True, "channel": channel.json()}

    def _conversations_invite(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel", "")))
        users = [u.strip() for u in str(params.get("users", "")).split(",") if u.strip()]
        if channel is None:
            return _error("channel_not_found")
        if not users:
            return _error("no_user")
        if channel.archived:
            return _error("is_archived")
        if BOT_USER_ID in users:
            return _error("cant_invite_self")
        unknown = [u for u in users if u not in self.users]
        if unknown:
            return _error("user_not_found")
        new = [u for u in dict.fromkeys(users) if u not in channel.members]
        if not new:
            return _error("already_in_channel")
        channel.members.extend(new)
        return {"ok": True, "channel": channel.json()}

    def _conversations_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        if channel.archived:
            return _error("already_archived")
        channel.archived = True
        return {"ok": True}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(params.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        found = channel.json()
        if truthy(params.get("include_num_members")):
            found["num_members"] = len(channel.members)
        return {"ok": True, "channel": found}

    def _conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        types = set(str(params.get("types") or "public_channel").split(","))
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            return _error("invalid_types")
        listed = [
            c
            for c in self.channels.values()
            if ("private_channel" if c.is_private else "public_channel") in types
            and not (c.archived and truthy(params.get("exclude_archived")))
        ]
        limit = min(int(params.get("limit") or 100), 1000)
        cursor = str(params.get("cursor") or "")
        start = int(base64.b64decode(cursor).decode().removeprefix("next:")) if cursor else 0
        page, rest = listed[start : start + limit], listed[start + limit :]
        following = base64.b64encode(f"next:{start + limit}".encode()).decode() if rest else ""
        return {
            "ok": True,
            "channels": [c.json() for c in page],
            "response_metadata": {"next_cursor": following},
        }

    def _users_lookupByEmail(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email", "")).lower()
        if not email:
            return _error("invalid_arguments")
        user = next((u for u in self.users.values() if u.email.lower() == email), None)
        if user is None:
            return _error("users_not_found")
        return {"ok": True, "user": user.json()}

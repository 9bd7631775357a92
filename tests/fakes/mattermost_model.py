"""What the Mattermost double stores, shaped as API v4 returns it: ids, AppErrors, users, teams,
channels, posts and outgoing webhooks (api/v4/source/definitions.yaml)."""

from __future__ import annotations

import re
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_ID_ALPHABET = string.ascii_lowercase + string.digits
# model.IsValidChannelIdentifier: lowercase letters, digits, '-' and '_', starting with a letter
# or digit; model.ChannelNameMaxLength and ChannelDisplayNameMaxRunes are 64.
CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CHANNEL_DISPLAY_NAME_MAX = 64
# api4's route for a button: /posts/{post_id}/actions/{action_id:[A-Za-z0-9]+}
ACTION_ID = re.compile(r"^[A-Za-z0-9]+$")


def new_id() -> str:
    """Return a Mattermost-shaped id: 26 lowercase letters and digits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def is_id(value: str) -> bool:
    return len(value) == 26 and set(value) <= set(_ID_ALPHABET)


def now_ms() -> int:
    return int(time.time() * 1000)


def app_error(status: int, error_id: str, message: str) -> dict[str, Any]:
    """Return Mattermost's error body."""
    return {
        "id": error_id,
        "message": message,
        "detailed_error": "",
        "request_id": uuid.uuid4().hex[:26],
        "status_code": status,
        "is_oauth": False,
    }


@dataclass
class FakeUser:
    id: str
    username: str
    email: str
    email_verified: bool = True
    delete_at: int = 0
    is_bot: bool = False
    roles: str = "system_user"

    def json(self) -> dict[str, Any]:
        now = now_ms()
        user = {
            "id": self.id,
            "create_at": now,
            "update_at": now,
            "delete_at": self.delete_at,
            "username": self.username,
            "auth_data": "",
            "auth_service": "",
            "email": self.email,
            "nickname": "",
            "first_name": "",
            "last_name": "",
            "position": "",
            "roles": self.roles,
            "locale": "en",
            "timezone": {
                "automaticTimezone": "",
                "manualTimezone": "",
                "useAutomaticTimezone": "true",
            },
            "disable_welcome_email": False,
        }
        if self.email:
            user["email_verified"] = self.email_verified  # sanitized away with the email
        if self.is_bot:
            user["is_bot"] = True
        return user


@dataclass
class FakeTeam:
    id: str
    name: str
    display_name: str
    create_at: int = field(default_factory=now_ms)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "display_name": self.display_name,
            "name": self.name,
            "description": "",
            "email": "",
            "type": "O",
            "company_name": "",
            "allowed_domains": "",
            "invite_id": new_id(),
            "allow_open_invite": False,
            "scheme_id": "",
            "group_constrained": False,
            "policy_id": None,
        }


@dataclass
class FakeChannel:
    """A channel: `type` "O" (public), "P" (private) or "D" (direct: two users, named by their
    sorted ids joined by "__", in no team); archived when `delete_at` is set."""

    id: str
    team_id: str
    name: str
    display_name: str
    type: str = "O"
    purpose: str = ""
    header: str = ""
    creator_id: str = ""
    members: list[str] = field(default_factory=list)
    create_at: int = field(default_factory=now_ms)
    delete_at: int = 0

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": self.delete_at,
            "team_id": self.team_id,
            "type": self.type,
            "display_name": self.display_name,
            "name": self.name,
            "header": self.header,
            "purpose": self.purpose,
            "last_post_at": 0,
            "total_msg_count": 0,
            "extra_update_at": 0,
            "creator_id": self.creator_id,
            "scheme_id": None,
            "props": None,
            "group_constrained": None,
            "shared": None,
            "total_msg_count_root": 0,
            "policy_id": None,
            "last_root_post_at": 0,
        }

    def member_json(self, user_id: str) -> dict[str, Any]:
        """The ChannelMember object."""
        return {
            "channel_id": self.id,
            "user_id": user_id,
            "roles": "channel_user",
            "last_viewed_at": 0,
            "msg_count": 0,
            "mention_count": 0,
            "mention_count_root": 0,
            "msg_count_root": 0,
            "notify_props": {
                "desktop": "default",
                "email": "default",
                "mark_unread": "all",
                "push": "default",
                "ignore_channel_mentions": "default",
            },
            "last_update_at": now_ms(),
            "scheme_guest": False,
            "scheme_user": True,
            "scheme_admin": False,
            "explicit_roles": "",
        }


@dataclass
class FakePost:
    id: str
    channel_id: str
    user_id: str
    message: str
    root_id: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    create_at: int = field(default_factory=now_ms)
    update_at: int = 0

    def actions(self) -> list[dict[str, Any]]:
        """The buttons of the post's attachments."""
        attachments = self.props.get("attachments") or []
        return [a for att in attachments for a in (att.get("actions") or [])]

    def json(self) -> dict[str, Any]:
        """The Post object as a client gets it: buttons without their `integration` (the URL and
        context stay on the server: Post.StripActionIntegrations)."""
        props = {**self.props}
        if props.get("attachments"):
            props["attachments"] = [
                {
                    **att,
                    "actions": [
                        {k: v for k, v in action.items() if k != "integration"}
                        for action in att.get("actions") or []
                    ],
                }
                for att in props["attachments"]
            ]
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at or self.create_at,
            "edit_at": 0,
            "delete_at": 0,
            "is_pinned": False,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "root_id": self.root_id,
            "original_id": "",
            "message": self.message,
            "type": "",
            "props": props,
            "hashtags": "",
            "pending_post_id": "",
            "reply_count": 0,
            "last_reply_at": 0,
            "participants": None,
            "metadata": {},
        }


@dataclass
class FakeHook:
    """An outgoing webhook: fires on posts in `channel_id` (any channel of the team if empty)
    whose first word is a trigger word (`trigger_when` 0: equals it, 1: starts with it), or on
    every post in the channel when there are no trigger words."""

    id: str
    token: str
    team_id: str
    channel_id: str
    display_name: str
    callback_urls: list[str]
    trigger_words: list[str] = field(default_factory=list)
    trigger_when: int = 0
    content_type: str = "application/x-www-form-urlencoded"
    description: str = ""
    creator_id: str = ""
    create_at: int = field(default_factory=now_ms)

    def trigger(self, text: str) -> str | None:
        """The trigger word `text` fires the hook with ("" without trigger words), or None."""
        if not self.trigger_words:
            return ""
        first = (text.split() or [""])[0]
        for word in self.trigger_words:
            if first == word or (self.trigger_when == 1 and first.startswith(word)):
                return word
        return None

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "token": self.token,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "creator_id": self.creator_id,
            "channel_id": self.channel_id,
            "team_id": self.team_id,
            "trigger_words": self.trigger_words,
            "trigger_when": self.trigger_when,
            "callback_urls": self.callback_urls,
            "display_name": self.display_name,
            "description": self.description,
            "content_type": self.content_type,
            "username": "",
            "icon_url": "",
        }

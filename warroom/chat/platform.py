"""What the outbox asks of a chat platform, and the two ways a call can fail.

A platform renders a batch of posts for one channel and calls its API; it knows nothing of the
outbox. Its errors say whether trying again is safe: `ChatUnavailable` (down, 429, 5xx) with
`maybe_sent` when the request may have been acted on (a timeout after sending), and
`ChatRefused` for what will not pass by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class ChatUnavailable(Exception):
    """The platform could not take the call now; `retry_after` seconds if it said."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, maybe_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class ChatRefused(Exception):
    """The platform refused the call for a reason that will not pass by itself."""


class NameTaken(ChatRefused):
    """A channel of that name exists already."""


@dataclass(frozen=True)
class Outgoing:
    """One post as a platform renders it: Markdown `body`, what it is (`kind`: opening, line,
    chat, summary, test), and `data` (the incident's number and title, the author's name)."""

    kind: str
    body: str
    data: dict


PLACES = {"slack": "on Slack", "mattermost": "on Mattermost"}


def said_where(out: Outgoing) -> str:
    """Where a person's words were said: "in Muster", or "on Slack" for words relayed from
    there to another platform."""
    return PLACES.get(str(out.data.get("via", "")), "in Muster")


@dataclass(frozen=True)
class NewChannel:
    channel_id: str
    private: bool = False
    hook_id: str = ""  # Mattermost: the outgoing webhook mirroring it
    hook_token: str = ""


class Platform(Protocol):
    """A chat platform the outbox posts to (warroom.chat.platforms names them)."""

    name: str  # "slack"
    label: str  # "Slack"
    NAME_MOST: int  # the longest channel name it takes

    def configured(self) -> bool: ...

    def can_make_channels(self) -> bool: ...

    def channel_prefix(self) -> str: ...

    def fits(self, batch: Sequence[Outgoing]) -> bool:
        """Whether `batch` can go as one post (size limits)."""
        ...

    def post(self, channel_id: str, batch: Sequence[Outgoing]) -> str:
        """Post `batch` as one message; return its id on the platform."""
        ...

    def create_channel(self, name: str, title: str) -> NewChannel: ...

    def invite(self, channel_id: str, emails: Sequence[str]) -> list[str]:
        """Invite the platform's users with these emails; return the emails not found."""
        ...

    def archive(self, channel: NewChannel) -> None: ...

"""The one interface every paging channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from oncall.models import Page


class DeliveryError(Exception):
    """The provider refused or failed a send.

    `permanent`: retrying the same send cannot help (invalid number, opted out); otherwise the
    page is retried with backoff. `maybe_sent`: the request may have reached the provider (a
    timeout after sending it): the page becomes `unknown` and is never sent again.
    """

    def __init__(self, message: str, *, permanent: bool = False, maybe_sent: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class Message:
    """What a page says, rendered once for every channel."""

    sms: str  # one or two SMS segments
    subject: str  # email subject, call summary
    body: str  # email body
    speech: str  # what a call reads out before offering the keys
    # What it is: "page", "verification" or "test" (oncall.models.OutboxKind); the console
    # outbox lists it under that name.
    purpose: str = "page"


class Channel(Protocol):
    name: str

    def send(self, page: Page, message: Message) -> str:
        """Hand the page to the provider; return the provider's id, or raise DeliveryError."""
        ...

"""The one interface every paging channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from accounts.models import User
from oncall.models import ContactKind, Page


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


@dataclass(frozen=True)
class Delivery:
    """Whom a channel reaches and how: a page's person and address, or those of a message that
    is no page (a verification code, a test page), which has no `page_id` and so no status
    callback a provider could report."""

    address: str  # a phone number or an email address
    kind: str  # the contact method's kind (ContactKind): the console writes what it would get
    person: User | None
    page_id: int | None = None

    @classmethod
    def of_page(cls, page: Page) -> Delivery:
        """Return what delivering `page` hands its channel."""
        method = page.contact_method
        return cls(
            address=page.address,
            kind=method.kind if method is not None else ContactKind.SMS,
            person=page.person,
            page_id=page.pk,
        )


class Channel(Protocol):
    name: str
    # Whom its sends wait on (core.pools keeps a worker's threads for each provider); "" for a
    # channel that calls no one (the console outbox writes a row).
    provider: str

    def send(self, delivery: Delivery, message: Message) -> str:
        """Hand the message to the provider; return the provider's id, or raise DeliveryError."""
        ...

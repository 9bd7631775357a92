"""Pacing: how fast pages reach a person by SMS and calls, and the bundles above the limit.

The rate limit (`PAGE_RATE_LIMIT_COUNT` messages per person and channel in
`PAGE_RATE_LIMIT_WINDOW_MINUTES`, SMS and calls) never delays a high-urgency page by more than a
minute: above the limit, pages are held for a bundle, one message naming every incident held for
the person, sent at most once a minute per channel (`PAGE_BUNDLE_SECONDS`). A held high-urgency
page rides in the first bundle after it was due, within that minute. Low-urgency pages above the
limit wait for the window, or ride in an earlier bundle. Delivery (oncall.delivery) asks `pace`
under the person's pacing lock, and boards the riders its message carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q

from core.compiled import Lookup
from incidents.models import Incident, Urgency
from oncall.models import Page, PageStatus

# Channels that reach a phone: rate limited, and bundled above the limit.
PACED = frozenset({"sms", "voice", "console"})


# A held high-urgency page is released this much before its minute is up, for the tick (every
# half second) to hand it to a worker and the worker to the provider.
RELEASE_AHEAD = timedelta(seconds=2)


# Serializes deliveries to one person (PostgreSQL advisory lock class; SQLite has one writer).
_PACING_LOCK = 0x4D5354  # "MST"


@dataclass(frozen=True)
class Pace:
    """What the rate limit says: send now (as a bundle above the limit), or hold until."""

    hold_until: datetime | None = None
    bundle: bool = False


def serialize_person(person_id: int) -> None:
    """Take the person's pacing lock until the transaction ends: two deliveries to one person
    must not both see the limit free, or both send a bundle."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_PACING_LOCK, person_id])


def pace(page: Page, incident: Incident, now: datetime) -> Pace:
    """Return whether `page` may go now, as one message or above the limit as a bundle."""
    window = timedelta(minutes=settings.PAGE_RATE_LIMIT_WINDOW_MINUTES)
    limit = settings.PAGE_RATE_LIMIT_COUNT
    since = now - window
    recent = [p.handed_at for p in _RECENT.instances(page.person_id, page.channel, page.pk, since)]
    if len(recent) < limit:
        return Pace()
    if incident.urgency != Urgency.HIGH and not page.manual:
        return Pace(hold_until=recent[-limit] + window)
    spacing = timedelta(seconds=settings.PAGE_BUNDLE_SECONDS)
    last_bundle = (
        _messages_to(page)
        .filter(bundle=True, handed_at__gt=now - spacing)
        .order_by("-handed_at")
        .values_list("handed_at", flat=True)
        .first()
    )
    if last_bundle is None:
        return Pace(bundle=True)
    due = page.held_at or page.send_after
    hold_until = min(last_bundle + spacing, due + spacing - RELEASE_AHEAD)
    return Pace(bundle=True) if hold_until <= now else Pace(hold_until=hold_until)


def _messages_to(page: Page):
    """Messages handed to the page's person on its channel (a bundle counts once)."""
    return _messages(page.person_id, page.channel, page.pk)


def _messages(person: int, channel: str, page: int):
    return Page.objects.filter(person_id=person, channel=channel, carried_by__isnull=True).exclude(
        pk=page
    )


def waiting(page: Page, now: datetime):
    """The other pages for the same person, channel and address that a message may carry:
    held back by the rate limit, or due now; queued, or claimed by a delivery that waits for
    this one's pacing lock (it then finds them taken, and sends nothing)."""
    return _waiting(page.person_id, page.channel, page.address, page.pk, now)


def waiting_pages(page: Page, now: datetime) -> list[Page]:
    """`waiting(page, now)`'s pages, with their runs (every paced delivery asks: compiled once)."""
    return _WAITING.instances(page.person_id, page.channel, page.address, page.pk, now)


def _waiting(person: int, channel: str, address: str, pk: int, now: datetime):
    return (
        Page.objects.filter(
            person_id=person,
            channel=channel,
            # The same number or address: a second phone of the person gets its own message.
            address=address,
            status__in=[PageStatus.QUEUED, PageStatus.SENDING],
            handed_at__isnull=True,
        )
        .filter(Q(held_at__isnull=False) | Q(send_after__lte=now))
        .exclude(pk=pk)
        .select_related("escalation")
        .order_by("send_after", "id")
    )


# Every paced delivery runs these two: compiled once (core.compiled).
_WAITING = Lookup(_waiting, takes=(int, str, str, int, datetime))
_RECENT = Lookup(
    lambda person, channel, page, since: (
        _messages(person, channel, page)
        .filter(handed_at__gte=since)
        .order_by("handed_at")
        .only("handed_at")
    ),
    takes=(int, str, int, datetime),
)


def riders_of(page: Page, pace: Pace, candidates: list[Page]) -> list[Page]:
    """Which waiting pages ride with `page`: every held one; and when it is a bundle (above the
    limit), every one due now, so that each rides in the first bundle after its step fired."""
    return [p for p in candidates if p.held_at is not None or pace.bundle]


def board(riders: list[Page], carrier: Page, now: datetime) -> list[Page]:
    """Claim the pages that ride with `carrier`: they leave with its message, or not at all
    (a delivery of their own finds them taken)."""
    if not riders:
        return []
    waiting(carrier, now).filter(pk__in=[p.pk for p in riders]).update(
        status=PageStatus.SENDING,
        claimed_at=now,
        handed_at=now,
        carried_by=carrier,
        error=f"bundled into page {carrier.pk}",
    )
    boarded = set(
        Page.objects.filter(carried_by=carrier, status=PageStatus.SENDING).values_list(
            "pk", flat=True
        )
    )
    return [p for p in riders if p.pk in boarded]

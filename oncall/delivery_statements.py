"""The statements of a page's delivery, compiled once (core.compiled): every page runs them,
and through the ORM their compiling cost more than running them (0.35 ms of CPU an UPDATE,
2026-12-08)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from core.compiled import Ids, Lookup, Update
from incidents.models import Incident
from oncall.models import Page, PageStatus

# A delivery's page, with what it needs.
PAGE = Lookup(
    lambda pk: Page.objects.select_related("person", "contact_method", "escalation").filter(pk=pk),
    takes=(int,),
)
# A due page's channel, before the claim: which provider's threads (core.pools) deliver it.
CHANNEL = Lookup(
    lambda pk, now: Page.objects.filter(
        pk=pk, status=PageStatus.QUEUED, send_after__lte=now
    ).values_list("channel"),
    takes=(int, datetime),
)
# `now` twice: a due page, and the claim's time.
ENQUEUED = Update(
    lambda ids, now: (
        Page.objects.filter(Ids("pk", ids), status=PageStatus.QUEUED),
        {"enqueued_at": now},
    ),
    takes=(str, datetime),
)
CLAIM = Update(
    lambda pk, due, now: (
        Page.objects.filter(pk=pk, status=PageStatus.QUEUED, send_after__lte=due),
        {"status": PageStatus.SENDING, "claimed_at": now, "attempts": F("attempts") + 1},
    ),
    takes=(int, datetime, datetime),
)
# Every incident a message may name, locked in one order (as merge does).
LOCKED = Lookup(
    lambda ids: (
        Incident.objects.locked().select_related("service").filter(Ids("pk", ids)).order_by("pk")
    ),
    takes=(str,),
)
# Still our claim, locked, with its run's status as it is now. An instance query, not values:
# Django names the table to lock, OF, only for one.
OURS = Lookup(
    lambda pk, claimed: (
        Page.objects.select_for_update(of=("self",))
        .filter(pk=pk, status=PageStatus.SENDING, claimed_at=claimed, handed_at__isnull=True)
        .annotate(run_status=F("escalation__status"))
        .only("pk")
    ),
    takes=(int, datetime),
)
SENT = Update(
    lambda pk, provider_id, at: (
        Page.objects.filter(pk=pk, status=PageStatus.SENDING),
        {"status": PageStatus.SENT, "provider_id": provider_id, "sent_at": at},
    ),
    takes=(int, str, datetime),
)

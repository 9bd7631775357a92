"""Web UI: the dev outbox — every SMS and call the console channel "sent" instead of Twilio.

The same rows and role as /api/v1/outbox/ (OutboxMessage: pages, verification codes and test
pages; observers may read), newest first, 50 a page with keyset paging (`?before=<message id>`),
so no page of it counts or skips through the whole table. The first page refreshes itself with
htmx polling.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_safe

from accounts.models import Role
from oncall.channels.registry import twilio_configured
from oncall.models import OutboxMessage
from oncall.privacy import address_for
from web.access import role_required

PAGE_SIZE = 50
REFRESH_SECONDS = 5


def _before(request: HttpRequest) -> int | None:
    value = request.GET.get("before", "")
    return int(value) if value.isdigit() else None


@require_safe
@role_required(read=Role.OBSERVER)
def outbox_page(request: HttpRequest) -> HttpResponse:
    """List the console outbox's messages, newest first."""
    before = _before(request)
    messages = OutboxMessage.objects.select_related("page__incident", "person")
    if before is not None:
        messages = messages.filter(pk__lt=before)
    rows = list(messages.order_by("-id")[: PAGE_SIZE + 1])
    for row in rows:
        row.shown_body = row.body_for(request.user)
        row.shown_address = address_for(request.user, row.person_id, row.address)
    older = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
    context = {
        "outbox_messages": rows[:PAGE_SIZE],
        "before": before,
        "older": older,
        "twilio": twilio_configured(),
        # Only the newest page follows new rows; an older page stays put while it is read.
        "poll": before is None,
        "refresh_seconds": REFRESH_SECONDS,
    }
    if request.htmx:
        return render(request, "web/outbox/_rows.html", context)
    return render(request, "web/outbox/page.html", context)


urlpatterns = [
    path("outbox/", outbox_page, name="web-outbox"),
]

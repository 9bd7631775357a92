"""Web UI: an incident's page (summary, pages, alerts, runbook, war room and timeline), and the
panels of it that live pages re-fetch when the incident changes.

Every part is bounded: the timeline pages on its (incident, at, id) index, the pages and alerts
panels show the latest, the war room the last messages (its socket brings the rest).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from accounts.models import Role
from alerts.models import Alert
from core.masking import mask_address, mask_in
from incidents.models import Incident, TimelineEntry
from oncall.escalation_plan import policy_levels
from oncall.models import Page
from runbooks.graphs import graph_links, safe_url
from runbooks.models import Runbook
from runbooks.services import matching_runbook
from warroom.markdown import render as render_markdown
from warroom.models import Message
from warroom.services import incident_room
from web.access import incident_or_404, role_required

TIMELINE = 100  # timeline entries on an incident's page; "older" pages through the rest
ROOM_HISTORY = 100  # war-room messages rendered with the page; the socket brings the rest
PAGES_SHOWN = 50
ALERTS_SHOWN = 20


def timeline_page(incident: Incident, before: int | None) -> tuple[list[TimelineEntry], int | None]:
    """Return up to TIMELINE entries, newest first, older than entry `before` (if given), and
    the id to page on from, if there are older ones. Walks the (incident, at, id) index."""
    entries = TimelineEntry.objects.filter(incident=incident)
    if before is not None:
        anchor = entries.filter(pk=before).values_list("at", flat=True).first()
        if anchor is not None:
            # (at, id) < (anchor, before); the `at <= anchor` bound lets the index start there.
            entries = entries.filter(Q(at__lt=anchor) | Q(pk__lt=before), at__lte=anchor)
    rows = list(entries.order_by("-at", "-id")[: TIMELINE + 1])
    if len(rows) > TIMELINE:
        return rows[:TIMELINE], rows[TIMELINE - 1].pk
    return rows, None


def _alert_view(alert: Alert) -> dict[str, Any]:
    labels = alert.labels if isinstance(alert.labels, dict) else {}
    links = alert.links if isinstance(alert.links, list) else []
    return {
        "alert": alert,
        "labels": sorted((str(k), str(v)) for k, v in labels.items()),
        # Links come from senders: only absolute http(s) URLs are shown.
        "links": [
            {"url": link["url"], "text": str(link.get("text") or link.get("kind") or "link")}
            for link in links
            if isinstance(link, dict) and safe_url(link.get("url"))
        ],
    }


def _before(request: HttpRequest) -> int | None:
    raw = request.GET.get("before", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def _summary_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    can_act = request.user.has_role(Role.RESPONDER)
    return {
        "incident": incident,
        "can_act": can_act,
        "next": reverse("web-incident", args=[incident.number]),
        # The escalation policy's levels, to escalate to one of them.
        "levels": policy_levels(incident.service_id) if can_act and incident.is_open else [],
    }


def _pages_context(incident: Incident) -> dict[str, Any]:
    pages = list(
        Page.objects.filter(incident=incident)
        .select_related("person")
        .order_by("-id")[: PAGES_SHOWN + 1]
    )
    return {
        "incident": incident,
        # Masked for everyone here, admins too: an incident's page is a shared screen. The
        # outbox and the API show the owner and admins the full address (oncall.privacy).
        "pages": [
            (p, mask_address(p.address), mask_in(p.error, p.address)) for p in pages[:PAGES_SHOWN]
        ],
        "more_pages": len(pages) > PAGES_SHOWN,
    }


def _full(number: int) -> Incident:
    """Return the incident with the people its summary names (role_required checked access)."""
    found = (
        Incident.objects.select_related(
            "service", "acknowledged_by", "resolved_by", "assignee", "merged_into"
        )
        .filter(number=number)
        .first()
    )
    if found is None:
        raise Http404(f"There is no incident #{number}.")
    return found


def _runbook_html(runbook: Runbook | None) -> str:
    """The matched runbook's body as HTML; a long one is cut with a link to the whole text."""
    if runbook is None:
        return ""
    return render_markdown(runbook.body, whole_at=reverse("web-setup-runbook", args=[runbook.pk]))


@require_GET
@role_required(read=Role.OBSERVER)
def incident_page(request: HttpRequest, number: int) -> HttpResponse:
    """Show an incident: summary, pages, alerts, runbook, war room and timeline."""
    incident = _full(number)
    before = _before(request)
    timeline, older = timeline_page(incident, before)
    alerts = list(
        Alert.objects.filter(incident=incident)
        .select_related("integration")
        .order_by("-last_seen", "-id")[: ALERTS_SHOWN + 1]
    )
    runbook = matching_runbook(incident)
    room = incident_room(incident)
    said = list(
        Message.objects.filter(room=room).select_related("author").order_by("-id")[:ROOM_HISTORY]
    )
    said.reverse()
    context = {
        **_summary_context(request, incident),
        "timeline": timeline,
        "older": older,
        "paging": before is not None,
        **_pages_context(incident),
        "alerts": [_alert_view(a) for a in alerts[:ALERTS_SHOWN]],
        "more_alerts": len(alerts) > ALERTS_SHOWN,
        "graphs": graph_links(incident),
        "runbook": runbook,
        "runbook_html": _runbook_html(runbook),
        "room": room,
        "room_messages": said,
        "last_message_id": said[-1].pk if said else 0,
        "say_url": reverse("web-incident-say", args=[incident.number]),
        "severities": range(1, 6),
    }
    return render(request, "web/incidents/detail.html", context)


@require_GET
@role_required(read=Role.OBSERVER)
def incident_summary(request: HttpRequest, number: int) -> HttpResponse:
    """Return the summary panel alone (status, people, buttons): live pages re-fetch it."""
    incident = _full(number)
    return render(request, "web/incidents/_summary.html", _summary_context(request, incident))


@require_GET
@role_required(read=Role.OBSERVER)
def incident_pages(request: HttpRequest, number: int) -> HttpResponse:
    """Return the "Paged" panel alone (who, how, delivery status): live pages re-fetch it."""
    incident = incident_or_404(request, number)
    return render(request, "web/incidents/_pages.html", _pages_context(incident))


@require_GET
@role_required(read=Role.OBSERVER)
def incident_timeline(request: HttpRequest, number: int) -> HttpResponse:
    """Return the newest timeline entries alone: live pages re-fetch them."""
    incident = incident_or_404(request, number)
    timeline, older = timeline_page(incident, _before(request))
    context = {"incident": incident, "timeline": timeline, "older": older}
    return render(request, "web/incidents/_timeline.html", context)


urlpatterns = [
    path("incidents/<int:number>/", incident_page, name="web-incident"),
    path("incidents/<int:number>/summary/", incident_summary, name="web-incident-summary"),
    path("incidents/<int:number>/pages/", incident_pages, name="web-incident-pages"),
    path("incidents/<int:number>/timeline/", incident_timeline, name="web-incident-timeline"),
]

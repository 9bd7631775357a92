"""Web UI: the incidents list, an incident's page, and the buttons that act on incidents.

Views are thin: check access (web.access.role_required and access_incident), call a verb of
incidents.services or read what a page shows, render. Every list is bounded and ordered on an
indexed column, so pages stay fast with many thousands of incidents and long timelines.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role
from alerts.models import Alert
from incidents import services as verbs
from incidents.filters import filter_incidents
from incidents.models import OPEN_STATUSES, Incident, Service, Source, Status, TimelineEntry
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from oncall import escalation
from oncall.escalation_plan import policy_levels
from oncall.models import Page
from runbooks.graphs import graph_links, safe_url
from runbooks.services import matching_runbook
from warroom import services as room_services
from warroom.markdown import MAX_BODY
from warroom.markdown import render as render_markdown
from warroom.models import Message
from web.access import role_required

PER_PAGE = 50  # incidents on a page of the list
TIMELINE = 100  # timeline entries on an incident's page; "older" pages through the rest
ROOM_HISTORY = 100  # war-room messages rendered with the page; the socket brings the rest
PAGES_SHOWN = 50
ALERTS_SHOWN = 20

SINCE = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
STATUS_FILTERS = {
    "open": OPEN_STATUSES,
    "triggered": (Status.TRIGGERED,),
    "acknowledged": (Status.ACKNOWLEDGED,),
    "resolved": (Status.RESOLVED,),
    "all": None,
}


# --- the list --------------------------------------------------------------------------------


class IncidentFilter(forms.Form):
    """The list's GET form; a value that does not parse is ignored, never an error page."""

    status = forms.ChoiceField(
        choices=[(k, k.capitalize()) for k in STATUS_FILTERS], required=False
    )
    service = forms.IntegerField(required=False, min_value=1)
    severity = forms.TypedChoiceField(
        choices=[("", "Any")] + [(str(n), f"SEV{n}") for n in range(1, 6)],
        coerce=int,
        empty_value=None,
        required=False,
    )
    since = forms.ChoiceField(
        choices=[
            ("all", "Any time"),
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("30d", "Last 30 days"),
        ],
        required=False,
    )
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    before = forms.IntegerField(required=False, min_value=1)

    def values(self) -> dict[str, Any]:
        """Return the valid values, each invalid or missing one as its default."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "status": data.get("status") or "open",
            "service": data.get("service"),
            "severity": data.get("severity"),
            "since": data.get("since") or "all",
            "start": data.get("start"),
            "end": data.get("end"),
            "before": data.get("before"),
        }


def filtered_incidents(values: dict[str, Any], now: datetime | None = None) -> QuerySet[Incident]:
    """Return the incidents the filter values select, newest first (by number: its indexes)."""
    since = until = None
    if values["start"] or values["end"]:
        since = _day_start(values["start"]) if values["start"] else None
        until = _day_start(values["end"] + timedelta(days=1)) if values["end"] else None
    elif values["since"] in SINCE:
        since = (now or timezone.now()) - SINCE[values["since"]]
    found = filter_incidents(
        Incident.objects.all(),
        statuses=STATUS_FILTERS[values["status"]],
        service_ids=[values["service"]] if values["service"] else None,
        severities=[values["severity"]] if values["severity"] else None,
        since=since,
        until=until,
    )
    return found.order_by("-number")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _list_context(request: HttpRequest) -> dict[str, Any]:
    form = IncidentFilter(request.GET)
    values = form.values()
    found = filtered_incidents(values)
    if values["before"]:
        found = found.filter(number__lt=values["before"])
    rows = list(found.select_related("service", "acknowledged_by", "assignee")[: PER_PAGE + 1])
    older = None
    if len(rows) > PER_PAGE:
        rows = rows[:PER_PAGE]
        query = request.GET.copy()
        query["before"] = rows[-1].number
        older = query.urlencode()
    newest = None
    if values["before"]:
        query = request.GET.copy()
        query.pop("before", None)
        newest = query.urlencode() or "status=" + values["status"]
    return {
        "incidents": rows,
        "values": values,
        "older": older,
        "newest": newest,
        "can_act": request.user.has_role(Role.RESPONDER),
        "next": request.get_full_path(),
    }


@require_GET
@role_required(read=Role.OBSERVER)
def incident_list(request: HttpRequest) -> HttpResponse:
    """Show the incidents the filters select (open ones by default); htmx gets the table only."""
    context = _list_context(request)
    if request.htmx:
        return render(request, "web/incidents/_results.html", context)
    context["services"] = Service.objects.only("pk", "name").order_by("name")
    context["since_choices"] = IncidentFilter.base_fields["since"].choices
    context["status_choices"] = list(STATUS_FILTERS)
    return render(request, "web/incidents/list.html", context)


# --- acting on an incident -------------------------------------------------------------------


def _acknowledge(request: HttpRequest, incident: Incident) -> str:
    verbs.acknowledge_incident(incident, by=request.user, source=Source.WEB)
    return f"Incident #{incident.number} acknowledged."


def _resolve(request: HttpRequest, incident: Incident) -> str:
    verbs.resolve_incident(incident, by=request.user, source=Source.WEB)
    return f"Incident #{incident.number} resolved."


def _escalate(request: HttpRequest, incident: Incident) -> str:
    """Page the next level, or the `level` chosen; say whom it paged."""
    raw = request.POST.get("level", "").strip()
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
        raise verbs.IncidentError(f"{raw[:20]!r} is not a level; choose one from the list.")
    _, outcome = escalation.escalate_incident(
        incident, level=int(raw) if raw else None, by=request.user, source=Source.WEB
    )
    return f"Incident #{incident.number} escalated. {outcome.describe()}"


# What each button does: the verb, and what to tell the person who pressed it.
ACTIONS: dict[str, Callable[[HttpRequest, Incident], str]] = {
    "ack": _acknowledge,
    "resolve": _resolve,
    "escalate": _escalate,
}


def _incident(request: HttpRequest, number: int) -> Incident:
    try:
        return access_incident(request.user, number)
    except (IncidentNotFound, NotAllowed) as exc:
        raise Http404(str(exc)) from None


def _back(request: HttpRequest, incident: Incident) -> HttpResponse:
    """Redirect to the page the form was on (a local `next`), else to the incident's page."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = f"/incidents/{incident.number}/"
    return redirect(target)


def _row(incident_id: int) -> Incident:
    return Incident.objects.select_related("service", "acknowledged_by", "assignee").get(
        pk=incident_id
    )


@require_POST
@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
def incident_action(request: HttpRequest, number: int, action: str) -> HttpResponse:
    """Acknowledge, resolve or escalate; htmx gets the updated list row, others a redirect."""
    incident = _incident(request, number)
    problem = done = ""
    try:
        done = ACTIONS[action](request, incident)
    except verbs.IncidentError as exc:  # someone else acted first: say so, plainly
        problem = str(exc)
    if request.htmx:
        context = {"incident": _row(incident.pk), "problem": problem, "can_act": True}
        context["notice"] = done if action == "escalate" else ""
        context["next"] = request.POST.get("next", "")
        return render(request, "web/incidents/_row.html", context)
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, done)
    return _back(request, incident)


@require_POST
@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
def set_severity(request: HttpRequest, number: int) -> HttpResponse:
    """Change the incident's severity."""
    incident = _incident(request, number)
    raw = request.POST.get("severity", "")
    try:
        severity = int(raw) if raw.isdigit() else 0
        verbs.set_severity(incident, severity=severity, by=request.user, source=Source.WEB)
    except verbs.IncidentError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Incident #{incident.number} is now SEV{severity}.")
    return _back(request, incident)


@require_POST
@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
def add_note(request: HttpRequest, number: int) -> HttpResponse:
    """Add a note to the incident's timeline."""
    incident = _incident(request, number)
    try:
        verbs.add_note(
            incident, text=request.POST.get("text", ""), by=request.user, source=Source.WEB
        )
    except verbs.IncidentError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Note added to the timeline.")
    return _back(request, incident)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)  # a command checks its own role
def say_in_room(request: HttpRequest, number: int) -> HttpResponse:
    """Say something (or run a command) in the incident's war room, without JavaScript."""
    incident = _incident(request, number)
    body = request.POST.get("body", "").strip()
    if not body:
        messages.error(request, "Type something to say.")
    elif len(body) > MAX_BODY or "\x00" in body:
        messages.error(request, f"A message is at most {MAX_BODY} characters of text.")
    else:
        room_services.say(room_services.incident_room(incident), body, user=request.user)
    return redirect(f"/incidents/{incident.number}/#war-room")


# --- an incident's page ----------------------------------------------------------------------


def mask_address(address: str) -> str:
    """Return a contact address with its middle hidden: enough to tell which, not to use."""
    if not address:
        return ""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    if len(address) <= 5:
        return "•" * len(address)
    return address[:3] + "•" * (len(address) - 5) + address[-2:]


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
        "next": f"/incidents/{incident.number}/",
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
        "pages": [(p, mask_address(p.address)) for p in pages[:PAGES_SHOWN]],
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
    room = room_services.incident_room(incident)
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
        "runbook_html": render_markdown(runbook.body) if runbook is not None else "",
        "room": room,
        "room_messages": said,
        "last_message_id": said[-1].pk if said else 0,
        "say_url": f"/incidents/{incident.number}/say/",
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
    incident = _incident(request, number)
    return render(request, "web/incidents/_pages.html", _pages_context(incident))


@require_GET
@role_required(read=Role.OBSERVER)
def incident_timeline(request: HttpRequest, number: int) -> HttpResponse:
    """Return the newest timeline entries alone: live pages re-fetch them."""
    incident = _incident(request, number)
    timeline, older = timeline_page(incident, _before(request))
    context = {"incident": incident, "timeline": timeline, "older": older}
    return render(request, "web/incidents/_timeline.html", context)


urlpatterns = [
    path("incidents/", incident_list, name="web-incidents"),
    path("incidents/<int:number>/", incident_page, name="web-incident"),
    path("incidents/<int:number>/summary/", incident_summary, name="web-incident-summary"),
    path("incidents/<int:number>/pages/", incident_pages, name="web-incident-pages"),
    path("incidents/<int:number>/timeline/", incident_timeline, name="web-incident-timeline"),
    *[
        path(
            f"incidents/<int:number>/{action}/",
            incident_action,
            {"action": action},
            name=f"web-incident-{action}",
        )
        for action in ACTIONS
    ],
    path("incidents/<int:number>/severity/", set_severity, name="web-incident-severity"),
    path("incidents/<int:number>/note/", add_note, name="web-incident-note"),
    path("incidents/<int:number>/say/", say_in_room, name="web-incident-say"),
]

"""Web UI: the buttons and forms that act on an incident (acknowledge, resolve, escalate, set
its severity, add a note) and the box that says something in its war room.

Views are thin: check access (web.access), call a verb of incidents.services (or the war room's
chat surface), then answer htmx with the updated list row, or redirect back.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.models import Role
from incidents import services as verbs
from incidents.models import Incident, Source
from oncall import escalation
from warroom.services import incident_room
from warroom.surfaces.chat import say_typed
from web.access import incident_or_404, role_required


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


def _back(request: HttpRequest, incident: Incident) -> HttpResponse:
    """Redirect to the page the form was on (a local `next`), else to the incident's page."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("web-incident", args=[incident.number])
    return redirect(target)


def _row(incident_id: int) -> Incident:
    return Incident.objects.select_related("service", "acknowledged_by", "assignee").get(
        pk=incident_id
    )


@require_POST
@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
def incident_action(request: HttpRequest, number: int, action: str) -> HttpResponse:
    """Acknowledge, resolve or escalate; htmx gets the updated list row, others a redirect."""
    incident = incident_or_404(request, number)
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
    incident = incident_or_404(request, number)
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
    incident = incident_or_404(request, number)
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
    incident = incident_or_404(request, number)
    problem = say_typed(incident_room(incident), request.POST.get("body", ""), user=request.user)
    if problem is not None:
        messages.error(request, problem)
    return redirect(reverse("web-incident", args=[incident.number]) + "#war-room")


urlpatterns = [
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

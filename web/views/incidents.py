"""Web UI: the incidents list, filtered (open ones by default), newest first.

An incident's page is web.views.incident_page; the buttons that act on incidents are
web.views.incident_actions. Every list is bounded and ordered on an indexed column, so pages
stay fast with many thousands of incidents.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Role
from incidents.filters import filter_incidents
from incidents.models import OPEN_STATUSES, Incident, Service, Status
from web.access import role_required

PER_PAGE = 50  # incidents on a page of the list

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


urlpatterns = [
    path("incidents/", incident_list, name="web-incidents"),
]

"""Web UI: an incident's postmortem: the editor, its downloads and its printable page.

Every view checks the role (observer reads, responder writes), calls incidents.postmortems and
renders or redirects back to the editor (plain forms; each POST answers with a redirect).
"""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role, User
from incidents import action_items, curation, postmortems
from incidents.models import ActionItem, Incident, TimelineEntry
from incidents.postmortem_api import render_export
from incidents.postmortem_export import facts, page_rows, utc, via
from incidents.postmortem_report import postmortem_report
from incidents.postmortems import FIELD_LABELS, FIELDS, PostmortemError
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from web.access import role_required

ROWS_PER_PAGE = 100  # timeline rows, each with its own forms
OWNERS_MAX = 500  # people offered as an action item's owner


def _incident(request: HttpRequest, number: int) -> Incident:
    needed = Role.OBSERVER if request.method in ("GET", "HEAD") else Role.RESPONDER
    try:
        return access_incident(request.user, number, role=needed)
    except IncidentNotFound as exc:
        raise Http404(str(exc)) from None
    except NotAllowed as exc:  # role_required checked already; kept for a role lost meanwhile
        raise PermissionDenied(str(exc)) from None


def _page_url(number: int) -> str:
    return reverse("web-postmortem", args=[number])


def _back(request: HttpRequest, number: int, anchor: str = "") -> HttpResponse:
    """Redirect to where the form was (the editor, with its timeline paging), at `anchor`."""
    page = _page_url(number)
    back = request.POST.get("back", "")
    target = back if back.startswith(page) and "//" not in back else page
    return redirect(f"{target}#{anchor}" if anchor else target)


# --- the editor ------------------------------------------------------------------------------


@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
@require_http_methods(["GET", "HEAD", "POST"])
def editor(request: HttpRequest, number: int) -> HttpResponse:
    """Show the postmortem with its editor; POST saves its text fields."""
    incident = _incident(request, number)
    if request.method == "POST":
        fields = {name: request.POST.get(name, "") for name in FIELDS}
        try:
            postmortem = postmortems.get_or_start_postmortem(incident, request.user)
            postmortems.update_postmortem(postmortem, request.user, **fields)
        except PostmortemError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Saved.")
        return _back(request, number, "fields")
    report = postmortem_report(incident)
    show_all = request.GET.get("show") == "all"
    # The curated view lists hidden entries too, so that they can be brought back.
    rows = [e for e in report.entries if show_all or e.key or e.pinned or e.hidden]
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    owners = list(
        User.objects.filter(is_active=True).order_by("username").only("id", "username")[:OWNERS_MAX]
    )
    return render(
        request,
        "web/postmortem/editor.html",
        {
            "incident": incident,
            "report": report,
            "fields": [(name, FIELD_LABELS[name], report.field(name)) for name in FIELDS],
            "facts": facts(report),
            "pages": page_rows(report),
            "owners": owners,
            "timeline": page,
            "rows": [
                {"entry": e, "at": utc(e.at), "source": via(e.source)} for e in page.object_list
            ],
            "show_all": show_all,
            "urls": postmortems.urls_of(number),
            "can_edit": request.user.has_role(Role.RESPONDER),
            "back": request.get_full_path(),
        },
    )


# --- action items ----------------------------------------------------------------------------


def _owner(value: str) -> User | None:
    if not value:
        return None
    if not value.isdigit():
        raise PostmortemError("Choose the owner from the list.")
    owner = User.objects.filter(pk=int(value), is_active=True).first()
    if owner is None:
        raise PostmortemError("That owner is not an active user.")
    return owner


def _due(value: str) -> date | None:
    if not value:
        return None
    try:
        due = parse_date(value)
    except ValueError:
        due = None
    if due is None:
        raise PostmortemError("The due date must be a date, like 2025-03-08.")
    return due


@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
@require_POST
def add_item(request: HttpRequest, number: int) -> HttpResponse:
    """Add an action item (starting the postmortem if needed)."""
    incident = _incident(request, number)
    try:
        owner, due = _owner(request.POST.get("owner", "")), _due(request.POST.get("due", ""))
        postmortem = postmortems.get_or_start_postmortem(incident, request.user)
        action_items.add_action_item(
            postmortem,
            description=request.POST.get("description", ""),
            owner=owner,
            due=due,
            by=request.user,
        )
    except PostmortemError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Action item added.")
    return _back(request, number, "action-items")


def _item(incident: Incident, pk: int) -> ActionItem:
    item = ActionItem.objects.filter(pk=pk, postmortem__incident=incident).first()
    if item is None:
        raise Http404(f"Incident #{incident.number} has no action item {pk}.")
    return item


@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
@require_POST
def edit_item(request: HttpRequest, number: int, pk: int) -> HttpResponse:
    """Change an action item: description, owner, due date, done."""
    incident = _incident(request, number)
    item = _item(incident, pk)
    try:
        action_items.update_action_item(
            item,
            by=request.user,
            description=request.POST.get("description", item.description),
            owner=_owner(request.POST.get("owner", "")),
            due=_due(request.POST.get("due", "")),
            done=request.POST.get("done") == "on",
        )
    except PostmortemError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Action item updated.")
    return _back(request, number, f"item-{pk}")


@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
@require_POST
def delete_item(request: HttpRequest, number: int, pk: int) -> HttpResponse:
    """Delete an action item."""
    incident = _incident(request, number)
    action_items.delete_action_item(_item(incident, pk), by=request.user)
    messages.success(request, "Action item deleted.")
    return _back(request, number, "action-items")


# --- the curated timeline --------------------------------------------------------------------

_CURATE = {
    "pin": {"pinned": True},
    "unpin": {"pinned": False},
    "hide": {"hidden": True},
    "unhide": {"hidden": False},
}


@role_required(read=Role.RESPONDER, write=Role.RESPONDER)
@require_POST
def curate(request: HttpRequest, number: int, entry_id: int) -> HttpResponse:
    """Pin, unpin, hide, unhide or annotate one timeline entry (`action`, `annotation`)."""
    incident = _incident(request, number)
    entry = TimelineEntry.objects.filter(pk=entry_id, incident=incident).first()
    if entry is None:
        raise Http404(f"Entry {entry_id} is not on incident #{number}'s timeline.")
    action = request.POST.get("action", "")
    if action == "annotate":
        change = {"annotation": request.POST.get("annotation", "")}
    elif action in _CURATE:
        change = _CURATE[action]
    else:
        messages.error(request, "Pin, hide or annotate: nothing else can be done to an entry.")
        return _back(request, number, f"entry-{entry_id}")
    try:
        postmortem = postmortems.get_or_start_postmortem(incident, request.user)
        curation.curate_entry(postmortem, entry, by=request.user, **change)
    except PostmortemError as exc:
        messages.error(request, str(exc))
    return _back(request, number, f"entry-{entry_id}")


# --- exports ---------------------------------------------------------------------------------


def _export(fmt: str, *, attachment: bool):
    @role_required(read=Role.OBSERVER, write=Role.OBSERVER)
    @require_http_methods(["GET", "HEAD"])
    def view(request: HttpRequest, number: int) -> HttpResponse:
        report = postmortem_report(_incident(request, number))
        return render_export(report, fmt, attachment=attachment)

    view.__doc__ = f"Return the postmortem as {fmt}" + (", to download." if attachment else ".")
    return view


P = "incidents/<int:number>/postmortem/"

urlpatterns = [
    path(P, editor, name="web-postmortem"),
    path(P + "action-items/", add_item, name="web-postmortem-add-item"),
    path(P + "action-items/<int:pk>/", edit_item, name="web-postmortem-item"),
    path(P + "action-items/<int:pk>/delete/", delete_item, name="web-postmortem-delete-item"),
    path(P + "timeline/<int:entry_id>/", curate, name="web-postmortem-curate"),
    path(P + "export.md", _export("markdown", attachment=True), name="web-postmortem-md"),
    path(P + "export.json", _export("json", attachment=True), name="web-postmortem-json"),
    path(P + "print/", _export("html", attachment=False), name="web-postmortem-print"),
]

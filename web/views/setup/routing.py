"""Setup: routing rules (ordered; the first whose matchers all match sends the alert to its
service) and silences (matching alerts open no incident and page no one)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Max
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone

from accounts.audit import snapshot
from accounts.models import Role
from alerts.models import RoutingRule, Silence
from alerts.services import create_silence, expire_silence, update_silence
from web.access import role_required
from web.views.setup.common import (
    READ,
    WRITE,
    delete_audited,
    move,
    page_of,
    render_page,
    save_audited,
)
from web.views.setup.forms import DATETIME_FORMAT, RoutingRuleForm, SilenceForm, matchers_text

# As alerts/api.py SilenceViewSet: responders silence (at 3 a.m., without an admin).
SILENCE_WRITE = Role.RESPONDER
MAX_RULES_SHOWN = 500  # rules are read in full by every ingest batch; a few dozen is usual


# --- routing rules ----------------------------------------------------------------------------


@role_required(read=READ, write=WRITE)
def rule_list(request):
    """List routing rules in the order they are tried."""
    rules = list(
        RoutingRule.objects.select_related("integration", "service").order_by("position", "id")[
            :MAX_RULES_SHOWN
        ]
    )
    for rule in rules:
        rule.matchers_text = matchers_text(rule.matchers)
    return render_page(request, "web/setup/routing.html", {"rules": rules})


@role_required(read=READ, write=WRITE)
def rule_edit(request, rule_id: int | None = None):
    """Create a routing rule (last in order), or edit one."""
    rule = get_object_or_404(RoutingRule, pk=rule_id) if rule_id is not None else None
    before = snapshot(rule) if rule else None
    form = RoutingRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if rule is None:
            top = RoutingRule.objects.aggregate(top=Max("position"))["top"]
            saved.position = 0 if top is None else top + 1
        save_audited(request.user, saved, before)
        messages.success(request, f"Saved routing rule {saved}.")
        return redirect("web-setup-routing")
    return render_page(request, "web/setup/rule_form.html", {"form": form, "rule": rule})


@role_required(read=READ, write=WRITE)
def rule_delete(request, rule_id: int):
    """Ask to confirm (GET), then delete the routing rule (POST)."""
    rule = get_object_or_404(RoutingRule.objects.select_related("service"), pk=rule_id)
    if request.method == "POST":
        delete_audited(request.user, rule)
        messages.success(request, f"Deleted routing rule {rule}.")
        return redirect("web-setup-routing")
    return render_page(request, "web/setup/rule_delete.html", {"rule": rule})


@role_required(read=READ, write=WRITE)
def rule_move(request, rule_id: int):
    """Move a routing rule one place up or down (POST direction=up|down)."""
    if request.method == "POST":
        rules = RoutingRule.objects.order_by("position", "id")[:MAX_RULES_SHOWN]
        move(request.user, rules, rule_id, request.POST.get("direction", ""))
    return redirect(f"/setup/routing/#rule-{rule_id}")


# --- silences ---------------------------------------------------------------------------------


@role_required(read=READ, write=SILENCE_WRITE)
def silence_list(request):
    """List silences: active, upcoming, or expired (?show=)."""
    now = timezone.now()
    show = request.GET.get("show", "active")
    silences = Silence.objects.select_related("created_by", "service")
    if show == "upcoming":
        silences = silences.filter(starts_at__gt=now).order_by("starts_at", "id")
    elif show == "expired":
        silences = silences.filter(ends_at__lte=now).order_by("-ends_at", "-id")
    else:
        show = "active"
        silences = silences.active(now).order_by("ends_at", "id")
    page = page_of(request, silences)
    for silence in page:
        silence.matchers_text = matchers_text(silence.matchers)
    return render_page(request, "web/setup/silences.html", {"page": page, "show": show, "now": now})


@role_required(read=READ, write=SILENCE_WRITE)
def silence_new(request):
    """Create a silence, starting now and lasting two hours unless told otherwise."""
    now = timezone.now().replace(second=0, microsecond=0)
    initial = {
        "starts_at": now.strftime(DATETIME_FORMAT),
        "ends_at": (now + timedelta(hours=2)).strftime(DATETIME_FORMAT),
    }
    form = SilenceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            silence = create_silence(
                matchers=data["matchers"],
                service=data["service"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                comment=data["comment"],
                by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Silence {silence.pk} created.")
            return redirect("web-setup-silences")
    return render_page(request, "web/setup/silence_form.html", {"form": form, "editing": None})


@role_required(read=READ, write=SILENCE_WRITE)
def silence_edit(request, silence_id: int):
    """Edit a silence that has not ended: extend or shorten it, change what it matches."""
    silence = get_object_or_404(Silence, pk=silence_id)
    if silence.ends_at <= timezone.now():
        messages.error(request, f"Silence {silence.pk} has ended; create a new one instead.")
        return redirect("web-setup-silences")
    form = SilenceForm(request.POST or None, instance=Silence.objects.get(pk=silence.pk))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            update_silence(
                silence,
                by=request.user,
                matchers=data["matchers"],
                service=data["service"],
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                comment=data["comment"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Silence {silence.pk} saved.")
            return redirect("web-setup-silences")
    return render_page(request, "web/setup/silence_form.html", {"form": form, "editing": silence})


@role_required(read=READ, write=SILENCE_WRITE)
def silence_expire(request, silence_id: int):
    """End a silence now (POST only); an upcoming one ends before it starts."""
    if request.method == "POST":
        silence = get_object_or_404(Silence, pk=silence_id)
        if silence.ends_at > timezone.now():
            expire_silence(silence, by=request.user)
            messages.success(request, f"Silence {silence.pk} expired.")
    return redirect("web-setup-silences")


urlpatterns = [
    path("setup/routing/", rule_list, name="web-setup-routing"),
    path("setup/routing/new/", rule_edit, name="web-setup-rule-new"),
    path("setup/routing/<int:rule_id>/", rule_edit, name="web-setup-rule"),
    path("setup/routing/<int:rule_id>/delete/", rule_delete, name="web-setup-rule-delete"),
    path("setup/routing/<int:rule_id>/move/", rule_move, name="web-setup-rule-move"),
    path("setup/silences/", silence_list, name="web-setup-silences"),
    path("setup/silences/new/", silence_new, name="web-setup-silence-new"),
    path("setup/silences/<int:silence_id>/", silence_edit, name="web-setup-silence"),
    path(
        "setup/silences/<int:silence_id>/expire/", silence_expire, name="web-setup-silence-expire"
    ),
]

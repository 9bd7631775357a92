"""Web UI: my settings (time zone, quiet hours), API tokens and iCal feed URL."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from accounts.audit import HIDDEN, UPDATED, diff, record_change, snapshot
from accounts.models import ApiToken, Role
from accounts.services import create_api_token, revoke_api_token
from oncall import people
from web.access import role_required
from web.views.profile.forms import SettingsForm, TokenForm
from web.views.profile.page import profile_context


@require_POST
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def update_settings(request: HttpRequest) -> HttpResponse:
    """Change my time zone and quiet hours."""
    form = SettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        before = snapshot(people.person_settings(request.user))
        try:
            with transaction.atomic():
                prefs = people.update_person_settings(
                    request.user,
                    time_zone=data["time_zone"].strip(),
                    quiet_start=data["quiet_start"],
                    quiet_end=data["quiet_end"],
                )
                record_change(request.user, UPDATED, prefs, diff(before, snapshot(prefs)))
        except people.ContactMethodError as exc:
            field = "time_zone" if "time zone" in str(exc) else None
            form.add_error(field, str(exc))
        else:
            messages.success(request, "Saved your time zone and quiet hours.")
            return redirect("web-profile")
    context = profile_context(request, settings_form=form)
    return render(request, "web/profile/page.html", context, status=400)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def create_token(request: HttpRequest) -> HttpResponse:
    """Create an API token and show its secret, this once (never stored, never redirected to)."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        context = profile_context(request, token_form=form)
        return render(request, "web/profile/page.html", context, status=400)
    token, secret = create_api_token(request.user, name=form.cleaned_data["name"].strip())
    response = render(request, "web/profile/token_created.html", {"token": token, "secret": secret})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of my API tokens."""
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    revoke_api_token(token)
    messages.success(request, f"Revoked the token {token}.")
    return redirect("web-profile")


@require_POST
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def rotate_ical(request: HttpRequest) -> HttpResponse:
    """Give my iCal feed a new secret URL; the old one stops working at once."""
    with transaction.atomic():
        prefs = people.rotate_ical_token(request.user)
        record_change(
            request.user,
            UPDATED,
            prefs,
            {"ical_token": [HIDDEN, HIDDEN]},
            summary=f"{request.user.get_username()} rotated their iCal URL",
        )
    messages.success(request, "Your calendar has a new URL; the old one no longer works.")
    return redirect("web-profile")


urlpatterns = [
    path("profile/settings/", update_settings, name="web-profile-settings"),
    path("profile/tokens/", create_token, name="web-profile-add-token"),
    path("profile/tokens/<int:token_id>/revoke/", revoke_token, name="web-profile-revoke-token"),
    path("profile/ical/rotate/", rotate_ical, name="web-profile-rotate-ical"),
]

"""Web UI: my profile — contact methods (add, verify by code, test page, delete), notification
rules, time zone and quiet hours, API tokens, and my iCal feed URL.

Roles match /api/v1/me/*: anyone signed in reads their profile and manages their settings,
tokens and iCal URL; contact methods and rules need the responder role. Every write goes
through oncall.people / accounts.services and is audited like the API's.
"""

from __future__ import annotations

import functools
from zoneinfo import available_timezones

import phonenumbers
from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from accounts.audit import CREATED, DELETED, HIDDEN, UPDATED, diff, record_change, snapshot
from accounts.models import ApiToken, Role, User
from accounts.services import create_api_token, revoke_api_token
from incidents.models import Urgency
from oncall import people
from oncall.channels.base import DeliveryError
from oncall.channels.registry import channel_for
from oncall.ical import ical_url
from oncall.models import ContactKind, ContactMethod, NotificationRule
from oncall.testpage import send_test_page
from web.access import role_required

MAX_TOKENS_SHOWN = 50


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Return the IANA zone names, sorted (read from disk once: it takes tens of ms)."""
    return tuple(sorted(available_timezones()))


# --- forms ------------------------------------------------------------------------------------


class ContactMethodForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (ContactKind.SMS, "SMS"),
            (ContactKind.VOICE, "Voice call"),
            (ContactKind.EMAIL, "Email"),
        ],
        label="Kind",
    )
    address = forms.CharField(
        max_length=254,
        label="Phone number or email",
        help_text="A phone number with its country code, like +14155550100.",
    )
    region = forms.CharField(
        max_length=2,
        required=False,
        label="Country",
        help_text="For a number without +: its country code, like US or DE.",
    )
    label = forms.CharField(max_length=100, required=False, label="Label")

    def clean_region(self) -> str:
        region = self.cleaned_data["region"].strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise forms.ValidationError(f"{region} is not a country code, like US or DE")
        return region


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=20,
        label="Code",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class RuleForm(forms.Form):
    urgency = forms.ChoiceField(choices=Urgency.choices, label="Urgency")
    delay_minutes = forms.IntegerField(
        min_value=0, max_value=people.MAX_RULE_DELAY_MINUTES, initial=0, label="After (minutes)"
    )
    contact_method = forms.ModelChoiceField(
        queryset=ContactMethod.objects.none(), label="Contact method", empty_label=None
    )

    def __init__(self, *args, user: User, methods=None, **kwargs):
        super().__init__(*args, **kwargs)
        if methods is None:
            methods = list(ContactMethod.objects.filter(user=user, verified_at__isnull=False))
        self.fields["contact_method"].queryset = ContactMethod.objects.filter(
            pk__in=[m.pk for m in methods if m.is_verified]
        )
        # The choices render from the list already fetched, not another query per form.
        self.fields["contact_method"].choices = [(m.pk, str(m)) for m in methods if m.is_verified]


class SettingsForm(forms.Form):
    time_zone = forms.CharField(
        max_length=64,
        label="Time zone",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    quiet_start = forms.TimeField(
        required=False, label="Quiet from", widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_end = forms.TimeField(
        required=False, label="Quiet until", widget=forms.TimeInput(attrs={"type": "time"})
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name")


# --- the page ---------------------------------------------------------------------------------


def _profile_context(request: HttpRequest, **overrides) -> dict:
    """Return everything the profile page shows; `overrides` replace unbound forms with bound
    ones that carry errors."""
    user = request.user
    methods = list(ContactMethod.objects.filter(user=user).order_by("kind", "id"))
    by_id = {m.pk: m for m in methods}
    rules = list(NotificationRule.objects.filter(user=user).order_by("urgency", "delay_minutes"))
    for rule in rules:
        rule.contact_method = by_id[rule.contact_method_id]  # already fetched: no join needed
    rule_forms = overrides.pop("rule_forms", {})
    for rule in rules:
        rule.form = rule_forms.get(rule.pk) or RuleForm(
            user=user,
            methods=methods,
            prefix=f"rule-{rule.pk}",
            initial={
                "urgency": rule.urgency,
                "delay_minutes": rule.delay_minutes,
                "contact_method": rule.contact_method_id,
            },
        )
    prefs = people.person_settings(user)
    tokens = list(
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at", "-id")[
            :MAX_TOKENS_SHOWN
        ]
    )
    context = {
        "methods": methods,
        "rules": rules,
        "prefs": prefs,
        "tokens": tokens,
        "ical_url": ical_url("person", prefs.ical_token),
        "can_manage_methods": user.has_role(Role.RESPONDER),
        "console_outbox": channel_for(ContactKind.SMS) == "console",
        "time_zones": time_zone_names(),
        "method_form": ContactMethodForm(),
        "rule_form": RuleForm(user=user, methods=methods, prefix="new-rule"),
        "settings_form": SettingsForm(
            initial={
                "time_zone": prefs.time_zone,
                "quiet_start": prefs.quiet_start,
                "quiet_end": prefs.quiet_end,
            }
        ),
        "token_form": TokenForm(),
        "new_token": None,
        "max_tokens": MAX_TOKENS_SHOWN,
    }
    context.update(overrides)
    return context


@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def profile_page(request: HttpRequest) -> HttpResponse:
    """Show the signed-in person's profile."""
    return render(request, "web/profile/page.html", _profile_context(request))


def _own_method(request: HttpRequest, method_id: int) -> ContactMethod:
    # Someone else's method is a 404, exactly like one that does not exist.
    return get_object_or_404(
        ContactMethod.objects.select_related("user"), pk=method_id, user=request.user
    )


# --- contact methods --------------------------------------------------------------------------


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def add_method(request: HttpRequest) -> HttpResponse:
    """Add an unverified contact method, then offer to send it a code."""
    form = ContactMethodForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                method = people.add_contact_method(
                    request.user,
                    data["kind"],
                    data["address"],
                    label=data["label"],
                    region=data["region"] or None,
                )
                record_change(request.user, CREATED, method, snapshot(method))
        except people.InvalidAddress as exc:
            form.add_error("address", str(exc))
        else:
            messages.success(request, f"Added {method}. Send it a code to verify it.")
            return redirect("web-profile")
    context = _profile_context(request, method_form=form)
    return render(request, "web/profile/page.html", context, status=400)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def send_code(request: HttpRequest, method_id: int) -> HttpResponse:
    """Send a verification code to one of my methods and open the form to type it in."""
    method = _own_method(request, method_id)
    if method.is_verified:
        messages.info(request, f"{method} is already verified.")
        return redirect("web-profile")
    try:
        people.start_verification(method)
    except people.VerificationFailed as exc:
        messages.error(request, f"No new code sent: {exc}.")
    except DeliveryError as exc:
        messages.error(request, f"The code could not be sent to {method}: {exc}")
        return redirect("web-profile")
    else:
        messages.success(request, f"A code was sent to {method}; it is valid for 10 minutes.")
    return redirect("web-profile-verify", method_id=method.pk)


@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def verify_method(request: HttpRequest, method_id: int) -> HttpResponse:
    """Show the code form for one of my methods, and check the code typed in."""
    method = _own_method(request, method_id)
    if method.is_verified:
        messages.info(request, f"{method} is verified.")
        return redirect("web-profile")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                method = people.confirm_verification(method, form.cleaned_data["code"])
            except people.VerificationFailed as exc:
                form.add_error("code", str(exc))
            else:
                messages.success(request, f"{method} is verified.")
                return redirect("web-profile")
        status = 400
        method.refresh_from_db()  # a wrong or expired code changed what can be done next
    context = {
        "method": method,
        "form": form,
        "code_pending": bool(method.verification_code_hash),
        "console_outbox": channel_for(method.kind) == "console",
    }
    return render(request, "web/profile/verify.html", context, status=status)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def delete_method(request: HttpRequest, method_id: int) -> HttpResponse:
    """Delete one of my methods and the rules that use it."""
    method = _own_method(request, method_id)
    with transaction.atomic():
        before, pk, name = snapshot(method), method.pk, str(method)
        people.delete_contact_method(method)
        record_change(request.user, DELETED, method, before, object_id=pk)
    messages.success(request, f"Deleted {name}.")
    return redirect("web-profile")


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def test_method(request: HttpRequest, method_id: int) -> HttpResponse:
    """Send a test page to one of my verified methods."""
    method = _own_method(request, method_id)
    try:
        send_test_page(method, by=request.user)
    except people.ContactMethodError as exc:
        messages.error(request, f"No test page sent: {exc}.")
    except DeliveryError as exc:
        messages.error(request, f"The test page to {method} failed: {exc}")
    else:
        where = " (see the dev outbox)" if channel_for(method.kind) == "console" else ""
        messages.success(request, f"Test page sent to {method}{where}.")
    return redirect("web-profile")


# --- notification rules -----------------------------------------------------------------------


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def add_rule(request: HttpRequest) -> HttpResponse:
    """Add a notification rule on one of my verified methods."""
    form = RuleForm(request.POST, user=request.user, prefix="new-rule")
    if form.is_valid():
        try:
            with transaction.atomic():
                rule = people.add_notification_rule(request.user, **form.cleaned_data)
                record_change(request.user, CREATED, rule, snapshot(rule))
        except people.ContactMethodError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Added the rule {rule}.")
            return redirect("web-profile")
    context = _profile_context(request, rule_form=form)
    return render(request, "web/profile/page.html", context, status=400)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def update_rule(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Change one of my rules' urgency, delay or contact method."""
    rule = get_object_or_404(
        NotificationRule.objects.select_related("user", "contact_method"),
        pk=rule_id,
        user=request.user,
    )
    form = RuleForm(request.POST, user=request.user, prefix=f"rule-{rule.pk}")
    if form.is_valid():
        before = snapshot(rule)
        try:
            with transaction.atomic():
                people.update_notification_rule(rule, **form.cleaned_data)
                record_change(request.user, UPDATED, rule, diff(before, snapshot(rule)))
        except people.ContactMethodError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved the rule {rule}.")
            return redirect("web-profile")
    context = _profile_context(request, rule_forms={rule.pk: form})
    return render(request, "web/profile/page.html", context, status=400)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.RESPONDER)
def delete_rule(request: HttpRequest, rule_id: int) -> HttpResponse:
    """Delete one of my rules."""
    rule = get_object_or_404(
        NotificationRule.objects.select_related("contact_method"), pk=rule_id, user=request.user
    )
    with transaction.atomic():
        before, pk, name = snapshot(rule), rule.pk, str(rule)
        people.delete_notification_rule(rule)
        record_change(request.user, DELETED, rule, before, object_id=pk)
    messages.success(request, f"Deleted the rule {name}.")
    return redirect("web-profile")


# --- settings, tokens, iCal -------------------------------------------------------------------


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
    context = _profile_context(request, settings_form=form)
    return render(request, "web/profile/page.html", context, status=400)


@require_POST
@role_required(read=Role.OBSERVER, write=Role.OBSERVER)
def create_token(request: HttpRequest) -> HttpResponse:
    """Create an API token and show its secret, this once (never stored, never redirected to)."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        context = _profile_context(request, token_form=form)
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
    path("profile/", profile_page, name="web-profile"),
    path("profile/contact-methods/", add_method, name="web-profile-add-method"),
    path(
        "profile/contact-methods/<int:method_id>/send-code/",
        send_code,
        name="web-profile-send-code",
    ),
    path(
        "profile/contact-methods/<int:method_id>/verify/",
        verify_method,
        name="web-profile-verify",
    ),
    path(
        "profile/contact-methods/<int:method_id>/delete/",
        delete_method,
        name="web-profile-delete-method",
    ),
    path(
        "profile/contact-methods/<int:method_id>/test/",
        test_method,
        name="web-profile-test-method",
    ),
    path("profile/rules/", add_rule, name="web-profile-add-rule"),
    path("profile/rules/<int:rule_id>/", update_rule, name="web-profile-update-rule"),
    path("profile/rules/<int:rule_id>/delete/", delete_rule, name="web-profile-delete-rule"),
    path("profile/settings/", update_settings, name="web-profile-settings"),
    path("profile/tokens/", create_token, name="web-profile-add-token"),
    path("profile/tokens/<int:token_id>/revoke/", revoke_token, name="web-profile-revoke-token"),
    path("profile/ical/rotate/", rotate_ical, name="web-profile-rotate-ical"),
]

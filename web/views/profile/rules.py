"""Web UI: my notification rules — which contact method is paged, at which urgency, when."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import Role
from oncall import people
from oncall.models import NotificationRule
from web.access import role_required
from web.views.profile.forms import RuleForm
from web.views.profile.page import profile_context


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
    context = profile_context(request, rule_form=form)
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
    context = profile_context(request, rule_forms={rule.pk: form})
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


urlpatterns = [
    path("profile/rules/", add_rule, name="web-profile-add-rule"),
    path("profile/rules/<int:rule_id>/", update_rule, name="web-profile-update-rule"),
    path("profile/rules/<int:rule_id>/delete/", delete_rule, name="web-profile-delete-rule"),
]

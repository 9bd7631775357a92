"""Setup: escalation policies and their ordered steps (who is paged, then how long to wait)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect
from django.urls import path

from accounts.audit import CREATED, record_change, snapshot
from oncall.models import EscalationPolicy, EscalationStep
from oncall.policies import ordered_steps, remove_step
from web.access import role_required
from web.views.setup.common import (
    READ,
    WRITE,
    move,
    page_of,
    render_page,
    save_audited,
)
from web.views.setup.forms import EscalationPolicyForm, EscalationStepForm


def _steps():
    return Prefetch(
        "steps",
        queryset=EscalationStep.objects.order_by("position", "id").prefetch_related(
            "users", "schedules", "teams"
        ),
    )


@role_required(read=READ, write=WRITE)
def policy_list(request):
    """List escalation policies with their steps."""
    policies = EscalationPolicy.objects.select_related("team").prefetch_related(_steps())
    return render_page(request, "web/setup/policies.html", {"page": page_of(request, policies)})


@role_required(read=READ, write=WRITE)
def policy_new(request):
    """Create an escalation policy; its steps are added on its page."""
    form = EscalationPolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        policy = form.save(commit=False)
        save_audited(request.user, policy, None)
        messages.success(request, f"Created policy {policy.name}; now add its steps.")
        return redirect("web-setup-policy", policy_id=policy.pk)
    return render_page(request, "web/setup/policy_new.html", {"form": form})


@role_required(read=READ, write=WRITE)
def policy_detail(request, policy_id: int):
    """Show a policy's steps in order, with the forms to edit it and to add a step."""
    policy = get_object_or_404(
        EscalationPolicy.objects.select_related("team").prefetch_related(_steps()), pk=policy_id
    )
    before = snapshot(policy)
    form = EscalationPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        save_audited(request.user, form.save(commit=False), before)
        messages.success(request, f"Saved policy {policy.name}.")
        return redirect("web-setup-policy", policy_id=policy.pk)
    return render_page(
        request,
        "web/setup/policy.html",
        {"policy": policy, "form": form, "step_form": EscalationStepForm(policy=policy)},
    )


@role_required(read=READ, write=WRITE)
def step_add(request, policy_id: int):
    """Add a step at the end of the policy (POST); with errors, show them on the policy page."""
    policy = get_object_or_404(
        EscalationPolicy.objects.select_related("team").prefetch_related(_steps()), pk=policy_id
    )
    if request.method != "POST":
        return redirect("web-setup-policy", policy_id=policy.pk)
    step_form = EscalationStepForm(request.POST, policy=policy)
    if step_form.is_valid():
        step = step_form.save(commit=False)
        step.policy = policy
        step.position = len(policy.steps.all())
        step.save()
        step_form.save_m2m()
        record_change(request.user, CREATED, step, snapshot(step))
        messages.success(request, f"Added step {step.position + 1}.")
        return redirect("web-setup-policy", policy_id=policy.pk)
    return render_page(
        request,
        "web/setup/policy.html",
        {"policy": policy, "form": EscalationPolicyForm(instance=policy), "step_form": step_form},
        status=400,
    )


@role_required(read=READ, write=WRITE)
def step_delete(request, policy_id: int, step_id: int):
    """Remove a step (POST) and close the gap in the order."""
    if request.method == "POST":
        step = get_object_or_404(EscalationStep, pk=step_id, policy_id=policy_id)
        remove_step(step, by=request.user)
        messages.success(request, "Step removed.")
    return redirect("web-setup-policy", policy_id=policy_id)


@role_required(read=READ, write=WRITE)
def step_move(request, policy_id: int, step_id: int):
    """Move a step one place up or down (POST direction=up|down)."""
    if request.method == "POST":
        move(request.user, ordered_steps(policy_id), step_id, request.POST.get("direction", ""))
    return redirect(f"/setup/policies/{policy_id}/#step-{step_id}")


urlpatterns = [
    path("setup/policies/", policy_list, name="web-setup-policies"),
    path("setup/policies/new/", policy_new, name="web-setup-policy-new"),
    path("setup/policies/<int:policy_id>/", policy_detail, name="web-setup-policy"),
    path("setup/policies/<int:policy_id>/steps/", step_add, name="web-setup-step-add"),
    path(
        "setup/policies/<int:policy_id>/steps/<int:step_id>/delete/",
        step_delete,
        name="web-setup-step-delete",
    ),
    path(
        "setup/policies/<int:policy_id>/steps/<int:step_id>/move/",
        step_move,
        name="web-setup-step-move",
    ),
]

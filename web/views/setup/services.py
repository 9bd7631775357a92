"""Setup: services (name, urgency, auto-resolve, grouping) and the escalation policy of each."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import path

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from alerts.models import Integration
from incidents.models import OPEN_STATUSES, Incident, Service
from oncall.models import ServicePolicy
from web.access import role_required
from web.views.setup.common import READ, WRITE, count_of, page_of, render_page, save_audited
from web.views.setup.forms import ServiceForm


@role_required(read=READ, write=WRITE)
def service_list(request):
    """List services with their policy and how many integrations and open incidents they have."""
    services = (
        Service.objects.select_related("escalation__policy")
        .annotate(
            integration_count=count_of(Integration, "service"),
            open_count=count_of(Incident, "service", status__in=OPEN_STATUSES),
        )
        .order_by("name")
    )
    return render_page(request, "web/setup/services.html", {"page": page_of(request, services)})


@role_required(read=READ, write=WRITE)
def service_edit(request, service_id: int | None = None):
    """Create a service, or edit one (its escalation policy too)."""
    service = None
    if service_id is not None:
        service = get_object_or_404(Service.objects.select_related("escalation"), pk=service_id)
    # Before the form: validating it writes the new values into `service`.
    before = snapshot(service) if service else None
    form = ServiceForm(request.POST or None, instance=service)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save(commit=False)
            save_audited(request.user, saved, before)
            _set_policy(request.user, saved, form.cleaned_data["policy"])
        messages.success(request, f"Saved service {saved.name}.")
        return redirect("web-setup-services")
    return render_page(request, "web/setup/service_form.html", {"form": form, "service": service})


def _set_policy(user, service: Service, policy) -> None:
    """Make `policy` (or none) the one the service's incidents follow, auditing the change."""
    current = ServicePolicy.objects.filter(service=service).first()
    if policy is None:
        if current is not None:
            before, pk = snapshot(current), current.pk
            current.delete()
            record_change(user, DELETED, current, before, object_id=pk)
    elif current is None:
        created = ServicePolicy.objects.create(service=service, policy=policy)
        record_change(user, CREATED, created, snapshot(created))
    elif current.policy_id != policy.pk:
        before = snapshot(current)
        current.policy = policy
        current.save(update_fields=["policy"])
        record_change(user, UPDATED, current, diff(before, snapshot(current)))


urlpatterns = [
    path("setup/services/", service_list, name="web-setup-services"),
    path("setup/services/new/", service_edit, name="web-setup-service-new"),
    path("setup/services/<int:service_id>/", service_edit, name="web-setup-service"),
]

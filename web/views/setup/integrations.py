"""Setup: integrations, where alerts come from: their URLs and keys, a test alert, and what
each received lately (alerts, and requests with their warnings and refusals)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import path

from accounts.audit import UPDATED, record_change, snapshot
from accounts.models import Role
from alerts.models import Alert, IngestRequest, Integration, Kind, Outcome
from alerts.services import CannotSendTestAlert, rotate_integration_token, send_test_alert
from incidents.models import Service
from web.access import role_required
from web.views.setup.common import READ, WRITE, page_of, render_page, save_audited
from web.views.setup.forms import IntegrationCreateForm, IntegrationForm

RECENT = 20
PROBLEM_WINDOW = 2000  # latest requests searched for warnings and refusals


@role_required(read=READ, write=WRITE)
def integration_list(request):
    """List integrations by service (?service=<id> for one)."""
    integrations = Integration.objects.select_related("service").order_by("service__name", "name")
    service = None
    if (service_id := request.GET.get("service", "")).isdigit():
        service = get_object_or_404(Service, pk=service_id)
        integrations = integrations.filter(service=service)
    return render_page(
        request,
        "web/setup/integrations.html",
        {"page": page_of(request, integrations), "service": service},
    )


@role_required(read=READ, write=WRITE)
def integration_new(request):
    """Create an integration: its kind, name and default service."""
    initial = {}
    if (service_id := request.GET.get("service", "")).isdigit():
        initial["service"] = service_id
    form = IntegrationCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        integration = form.save(commit=False)
        save_audited(request.user, integration, None)
        messages.success(request, f"Created integration {integration.name}.")
        return redirect("web-setup-integration", integration_id=integration.pk)
    return render_page(request, "web/setup/integration_new.html", {"form": form})


@role_required(read=READ, write=WRITE)
def integration_detail(request, integration_id: int):
    """Show an integration (its URL and key to admins) and save its settings."""
    integration = get_object_or_404(
        Integration.objects.select_related("service"), pk=integration_id
    )
    before = snapshot(integration)
    form = IntegrationForm(request.POST or None, instance=integration)
    if request.method == "POST" and form.is_valid():
        save_audited(request.user, form.save(commit=False), before)
        messages.success(request, f"Saved integration {integration.name}.")
        return redirect("web-setup-integration", integration_id=integration.pk)
    return render_page(
        request, "web/setup/integration.html", _detail_context(request, integration, form)
    )


def _detail_context(request, integration: Integration, form: IntegrationForm) -> dict:
    alerts = (
        Alert.objects.filter(integration=integration)
        .select_related("incident")
        .order_by("-id")[:RECENT]
    )
    requests = IngestRequest.objects.filter(integration=integration).defer("body")
    problems_only = request.GET.get("problems") == "1"
    if problems_only:
        # Looked for among the latest requests only: a busy integration's whole history is
        # too long to scan on a page view.
        # (The ids first, as a list: as a subquery the planner scans the whole table.)
        window = requests.order_by("-received_at", "-id").values_list("pk", flat=True)
        requests = requests.filter(pk__in=list(window[:PROBLEM_WINDOW])).filter(
            Q(outcome=Outcome.REJECTED) | ~Q(warnings=[]) | ~Q(error="")
        )
    requests = list(requests.order_by("-received_at", "-id")[:RECENT])
    is_admin = request.user.has_role(Role.ADMIN)
    sent = request.GET.get("sent", "")
    return {
        "integration": integration,
        "form": form,
        "alerts": alerts,
        "requests": requests,
        "problems_only": problems_only,
        "problem_window": PROBLEM_WINDOW,
        "sent": int(sent) if sent.isdigit() else None,
        "is_admin": is_admin,
        "show_secrets": is_admin,
        "keyed": integration.kind in (Kind.PAGERDUTY, Kind.OPSGENIE),
        "base_url": settings.PUBLIC_URL + "/",
        "can_test": integration.kind != Kind.HEARTBEAT,
    }


@role_required(read=READ, write=WRITE)
def integration_rotate(request, integration_id: int):
    """Ask to confirm (GET), then give the integration a new token (POST)."""
    integration = get_object_or_404(Integration, pk=integration_id)
    if request.method == "POST":
        rotate_integration_token(integration)
        record_change(request.user, UPDATED, integration, {"token": ["[secret]", "[secret]"]})
        messages.success(request, "New token made; the old URL and key are refused from now on.")
        return redirect("web-setup-integration", integration_id=integration.pk)
    return render_page(request, "web/setup/integration_rotate.html", {"integration": integration})


@role_required(read=READ, write=WRITE)
def integration_enabled(request, integration_id: int):
    """Enable (`enabled=1`) or disable the integration (POST only)."""
    if request.method != "POST":
        return redirect("web-setup-integration", integration_id=integration_id)
    integration = get_object_or_404(Integration, pk=integration_id)
    before = snapshot(integration)
    integration.enabled = request.POST.get("enabled") == "1"
    save_audited(request.user, integration, before, update_fields=["enabled"])
    state = "enabled" if integration.enabled else "disabled: its senders are refused"
    messages.success(request, f"Integration {integration.name} {state}.")
    return redirect("web-setup-integration", integration_id=integration.pk)


@role_required(read=READ, write=WRITE)
def integration_test(request, integration_id: int):
    """Send a test alert through the integration (POST only) and show where it landed."""
    if request.method != "POST":
        return redirect("web-setup-integration", integration_id=integration_id)
    integration = get_object_or_404(Integration, pk=integration_id)
    try:
        stored = send_test_alert(integration, by=request.user.get_username())
    except CannotSendTestAlert as exc:
        messages.error(request, f"No test alert sent: {exc}.")
        return redirect("web-setup-integration", integration_id=integration.pk)
    messages.success(
        request,
        f"Test alert sent as request {stored.pk}; it is processed in a moment "
        "(reload to see the alert and its incident).",
    )
    url = f"/setup/integrations/{integration.pk}/?sent={stored.pk}#request-{stored.pk}"
    return redirect(url)


urlpatterns = [
    path("setup/integrations/", integration_list, name="web-setup-integrations"),
    path("setup/integrations/new/", integration_new, name="web-setup-integration-new"),
    path(
        "setup/integrations/<int:integration_id>/",
        integration_detail,
        name="web-setup-integration",
    ),
    path(
        "setup/integrations/<int:integration_id>/rotate/",
        integration_rotate,
        name="web-setup-integration-rotate",
    ),
    path(
        "setup/integrations/<int:integration_id>/enabled/",
        integration_enabled,
        name="web-setup-integration-enabled",
    ),
    path(
        "setup/integrations/<int:integration_id>/test/",
        integration_test,
        name="web-setup-integration-test",
    ),
]

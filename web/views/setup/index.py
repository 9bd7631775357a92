"""Setup: the start page, with what is configured and how much of it, and the chat platforms
(Slack, Mattermost): their settings, their outbox's delivery, a test message."""

from __future__ import annotations

from django.db.models import Count, Q
from django.urls import path
from django.utils import timezone

from alerts.models import Integration, RoutingRule, Silence
from incidents.models import Service
from oncall.models import EscalationPolicy
from runbooks.models import Runbook
from warroom.chat.status import overview
from web.access import role_required
from web.views.setup.common import READ, WRITE, render_page
from web.views.setup.forms import ChatTestForm


@role_required(read=READ, write=WRITE)
def setup_index(request):
    """Show each setup area with its counts, and the chat platforms."""
    return render_page(request, "web/setup/index.html", index_context())


def index_context(test_forms: dict[str, ChatTestForm] | None = None) -> dict:
    """The start page's areas and chat platforms; `test_forms` by platform (a bound form with
    its errors), else each platform's test form with its default channel."""
    now = timezone.now()
    integrations = Integration.objects.aggregate(
        total=Count("pk"), disabled=Count("pk", filter=Q(enabled=False))
    )
    silences = Silence.objects.aggregate(
        active=Count("pk", filter=Q(starts_at__lte=now, ends_at__gt=now)),
        upcoming=Count("pk", filter=Q(starts_at__gt=now)),
    )
    areas = [
        ("Services", "web-setup-services", Service.objects.count(), "What incidents belong to."),
        (
            "Integrations",
            "web-setup-integrations",
            integrations["total"],
            f"Where alerts come from ({integrations['disabled']} disabled).",
        ),
        (
            "Routing rules",
            "web-setup-routing",
            RoutingRule.objects.count(),
            "Which service an alert goes to, by its labels.",
        ),
        (
            "Silences",
            "web-setup-silences",
            silences["active"],
            f"Active now ({silences['upcoming']} upcoming): matching alerts page no one.",
        ),
        (
            "Escalation policies",
            "web-setup-policies",
            EscalationPolicy.objects.count(),
            "Who is paged, in what order.",
        ),
        ("Runbooks", "web-setup-runbooks", Runbook.objects.count(), "What to do, per service."),
    ]
    platforms = overview(now)
    forms = test_forms or {}
    chat = [
        (
            status,
            forms.get(status.name)
            or ChatTestForm(platform=status.name, initial={"channel_id": status.test_channel}),
        )
        for status in platforms
    ]
    return {"areas": areas, "chat": chat}


urlpatterns = [path("setup/", setup_index, name="web-setup")]

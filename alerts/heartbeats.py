"""Heartbeats, a dead-man's switch: a silent monitoring system is itself an alert."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from alerts import metrics, pipeline
from alerts.admission import (
    allow_methods,
    find_integration,
    refuse,
    unavailable_without_database,
)
from alerts.decoding import Rejected
from alerts.models import Integration, Kind
from alerts.sources.base import FIRING, RESOLVED, NormalizedAlert
from core.api_errors import error_json
from core.compiled import Lookup

FINGERPRINT = "heartbeat"


def _alert(integration: Integration, status: str, summary: str) -> NormalizedAlert:
    return NormalizedAlert(
        fingerprint=FINGERPRINT,
        status=status,
        summary=summary,
        severity=2,
        labels={"alertname": "HeartbeatMissed", "integration": integration.name},
        group_key=FINGERPRINT,
        raw={"heartbeat": integration.name, "status": status},
    )


def ping(integration: Integration) -> bool:
    """Record a ping; if the heartbeat was overdue, resolve its alert. Return whether it was."""
    now = timezone.now()
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        was_down = locked.heartbeat_down
        Integration.objects.filter(pk=locked.pk).update(last_ping_at=now, heartbeat_down=False)
        if was_down:
            pipeline.ingest(
                locked,
                [_alert(locked, RESOLVED, f"Heartbeat from {locked.name} is back")],
                body=b"",
            )
    return was_down


def _watched() -> QuerySet[Integration]:
    """Heartbeat integrations that may go overdue: enabled, and not down already."""
    return Integration.objects.filter(kind=Kind.HEARTBEAT, enabled=True, heartbeat_down=False)


# The tick's lookup, compiled once (core.compiled): most installations watch no heartbeat.
_ANY_WATCHED = Lookup(lambda: _watched().values_list("pk")[:1], takes=())


def check_heartbeats(now: datetime | None = None) -> int:
    """Open an incident for every heartbeat overdue past its interval and grace; return how many."""
    now = now or timezone.now()
    overdue = 0
    if not _ANY_WATCHED.exists():
        return 0
    candidates = _watched().select_related("service")
    for integration in candidates:
        last = integration.last_ping_at or integration.created_at
        allowed = timedelta(
            seconds=integration.heartbeat_interval_seconds + integration.heartbeat_grace_seconds
        )
        if last + allowed > now:
            continue
        with transaction.atomic():
            # Claim it: only one tick may declare it down, and not if a ping just arrived.
            claimed = (
                Integration.objects.filter(pk=integration.pk, heartbeat_down=False)
                .filter(last_ping_at=integration.last_ping_at)
                .update(heartbeat_down=True)
            )
            if not claimed:
                continue
            since = (
                "since it was created"
                if integration.last_ping_at is None
                else (f"since {last:%Y-%m-%d %H:%M:%S} UTC")
            )
            pipeline.ingest(
                integration,
                [_alert(integration, FIRING, f"No heartbeat from {integration.name} {since}")],
                body=b"",
            )
        overdue += 1
    # One missed during a maintenance window fires when the window ends: alerts.silencing.
    return overdue


def _ping_failed() -> JsonResponse:
    return error_json(503, "temporarily unable to record the heartbeat; retry")


@csrf_exempt
@allow_methods("GET", "POST", "HEAD")
@unavailable_without_database(_ping_failed)
def heartbeat_ping(request: HttpRequest, token: str) -> JsonResponse:
    """Take a ping (any method, any body) from a monitor."""
    integration = find_integration(token, (Kind.HEARTBEAT,))
    if integration is None:
        metrics.count_rejected("unknown", "404")
        return error_json(404, "unknown or rotated heartbeat token")
    if not integration.enabled:
        refusal = Rejected(403, f"heartbeat {integration.name!r} is disabled")
        refuse(integration, request, None, refusal)
        return error_json(refusal.status, refusal.reason)
    recovered = ping(integration)
    return JsonResponse({"status": "ok", "recovered": recovered})

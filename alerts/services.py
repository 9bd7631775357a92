"""Writes for integrations (rotate a token, send a test alert) and silences (create one)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from alerts import pending
from alerts.decoding import Request, parse
from alerts.models import (
    IngestRequest,
    Integration,
    Kind,
    Silence,
    check_silence,
    new_integration_token,
)
from incidents.models import Service

TEST_ALERTNAME = "MusterTestAlert"


class CannotSendTestAlert(Exception):
    """The integration cannot take a test alert (disabled, or a heartbeat)."""


@transaction.atomic
def rotate_integration_token(integration: Integration) -> Integration:
    """Give `integration` a new secret token; the old one is refused from now on."""
    integration = Integration.objects.select_for_update().get(pk=integration.pk)
    integration.token = new_integration_token()
    integration.token_rotated_at = timezone.now()
    integration.save(update_fields=["token", "token_rotated_at"])
    return integration


def sample_alert_payload(
    integration: Integration, by: str, key: str
) -> tuple[dict[str, Any], dict]:
    """Return a firing test alert in the integration's own wire format, and its path params."""
    summary = f"Test alert from Muster, sent by {by}"
    labels = {"alertname": TEST_ALERTNAME, "sent_by": by, "test": "true"}
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    if integration.kind in (Kind.ALERTMANAGER, Kind.GRAFANA):
        alert = {
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": summary},
            "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": key,
        }
        payload = {
            "receiver": "muster",
            "status": "firing",
            "alerts": [alert],
            "groupLabels": {"alertname": TEST_ALERTNAME},
            "commonLabels": labels,
            "commonAnnotations": {},
            "externalURL": "",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{TEST_ALERTNAME}", key="{key}"}}',
            "truncatedAlerts": 0,
        }
        return payload, {}
    if integration.kind == Kind.PAGERDUTY:
        payload = {
            "routing_key": integration.token,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": summary,
                "source": "muster",
                "severity": "warning",
                "class": TEST_ALERTNAME,
                "custom_details": labels,
            },
        }
        return payload, {"new_key": uuid.uuid4().hex}
    if integration.kind == Kind.OPSGENIE:
        payload = {
            "message": summary,
            "alias": key,
            "tags": [f"{name}:{value}" for name, value in labels.items()],
            "priority": "P3",
        }
        params = {
            "action": "create",
            "identifier": None,
            "identifier_type": "alias",
            "new_key": uuid.uuid4().hex,
        }
        return payload, params
    if integration.kind == Kind.GENERIC:
        payload = {"summary": summary, "dedup_key": key, "severity": "warning", "labels": labels}
        return payload, {}
    raise CannotSendTestAlert(
        f"a {integration.get_kind_display()} integration takes pings, not alerts; "
        "let a ping lapse to test it"
    )


def send_test_alert(integration: Integration, by: str) -> IngestRequest:
    """Post a firing test alert to `integration` the way its senders do, on behalf of `by`.

    The body goes through the same path as a real request: parsed in the integration's wire
    format, stored as an accepted request, and processed just after (it routes, may be
    silenced, opens an incident and pages like any alert). Raises CannotSendTestAlert for a
    disabled or heartbeat integration.
    """
    if not integration.enabled:
        raise CannotSendTestAlert(f"integration {integration.name!r} is disabled")
    key = f"muster-test-{uuid.uuid4().hex[:12]}"
    payload, params = sample_alert_payload(integration, by, key)
    req = Request(json.dumps(payload).encode(), "application/json")
    alerts = parse(integration.kind, req, params)  # what ingest checks before accepting
    status_code = 202 if integration.kind in (Kind.PAGERDUTY, Kind.OPSGENIE) else 200
    return pending.accept_request(integration, req, alerts, params=params, status_code=status_code)


# --- silences --------------------------------------------------------------------------------


def create_silence(
    *,
    matchers: list[dict[str, str]],
    ends_at: datetime,
    comment: str,
    by: User | None,
    service: Service | None = None,
    starts_at: datetime | None = None,
) -> Silence:
    """Silence alerts from `starts_at` (now, unless given) until `ends_at`: alerts that match
    every one of `matchers` (and come to `service`, if given) open no incident and page no one.
    A service with no matchers is a maintenance window.

    Raises django's ValidationError for a silence that ends before it starts, or that would
    silence nothing in particular (no matchers and no service).
    """
    starts_at = starts_at or timezone.now()
    check_silence(matchers, service, starts_at, ends_at)
    return Silence.objects.create(
        matchers=matchers,
        service=service,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=comment,
        created_by=by,
    )

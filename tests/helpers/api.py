"""Helpers for the REST API tests: the error shape, and incidents and alerts to act on."""

from __future__ import annotations

from django.utils import timezone

from alerts.models import Alert, AlertStatus
from incidents import opening
from incidents.models import Incident, Service, Source

API = "/api/v1/"


def assert_error(response, status: int, *fragments: str) -> dict:
    """Assert `response` is `status` in the one API error shape; return its "error" object.

    Each of `fragments` must appear in the message or in one of the problems.
    """
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"status", "message", "problems"}, error
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["problems"], list) and error["problems"]
    assert all(isinstance(p, str) and p for p in error["problems"])
    text = " | ".join([error["message"], *error["problems"]])
    for fragment in fragments:
        assert fragment in text, (fragment, error)
    return error


def open_incident(service: Service, title: str = "Checkout is slow", severity: int = 3, **kw):
    return opening.open_incident(
        service, title=title, severity=severity, source=Source.ALERT, actor_name="prom", **kw
    )


def add_alert(integration, incident: Incident | None = None, **fields) -> Alert:
    now = timezone.now()
    fields.setdefault("fingerprint", f"fp-{Alert.objects.count() + 1}")
    fields.setdefault("status", AlertStatus.FIRING)
    fields.setdefault("service", incident.service if incident else integration.service)
    return Alert.objects.create(
        integration=integration,
        incident=incident,
        summary=fields.pop("summary", "CPU high"),
        labels=fields.pop("labels", {"alertname": "HighCPU"}),
        first_seen=now,
        last_seen=now,
        raw=b'{"labels": {"alertname": "HighCPU"}}',
        **fields,
    )


# What a scraper sends for /metrics with the tests' settings (tests/settings.py, METRICS_TOKEN).
METRICS_AUTH = {"HTTP_AUTHORIZATION": "Bearer muster-tests-metrics-token"}

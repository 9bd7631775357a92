"""Helpers for the REST API tests: the error shape, and a small world of objects to act on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertStatus, IngestRequest, Kind, Outcome, RoutingRule, Silence
from incidents import opening, services
from incidents.models import Incident, Service, Source

API = "/api/v1/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The cast's passwords are hashed in every test; a fast hasher keeps hundreds quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


@pytest.fixture
def world(db, alice, bob, charlie, service, make_integration) -> dict:
    """One of everything the API exposes, keyed by name; ids and numbers to put in paths."""
    spare_service = Service.objects.create(name="spare")
    integration = make_integration(Kind.ALERTMANAGER, name="prometheus")
    spare_integration = make_integration(Kind.GENERIC, name="unused")
    incident = open_incident(service)
    acked = open_incident(service, title="Disk filling")
    services.acknowledge_incident(acked, by=bob, source=Source.WEB)
    other = open_incident(service, title="Checkout errors")
    alert = add_alert(integration, incident)
    IngestRequest.objects.create(
        integration=integration,
        received_at=timezone.now(),
        outcome=Outcome.REJECTED,
        status_code=400,
        reason="malformed JSON",
        body=b"{nope",
    )
    rule = RoutingRule.objects.create(
        integration=integration,
        matchers=[{"label": "team", "op": "=", "value": "db"}],
        service=service,
    )
    silence = Silence.objects.create(
        matchers=[{"label": "env", "op": "=", "value": "dev"}],
        starts_at=timezone.now() - timedelta(minutes=5),
        ends_at=timezone.now() + timedelta(hours=1),
        created_by=bob,
        comment="dev is noisy",
    )
    return {
        "service": service.pk,
        "spare_service": spare_service.pk,
        "integration": integration.pk,
        "spare_integration": spare_integration.pk,
        "incident": incident.number,
        "acked": acked.number,
        "other": other.number,
        "alert": alert.pk,
        "rule": rule.pk,
        "silence": silence.pk,
        "user": charlie.pk,
    }

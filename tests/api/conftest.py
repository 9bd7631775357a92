"""The REST API tests' small world of objects to act on (helpers: tests/helpers/api.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import IngestRequest, Kind, Outcome, RoutingRule, Silence
from incidents import services
from incidents.models import Service, Source
from tests.helpers.api import add_alert, open_incident


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

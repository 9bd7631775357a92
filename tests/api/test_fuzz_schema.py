"""Schemathesis against the OpenAPI document, as admin, responder and observer (issue 13).

Every operation of /api/v1/schema/ gets generated requests (schema-conforming data), sent to
the real WSGI application in-process, on the test PostgreSQL. Each response must not be a 5xx,
must have a documented status code and content type, and its body must match the schema.

Each example is sent as one of the three roles (drawn with the data). A small world is seeded
first, and about half the examples point their path parameters (and the body fields naming a
service, integration, policy, schedule or person) at its objects; the rest keep generated ids,
so the 404 path is fuzzed too. One operation is kept from destroying the run itself: deleting
a token the run authenticates with (the spare token is deleted instead).

CI runs 10 examples per operation (tests/helpers/fuzz.py); MUSTER_FUZZ_EXAMPLES runs more.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Role, User
from accounts.services import create_api_token
from alerts.models import Integration, Kind, Silence
from incidents.models import Service
from oncall.models import EscalationPolicy, Schedule
from tests.helpers.api import add_alert, open_incident
from tests.helpers.fuzz import fuzz_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ROLES = (Role.ADMIN, Role.RESPONDER, Role.OBSERVER)


@pytest.fixture
def fuzz_world(db, settings) -> Iterator[dict]:
    """The seeded objects, by the path segment naming them, and each role's token."""
    settings.ALLOWED_HOSTS = ["localhost"]  # where schemathesis' WSGI client sends requests
    # Django's test client does this too: the connection outlives each in-process request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    people = {
        role: User.objects.create_user(f"fuzz-{role}", f"{role}@example.com", "pw", role=role)
        for role in ROLES
    }
    tokens = {role: create_api_token(people[role], name="fuzzing") for role in ROLES}
    spare_token, _ = create_api_token(people[Role.ADMIN], name="spare")
    service = Service.objects.create(name="checkout")
    integration = Integration.objects.create(
        kind=Kind.ALERTMANAGER, name="prometheus", service=service
    )
    incident = open_incident(service)
    add_alert(integration, incident)
    silence = Silence.objects.create(
        matchers=[{"label": "env", "op": "=", "value": "dev"}],
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
        created_by=people[Role.RESPONDER],
        comment="dev is noisy",
    )
    yield {
        "headers": {
            role: {"Authorization": f"Bearer {secret}"} for role, (_, secret) in tokens.items()
        },
        "own_tokens": {token.pk for token, _ in tokens.values()},
        "ids": {
            "services": service.pk,
            "integrations": integration.pk,
            "incidents": incident.number,
            "silences": silence.pk,
            "escalation-policies": EscalationPolicy.objects.create(name="primary").pk,
            "schedules": Schedule.objects.create(name="ops").pk,
            "tokens": spare_token.pk,
            "users": people[Role.OBSERVER].pk,
        },
    }
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# The document /api/v1/schema/ serves (SchemaView renders this generator's output), built at
# collection: schemathesis' fixture-based loader does not run under pytest 9 (it sets
# `Function._nodeid`, which pytest 9 removed).
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()


# Body fields naming another object, and the seeded object each may name.
BODY_REFERENCES = {
    "service": "services",
    "integration": "integrations",
    "policy": "escalation-policies",
    "schedule": "schedules",
    "user": "users",
}


def seeded_id(path: str, ids: dict[str, int]) -> int | None:
    """The seeded object a path's parameter can name: its segment before the first `{...}`."""
    head = path.split("{", 1)[0].rstrip("/")
    return ids.get(head.rsplit("/", 1)[-1])


@schema.parametrize()
@schema.given(role=st.sampled_from(ROLES), seeded=st.booleans())
# The examples of one operation share its seeded world on purpose (what one example creates,
# the next may read); generating bodies for the larger serializers is slow and filters a lot.
@fuzz_settings(
    ci_examples=10,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_answers_as_its_schema_says(
    case, role: Role, seeded: bool, fuzz_world: dict
) -> None:
    parameters = case.path_parameters or {}
    if len(parameters) == 1:
        (name,) = parameters
        target = seeded_id(case.operation.path, fuzz_world["ids"])
        if seeded and target is not None:
            parameters[name] = target
        own_token = parameters[name] in fuzz_world["own_tokens"]
        if own_token and case.method == "DELETE" and case.operation.path == "/api/v1/tokens/{id}/":
            parameters[name] = fuzz_world["ids"]["tokens"]  # the run keeps its own tokens
    if seeded and isinstance(case.body, dict):
        for field, resource in BODY_REFERENCES.items():
            if isinstance(case.body.get(field), int):
                case.body[field] = fuzz_world["ids"][resource]
    case.call_and_validate(headers=fuzz_world["headers"][role], checks=CHECKS)

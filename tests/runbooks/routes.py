"""The runbooks' API routes for tests/api/test_roles.py, and the objects they act on."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import User
from incidents.models import Incident, Service
from runbooks.models import Action, ActionRun, GraphTemplate, Runbook, RunStatus
from tests.api.routes import ADMIN, OBSERVER, RESPONDER, Route

MATCHERS = [{"label": "alertname", "op": "=", "value": "HighCPU"}]
ACTION = {
    "name": "flush-cache",
    "url": "https://jenkins.example.com/job/flush/build?token=t",
    "payload_template": '{"alert": "{{labels.alertname}}"}',
    "headers": {"Authorization": "Bearer x"},
}
RUN = {"incident": "@incident"}  # the world's incident, by number
GRAPH = {"name": "Host", "url_template": "https://grafana.example.com/d/n?host={instance}"}

ROUTES = [
    # runbooks: everyone reads, admins write; an incident shows its match and its graphs
    Route("GET", "runbooks/", OBSERVER),
    Route("GET", "runbooks/{pk}/", OBSERVER, obj="runbook"),
    Route("POST", "runbooks/", ADMIN, 201, payload={"title": "Disk full", "service": "*"}),
    Route(
        "PUT",
        "runbooks/{pk}/",
        ADMIN,
        obj="runbook",
        payload={"title": "High CPU v2", "body": "# Steps", "matchers": MATCHERS},
    ),
    Route("PATCH", "runbooks/{pk}/", ADMIN, obj="runbook", payload={"body": "# Better steps"}),
    Route("DELETE", "runbooks/{pk}/", ADMIN, 204, obj="runbook"),
    Route("GET", "runbooks/{pk}/versions/", OBSERVER, obj="runbook"),
    Route("GET", "runbooks/{pk}/actions/", OBSERVER, obj="runbook"),
    Route("POST", "runbooks/{pk}/actions/", ADMIN, 201, obj="runbook", payload=ACTION),
    Route("GET", "incidents/{number}/runbook/", OBSERVER, obj="incident"),
    Route("GET", "incidents/{number}/graphs/", OBSERVER, obj="incident"),
    # actions: admins configure them; responders run them
    Route("GET", "actions/{pk}/", OBSERVER, obj="action"),
    Route("PUT", "actions/{pk}/", ADMIN, obj="action", payload={**ACTION, "name": "restart"}),
    Route("PATCH", "actions/{pk}/", ADMIN, obj="action", payload={"timeout_seconds": 30}),
    Route("DELETE", "actions/{pk}/", ADMIN, 204, obj="action"),
    Route("GET", "actions/{pk}/runs/", OBSERVER, obj="action"),
    Route(
        "POST",
        "actions/{pk}/runs/",
        RESPONDER,
        201,
        obj="action",
        payload={"incident": "@incident"},
    ),
    # graph templates: everyone reads, admins write
    Route("GET", "graph-templates/", OBSERVER),
    Route("GET", "graph-templates/{pk}/", OBSERVER, obj="graph_template"),
    Route("POST", "graph-templates/", ADMIN, 201, payload={**GRAPH, "service": "*"}),
    Route("PUT", "graph-templates/{pk}/", ADMIN, obj="graph_template", payload=GRAPH),
    Route("PATCH", "graph-templates/{pk}/", ADMIN, obj="graph_template", payload={"position": 2}),
    Route("DELETE", "graph-templates/{pk}/", ADMIN, 204, obj="graph_template"),
]


def runbooks_world(user: User, world: dict) -> dict:
    """Objects the routes name (obj="..."); `user` is the role under test."""
    service = Service.objects.get(pk=world["service"])
    runbook = Runbook(title="High CPU", service=service, matchers=MATCHERS, body="# Look")
    runbook.save(author=user)
    action = Action.objects.create(
        runbook=runbook,
        name="restart-db",
        url="http://127.0.0.1:9/never-called",
        payload_template='{"alert": "{{labels.alertname}}"}',
    )
    # A finished run: one to list, and none in progress to block a new one.
    ActionRun.objects.create(
        action=action,
        action_name=action.name,
        incident=Incident.objects.get(number=world["incident"]),
        requested_by=user,
        status=RunStatus.SUCCEEDED,
        method=action.method,
        url=action.url,
        http_status=200,
        finished_at=timezone.now(),
    )
    template = GraphTemplate.objects.create(service=service, **GRAPH)
    return {"runbook": runbook.pk, "action": action.pk, "graph_template": template.pk}

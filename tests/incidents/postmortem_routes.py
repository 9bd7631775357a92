"""The postmortem's API routes for tests/api/test_roles.py, and the objects they act on."""

from __future__ import annotations

from accounts.models import User
from incidents.action_items import add_action_item
from incidents.models import Incident
from incidents.postmortems import get_or_start_postmortem
from tests.api.routes import OBSERVER, RESPONDER, Route

PM = "incidents/{number}/postmortem/"

ROUTES: list = [
    # Everyone reads a postmortem and exports it; responders write it.
    Route("GET", PM, OBSERVER, obj="incident"),
    Route("PUT", PM, RESPONDER, obj="incident", payload={"summary": "Disk full", "impact": "-"}),
    Route("PATCH", PM, RESPONDER, obj="incident", payload={"root_cause": "WAL"}),
    Route("GET", PM + "export/", OBSERVER, obj="incident"),
    Route("GET", PM + "action-items/", OBSERVER, obj="incident"),
    Route(
        "POST",
        PM + "action-items/",
        RESPONDER,
        201,
        obj="incident",
        payload={"description": "Alert at 80%", "owner": "@my_username"},
    ),
    Route("GET", "action-items/{pk}/", OBSERVER, obj="action_item"),
    Route(
        "PUT",
        "action-items/{pk}/",
        RESPONDER,
        obj="action_item",
        payload={"description": "Grow the disk", "due": "2025-03-08"},
    ),
    Route("PATCH", "action-items/{pk}/", RESPONDER, obj="action_item", payload={"done": True}),
    Route("DELETE", "action-items/{pk}/", RESPONDER, 204, obj="action_item"),
    Route(
        "POST",
        PM + "timeline/",
        RESPONDER,
        obj="incident",
        payload={"entry": "@entry", "pinned": True, "annotation": "first alert"},
    ),
]


def postmortem_world(user: User, world: dict) -> dict:
    """Objects the routes name (obj="..."): a started postmortem with one action item."""
    incident = Incident.objects.get(number=world["incident"])
    postmortem = get_or_start_postmortem(incident, None)
    item = add_action_item(postmortem, description="Add a disk alert", by=None)
    return {"action_item": item.pk, "entry": incident.timeline.order_by("id").first().pk}

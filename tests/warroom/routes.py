"""The war room's API routes for tests/api/test_roles.py, and the objects they act on."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.models import User
from incidents.models import Incident
from tests.api.routes import OBSERVER, RESPONDER, Route
from warroom.models import Attachment
from warroom.services import incident_room, post

ROUTES: list = [
    # Everyone reads rooms and talks in them (a command then checks its own role when it
    # runs); responders open ad hoc rooms.
    Route("GET", "rooms/", OBSERVER),
    Route("POST", "rooms/", RESPONDER, 201, payload={"name": "db migration"}),
    Route("GET", "rooms/{pk}/", OBSERVER, obj="room"),
    Route("GET", "rooms/{pk}/messages/", OBSERVER, obj="room"),
    Route("POST", "rooms/{pk}/messages/", OBSERVER, 201, obj="room", payload={"body": "hello"}),
    Route("GET", "attachments/{pk}/", OBSERVER, obj="attachment"),
    Route("GET", "incidents/{number}/room/", OBSERVER, obj="incident"),
]

# One file for every world: the route tests read it, they do not test storing it.
_LOG_NAME = "attachments/tests/route-world.log"
_LOG = b"disk full on db-1\n"


def warroom_world(user: User, world: dict) -> dict:
    """Objects the routes name (obj="..."); `user` is the role under test."""
    room = incident_room(Incident.objects.get(number=world["incident"]))
    message = post(room, "the log", author=user)
    if not default_storage.exists(_LOG_NAME):
        default_storage.save(_LOG_NAME, ContentFile(_LOG))
    attachment = Attachment.objects.create(
        message=message, file=_LOG_NAME, name="db.log", content_type="text/plain", size=len(_LOG)
    )
    return {"room": room.pk, "attachment": attachment.pk}

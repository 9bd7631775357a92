"""Reads for the war room: a room as clients see it, its history, and finding a room.

The websocket consumer and the API both answer with these shapes, so a room or a page of
history looks the same whichever way a client asks.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from incidents.models import Incident
from warroom.models import Message, Participant, Room

HISTORY_MAX = 500  # messages in one page of history, or in one websocket catch-up


class RoomNotFound(Exception):
    """There is no room with that id."""


def rooms() -> QuerySet[Room]:
    """Return rooms with what `room_json` reads, fetched in a fixed number of queries."""
    return Room.objects.select_related("incident__assignee", "created_by").prefetch_related(
        Prefetch(
            "participants",
            queryset=Participant.objects.select_related("user").order_by("at", "id"),
        )
    )


def get_room(room_id: int) -> Room:
    """Return room `room_id` ready for `room_json`; raise RoomNotFound."""
    try:
        return rooms().get(pk=room_id)
    except Room.DoesNotExist:
        raise RoomNotFound(f"There is no room {room_id}.") from None


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as a room shows it (the shape of the websocket's "incident" event)."""
    return {
        "number": incident.number,
        "status": incident.status,
        "severity": incident.severity,
        "title": incident.title,
        "assignee": incident.assignee.get_username() if incident.assignee_id else None,
    }


def room_json(room: Room) -> dict[str, Any]:
    """A room as the API and the websocket's "ready" event show it."""
    return {
        "id": room.pk,
        "name": room.name,
        "incident": incident_json(room.incident) if room.incident_id else None,
        "created_at": room.created_at.isoformat(),
        "created_by": room.created_by.get_username() if room.created_by_id else None,
        "participants": [
            {"user": p.user.get_username(), "reason": p.reason, "at": p.at.isoformat()}
            for p in room.participants.all()
        ],
        "websocket": f"/ws/rooms/{room.pk}/",
        "messages": f"/api/v1/rooms/{room.pk}/messages/",
    }


def messages_between(
    room_id: int,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
    newest: bool = False,
) -> tuple[list[Message], bool]:
    """Return up to `limit` messages with after < id < before, in id order, and whether more
    in that range were left out: the first ones, or with `newest` the last ones."""
    queryset = (
        Message.objects.filter(room_id=room_id)
        .select_related("author")
        .prefetch_related("attachments")
    )
    if after is not None:
        queryset = queryset.filter(pk__gt=after)
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    rows = list(queryset.order_by("-id" if newest else "id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if newest:
        rows.reverse()
    return rows, more


def last_message_id(room_id: int) -> int | None:
    """Return the id of the room's latest message, or None for an empty room."""
    return (
        Message.objects.filter(room_id=room_id).order_by("-id").values_list("id", flat=True).first()
    )


def has_messages(room_id: int, *, after: int | None = None, before: int | None = None) -> bool:
    """Return whether the room holds a message with after < id < before."""
    queryset = Message.objects.filter(room_id=room_id)
    if after is not None:
        queryset = queryset.filter(pk__gt=after)
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    return queryset.exists()

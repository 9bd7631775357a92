"""Shared pieces of the room tests: rooms, files, and clients of the room's websocket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents import opening
from incidents.models import Incident, Service, Source
from warroom.models import Room
from warroom.services import incident_room

ORIGIN = b"http://127.0.0.1"
WAIT = 10.0  # seconds for an expected event; they come in milliseconds
QUIET = 0.3  # seconds of silence that show nothing more is coming

# The magic numbers that make a file what it is.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 64
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64


def open_incident(service: Service, title: str = "Disk full on db-1") -> Incident:
    return opening.open_incident(service, title=title, severity=2, source=Source.ALERT)


@pytest.fixture(name="room")
def room_fixture(service) -> Room:
    """The war room of a triggered incident."""
    return incident_room(open_incident(service))


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


# --- websocket clients, for channels' communicator --------------------------------------------


async def connect(room_id: int | str, *, token: str | None = None, cookie: str | None = None):
    """Open the room's websocket through the whole ASGI stack (origin check, sessions)."""
    from muster.asgi import application

    headers = [(b"origin", ORIGIN)]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    client = WebsocketCommunicator(application, f"/ws/rooms/{room_id}/", headers=headers)
    connected, _ = await client.connect(timeout=WAIT)
    assert connected, "the websocket handshake was refused"
    return client


async def closed_with(client: WebsocketCommunicator) -> int:
    """Return the close code the server sent next (and let the consumer finish)."""
    output = await client.receive_output(timeout=WAIT)
    assert output["type"] == "websocket.close", output
    await client.disconnect(code=output["code"])
    return output["code"]


async def hello(
    client: WebsocketCommunicator, after: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Say hello; return the events before "ready" and "ready" itself."""
    await client.send_json_to({"type": "hello", "after": after})
    events = await until(client, lambda e: e["type"] == "ready")
    return events[:-1], events[-1]


async def until(
    client: WebsocketCommunicator, found: Callable[[dict[str, Any]], bool], *, wait: float = WAIT
) -> list[dict[str, Any]]:
    """Return every event up to and including the first one `found` accepts."""
    events = []
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no such event within {wait}s; got {events}"
        event = await client.receive_json_from(timeout=left)
        events.append(event)
        if found(event):
            return events


async def drain(client: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Return the events that arrive until nothing has come for QUIET seconds."""
    events = []
    # receive_nothing, not a receive timing out: that would cancel the consumer.
    while not await client.receive_nothing(timeout=QUIET):
        events.append(await client.receive_json_from(timeout=WAIT))
    return events


def message_of(event: dict[str, Any]) -> dict[str, Any] | None:
    return event["message"] if event["type"] == "message" else None

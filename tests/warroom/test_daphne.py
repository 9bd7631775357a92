"""A war room served by a real daphne process, used by real websocket clients over loopback.

daphne runs `muster.asgi:application` as production does, on the test's PostgreSQL database
and Redis (channel layer and cache); two `websockets` clients with API tokens talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from accounts.models import ApiToken
from accounts.services import create_api_token
from incidents.models import EntryKind, Incident, Status
from muster_services import free_port
from tests.helpers.system import database_url_of_tests, require_postgresql, wait_for
from tests.warroom.rooms_fixtures import open_incident
from warroom.models import Message
from warroom.services import incident_room

ROOT = Path(__file__).resolve().parents[2]
DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")
START_TIMEOUT = 30.0
WAIT = 10.0  # seconds for an expected event


@dataclass
class Daphne:
    process: subprocess.Popen
    port: int
    log_path: Path

    def url(self, room_id: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/rooms/{room_id}/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture
def start_daphne(transactional_db, tmp_path) -> Iterator[Callable[[], Daphne]]:
    """Start daphne processes on free loopback ports; kill them before the database is
    flushed."""
    require_postgresql()
    started: list[Daphne] = []

    def start() -> Daphne:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MUSTER_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="muster.settings",
            DATABASE_URL=database_url_of_tests(),
            REDIS_URL=settings.REDIS_URL,  # this process's, database index included
            MUSTER_MEDIA_ROOT=str(tmp_path / "media"),
            PYTHONUNBUFFERED="1",
        )
        log_path = tmp_path / f"daphne-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "muster.asgi:application"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole at the end
            )
        server = Daphne(process, port, log_path)
        started.append(server)
        wait_for(
            lambda: _listening(port) or process.poll() is not None,
            timeout=START_TIMEOUT,
            what=f"daphne to listen on 127.0.0.1:{port}",
        )
        assert process.poll() is None, f"daphne exited:\n{server.log()}"
        return server

    yield start
    for server in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(10)


@pytest.fixture
def daphne(start_daphne) -> Daphne:
    return start_daphne()


# --- a client ----------------------------------------------------------------------------------


class Client:
    """A websocket client of one room, as an integrator would write it."""

    def __init__(self, socket: ClientConnection):
        self.socket = socket
        self.last_id: int | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self.socket.recv(), WAIT))
        if event["type"] == "message":
            self.last_id = max(self.last_id or 0, event["message"]["id"])
        return event

    async def until(self, found: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Return every event up to and including the first one `found` accepts."""
        events = []
        while True:
            events.append(await self.receive())
            if found(events[-1]):
                return events

    async def hello(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        await self.send({"type": "hello", "after": self.last_id})
        events = await self.until(lambda e: e["type"] == "ready")
        return events[:-1], events[-1]


@contextlib.asynccontextmanager
async def client(server: Daphne, room_id: int, token: str, last_id: int | None = None):
    async with connect(
        server.url(room_id),
        origin=server.origin,
        additional_headers={"Authorization": f"Bearer {token}"},
    ) as socket:
        person = Client(socket)
        person.last_id = last_id
        yield person


# --- the scenario ------------------------------------------------------------------------------


def test_one_acks_over_daphne_the_other_sees_it_and_catches_up_after_reconnecting(
    daphne, service, alice, bob
):
    incident = open_incident(service)
    room = incident_room(incident)
    alice_token = create_api_token(alice, name="ws")[1]
    bob_token = create_api_token(bob, name="ws")[1]
    number = incident.number

    async def scenario() -> tuple[int, list[int], int]:
        async with client(daphne, room.pk, alice_token) as as_alice:
            _, ready = await as_alice.hello()
            assert ready["room"]["incident"]["status"] == "triggered"
            async with client(daphne, room.pk, bob_token) as as_bob:
                _, ready = await as_bob.hello()
                assert ready["presence"] == ["alice", "bob"]

                typed = f"ack incident {number}"
                await as_bob.send({"type": "say", "body": typed, "nonce": "b1"})
                bobs = await as_bob.until(lambda e: e.get("message", {}).get("kind") == "reply")
                said = next(e for e in bobs if e.get("nonce") == "b1")["message"]
                reply = bobs[-1]["message"]
                assert (said["body"], said["kind"], said["author"]) == (typed, "command", "bob")
                assert reply["reply_to"] == said["id"]
                assert "Acknowledged" in reply["body"] and f"#{number}" in reply["body"]

                # alice sees the command, the bot's reply and the state change, in whatever
                # order the bot's posts interleave.
                alices = await as_alice.until(lambda e: e["type"] == "incident")
                if reply["id"] not in [e.get("message", {}).get("id") for e in alices]:
                    alices += await as_alice.until(lambda e: e.get("message") == reply)
                seen = [e["message"] for e in alices if e["type"] == "message"]
                assert said in seen and reply in seen
                change = next(e for e in alices if e["type"] == "incident")["incident"]
                assert (change["number"], change["status"]) == (number, "acknowledged")
                assert not any("nonce" in e for e in alices)

                # alice goes away; what is said meanwhile is waiting for her.
                await as_alice.socket.close()
                await as_alice.socket.wait_closed()
                await as_bob.until(lambda e: e == {"type": "presence", "users": ["bob"]})
                for i, text in enumerate(["while you were away", "disk cleaned up"]):
                    await as_bob.send({"type": "say", "body": text, "nonce": f"m{i}"})
                    await as_bob.until(lambda e, i=i: e.get("nonce") == f"m{i}")

                async with client(daphne, room.pk, alice_token, as_alice.last_id) as again:
                    caught_up, ready = await again.hello()
                    assert {e["type"] for e in caught_up} == {"message"}
                    bodies = [e["message"]["body"] for e in caught_up]
                    assert bodies[-2:] == ["while you were away", "disk cleaned up"]
                    assert ready["presence"] == ["alice", "bob"]
                    assert ready["room"]["incident"]["status"] == "acknowledged"
                    ids = [e["message"]["id"] for e in caught_up]
                    return as_alice.last_id, ids, ready["last_id"]

    last_seen, caught_up, last_id = asyncio.run(scenario())
    missed = list(
        Message.objects.filter(room=room, pk__gt=last_seen)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert caught_up == missed  # every message she missed, in order, once
    assert last_id == missed[-1]

    incident = Incident.objects.get(number=number)
    assert (incident.status, incident.acknowledged_by) == (Status.ACKNOWLEDGED, bob)
    entry = incident.timeline.get(kind=EntryKind.COMMAND)
    assert (entry.actor, entry.source, entry.data["changed"]) == (bob, "chat", True)
    assert entry.message.startswith(f"bob in {room.name}: ack incident {number}")


def test_daphne_closes_a_client_without_credentials_with_4401(daphne, room_fixture_id):
    async def scenario() -> int:
        async with connect(daphne.url(room_fixture_id), origin=daphne.origin) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), WAIT)
            return closed.value.rcvd.code

    assert asyncio.run(scenario()) == 4401


@pytest.fixture
def room_fixture_id(service) -> int:
    return incident_room(open_incident(service)).pk


def test_two_daphne_processes_share_a_room_its_messages_and_its_presence(
    start_daphne, service, alice, bob
):
    first, second = start_daphne(), start_daphne()
    room = incident_room(open_incident(service))
    alice_token = create_api_token(alice, name="ws")[1]
    bob_token = create_api_token(bob, name="ws")[1]

    async def scenario() -> None:
        async with client(first, room.pk, alice_token) as as_alice:
            await as_alice.hello()
            async with client(second, room.pk, bob_token) as as_bob:
                _, ready = await as_bob.hello()
                assert ready["presence"] == ["alice", "bob"]  # alice is on the other process
                await as_alice.until(lambda e: e == {"type": "presence", "users": ["alice", "bob"]})
                await as_bob.send({"type": "say", "body": "on it", "nonce": "b"})
                [event] = await as_alice.until(lambda e: e["type"] == "message")
                assert (event["message"]["author"], event["message"]["body"]) == ("bob", "on it")
                await as_alice.send({"type": "say", "body": "thanks"})
                events = await as_bob.until(lambda e: e.get("message", {}).get("author") == "alice")
                assert events[-1]["message"]["body"] == "thanks"
            await as_alice.until(lambda e: e == {"type": "presence", "users": ["alice"]})

    asyncio.run(scenario())


def test_over_daphne_revoking_a_token_closes_its_socket_and_a_revoked_tokens_ack_is_refused(
    daphne, service, bob
):
    """Security review M1, with real clients: a token revoked through the API (on daphne
    itself) closes its open socket at once, unasked; a token revoked with no close message (a
    bulk update) has its /ack refused, and the incident stays as it was."""
    incident = open_incident(service)
    room = incident_room(incident)
    token, secret = create_api_token(bob, name="leaked")
    quiet, quiet_secret = create_api_token(bob, name="revoked quietly")

    async def revoked(secret: str, revoke: Callable[[], Any], *, ack: bool) -> tuple[list, int]:
        """Return the events after revoking, up to the close, and the close code."""
        async with client(daphne, room.pk, secret) as as_bob:
            await as_bob.hello()
            await asyncio.to_thread(revoke)
            events = []
            with pytest.raises(ConnectionClosed) as closed:
                if ack:
                    await as_bob.send({"type": "say", "body": "/ack", "nonce": "a"})
                while True:
                    events.append(await as_bob.receive())
            return events, closed.value.rcvd.code

    def through_the_api() -> None:
        response = httpx.delete(
            f"http://127.0.0.1:{daphne.port}/api/v1/tokens/{token.pk}/",
            headers={"Authorization": f"Bearer {secret}"},  # it revokes itself
            timeout=WAIT,
        )
        assert response.status_code == 204, response.text

    def quietly() -> None:
        ApiToken.objects.filter(pk=quiet.pk).update(revoked_at=timezone.now())

    events, code = asyncio.run(revoked(secret, through_the_api, ack=False))
    assert code == 4401, daphne.log()
    assert [e["type"] for e in events] == ["error"]
    events, code = asyncio.run(revoked(quiet_secret, quietly, ack=True))
    assert code == 4401, daphne.log()
    assert [(e["type"], e.get("nonce")) for e in events] == [("error", "a")]

    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Status.TRIGGERED, None)
    assert not incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).exists()
    assert not Message.objects.filter(room=room, body="/ack").exists()

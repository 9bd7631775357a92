"""The room's websocket through the whole ASGI stack, on PostgreSQL and the Redis channel layer.

Channels' communicator plays the clients. Test bodies are coroutines run with async_to_sync,
so the consumer's database work runs in threads, as under daphne: hence transactional_db.
"""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client
from django.utils import timezone

from accounts.services import create_api_token
from incidents.models import EntryKind, Status
from tests.warroom.rooms_fixtures import (  # noqa: F401 (fixtures)
    closed_with,
    connect,
    drain,
    hello,
    message_of,
    room_fixture,
    until,
)
from warroom.markdown import MAX_BODY
from warroom.models import Message, MessageKind
from warroom.services import open_room

pytestmark = pytest.mark.django_db(transaction=True)


def token_for(user) -> str:
    return create_api_token(user, name="websocket")[1]


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def messages(events: list[dict]) -> list[dict]:
    return [m for e in events if (m := message_of(e)) is not None]


def room_ids(room) -> list[int]:
    return list(Message.objects.filter(room=room).order_by("id").values_list("id", flat=True))


# --- two people in a room ----------------------------------------------------------------------


def test_one_acks_and_the_other_sees_the_command_the_reply_and_the_incident_change(
    room, alice, bob
):
    incident = room.incident
    alice_cookie, bob_token = session_cookie(alice), token_for(bob)

    async def scenario():
        as_alice = await connect(room.pk, cookie=alice_cookie)  # a browser: the session
        as_bob = await connect(room.pk, token=bob_token)  # a client with an API token
        try:
            _, alice_ready = await hello(as_alice)
            assert alice_ready["room"]["incident"]["status"] == "triggered"
            _, bob_ready = await hello(as_bob)
            assert bob_ready["presence"] == ["alice", "bob"]
            await until(as_alice, lambda e: e == {"type": "presence", "users": ["alice", "bob"]})

            await as_bob.send_json_to({"type": "say", "body": "/ack", "nonce": "bob-1"})

            bobs = await until(as_bob, lambda e: (message_of(e) or {}).get("kind") == "reply")
            said, reply = messages(bobs)
            first = next(e for e in bobs if e["type"] == "message")
            assert first["nonce"] == "bob-1"  # the sender knows its message by its nonce
            assert (said["author"], said["kind"], said["body"]) == ("bob", "command", "/ack")
            assert (reply["author"], reply["reply_to"]) == ("muster", said["id"])
            assert "Acknowledged" in reply["body"] and f"#{incident.number}" in reply["body"]

            alices = await until(as_alice, lambda e: (message_of(e) or {}).get("kind") == "reply")
            alices += await drain(as_alice)
            seen = messages(alices)
            assert seen[0] == said and reply in seen  # as the sender got them, but the nonce
            assert not any("nonce" in e for e in alices)
            [change] = [e for e in alices if e["type"] == "incident"]
            assert change["incident"] == {
                "number": incident.number,
                "status": "acknowledged",
                "severity": 2,
                "title": "Disk full on db-1",
                "assignee": "bob",  # who acknowledges takes it
            }
            bot = [m for m in seen if m["kind"] == MessageKind.BOT]
            assert any("bob" in m["body"] and "cknowledged" in m["body"] for m in bot), seen

            # Every message reached each of them exactly once.
            bobs += await drain(as_bob)
            for events in (alices, bobs):
                ids = [m["id"] for m in messages(events)]
                assert len(ids) == len(set(ids)), ids
            assert {m["id"] for m in messages(bobs)} == {m["id"] for m in seen}
        finally:
            await as_alice.disconnect()
            await as_bob.disconnect()

    async_to_sync(scenario)()
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Status.ACKNOWLEDGED, bob)
    entry = incident.timeline.get(kind=EntryKind.COMMAND)
    assert (entry.actor, entry.source, entry.data["changed"]) == (bob, "chat", True)


def test_an_observers_ack_is_refused_with_a_reply_and_nothing_changes(room, charlie):
    token = token_for(charlie)

    async def scenario():
        client = await connect(room.pk, token=token)
        try:
            await hello(client)
            await client.send_json_to({"type": "say", "body": "/ack", "nonce": "c"})
            events = await until(client, lambda e: (message_of(e) or {}).get("kind") == "reply")
            said, reply = messages(events)
            assert said["kind"] == "command"
            assert reply["body"] == "This needs the responder role; charlie is observer."
        finally:
            await client.disconnect()

    async_to_sync(scenario)()
    room.incident.refresh_from_db()
    assert room.incident.status == Status.TRIGGERED
    assert not room.incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).exists()


def test_an_observer_may_talk(room, charlie):
    token = token_for(charlie)

    async def scenario():
        client = await connect(room.pk, token=token)
        try:
            await hello(client)
            await client.send_json_to({"type": "say", "body": "what can I do?", "nonce": "q"})
            [event] = await until(client, lambda e: e["type"] == "message")
            assert (event["nonce"], event["message"]["kind"]) == ("q", "chat")
        finally:
            await client.disconnect()

    async_to_sync(scenario)()
    assert Message.objects.filter(room=room, author=charlie, body="what can I do?").exists()


def test_script_in_a_message_arrives_sanitized(room, alice, bob):
    alice_token, bob_token = token_for(alice), token_for(bob)
    attack = (
        "<script>alert(document.cookie)</script> [win](javascript:alert(1)) "
        "<img src=x onerror=alert(1)> ![x](javascript:alert(2))"
    )

    async def scenario():
        as_alice = await connect(room.pk, token=alice_token)
        as_bob = await connect(room.pk, token=bob_token)
        try:
            await hello(as_alice)
            await hello(as_bob)
            await as_bob.send_json_to({"type": "say", "body": attack})
            [*_, event] = await until(as_alice, lambda e: e["type"] == "message")
            message = event["message"]
            assert message["body"] == attack  # as written, for the record
            html = message["html"].lower()
            assert "<script" not in html
            assert not re.search(r"<[^>]+\son\w+\s*=", html), html
            assert not re.search(r"<[^>]+(href|src)\s*=\s*[\"']?\s*javascript:", html), html
            assert "&lt;script&gt;" in html  # shown as text
        finally:
            await as_alice.disconnect()
            await as_bob.disconnect()

    async_to_sync(scenario)()


# --- reconnecting ------------------------------------------------------------------------------


def test_reconnecting_with_the_last_id_seen_catches_up_on_everything_missed(room, alice, bob):
    alice_token, bob_token = token_for(alice), token_for(bob)

    async def scenario():
        as_alice = await connect(room.pk, token=alice_token)
        as_bob = await connect(room.pk, token=bob_token)
        try:
            await hello(as_alice)
            await hello(as_bob)
            await as_alice.send_json_to({"type": "say", "body": "back in 5", "nonce": "a"})
            # Bob's arrival may come first: the last event is the one.
            [*_, mine] = await until(as_alice, lambda e: e.get("nonce") == "a")
            seen = mine["message"]["id"]
            await as_alice.disconnect()

            for i, text in enumerate(["while you were away", "/ack", "done"]):
                await as_bob.send_json_to({"type": "say", "body": text, "nonce": str(i)})
                await until(as_bob, lambda e, i=i: e.get("nonce") == str(i))
            await drain(as_bob)  # the bot's posts about the ack are in too

            as_alice = await connect(room.pk, token=alice_token)
            caught_up, ready = await hello(as_alice, after=seen)
            missed = [i for i in await sync_to_async(room_ids)(room) if i > seen]
            assert [m["id"] for m in messages(caught_up)] == missed
            assert [e["type"] for e in caught_up] == ["message"] * len(missed)
            bodies = [m["body"] for m in messages(caught_up)]
            assert bodies[0] == "while you were away" and "done" in bodies
            assert ready["last_id"] == missed[-1]
            assert ready["presence"] == ["alice", "bob"]
            assert ready["room"]["incident"]["status"] == "acknowledged"
            assert await drain(as_alice) == []  # and nothing twice
        finally:
            await as_alice.disconnect()
            await as_bob.disconnect()

    async_to_sync(scenario)()


def test_a_catch_up_of_more_than_500_sends_the_newest_500_after_a_gap(room, alice):
    token = token_for(alice)
    now = timezone.now()
    Message.objects.bulk_create(
        Message(room=room, author=alice, body=f"m{i}", html=f"<p>m{i}</p>", created_at=now)
        for i in range(520)
    )
    ids = room_ids(room)

    async def scenario():
        client = await connect(room.pk, token=token)
        try:
            events, ready = await hello(client, after=ids[9])
            gap, *rest = events
            assert gap == {"type": "gap", "after": ids[9], "before": ids[-500]}
            assert [m["id"] for m in messages(rest)] == ids[-500:]
            assert ready["last_id"] == ids[-1]

            events, ready = await hello(client, after=ids[-3])  # hello again: just the last two
            assert [m["id"] for m in messages(events)] == ids[-2:]
            events, ready = await hello(client, after=ids[-1])
            assert events == [] and ready["last_id"] == ids[-1]
        finally:
            await client.disconnect()

    async_to_sync(scenario)()


def test_hello_with_no_last_id_gets_the_room_so_far(room, bob):
    token = token_for(bob)
    lobby = open_room("lobby", by=bob)

    async def scenario():
        client = await connect(lobby.pk, token=token)
        try:
            events, ready = await hello(client)
            assert events == [] and ready["last_id"] is None
            assert ready["room"]["incident"] is None
            assert ready["room"]["participants"][0]["user"] == "bob"
            await client.send_json_to({"type": "say", "body": "hi"})
            await until(client, lambda e: e["type"] == "message")
            events, ready = await hello(client, after=None)
            assert [m["body"] for m in messages(events)] == ["hi"]
            assert ready["last_id"] == events[0]["message"]["id"]
        finally:
            await client.disconnect()

    async_to_sync(scenario)()


# --- presence ----------------------------------------------------------------------------------


def test_presence_follows_people_joining_and_leaving_each_once(room, alice, bob):
    alice_token, bob_token = token_for(alice), token_for(bob)

    async def scenario():
        as_alice = await connect(room.pk, token=alice_token)
        as_bob = bobs_tab = None
        try:
            _, ready = await hello(as_alice)
            assert ready["presence"] == ["alice"]
            as_bob = await connect(room.pk, token=bob_token)
            bobs_tab = await connect(room.pk, token=bob_token)  # a second tab: still one bob
            await hello(as_bob)
            _, ready = await hello(bobs_tab)
            assert ready["presence"] == ["alice", "bob"]
            events = await drain(as_alice)
            assert events == [{"type": "presence", "users": ["alice", "bob"]}]

            await as_bob.disconnect()
            assert await drain(as_alice) == []  # bob is still there, in his other tab
            await bobs_tab.disconnect()
            assert await drain(as_alice) == [{"type": "presence", "users": ["alice"]}]
            await as_alice.send_json_to({"type": "ping"})
            assert await as_alice.receive_json_from() == {"type": "pong"}
        finally:
            for client in (as_alice, as_bob, bobs_tab):
                if client is not None:
                    await client.disconnect()

    async_to_sync(scenario)()


# --- what is refused ---------------------------------------------------------------------------


def test_bad_frames_get_an_error_and_the_connection_stays_open(room, bob):
    token = token_for(bob)
    frames = [
        ("not json at all", "The frame is not JSON; send a JSON object with a type."),
        ("[1, 2]", "The frame must be a JSON object with a type."),
        ('"hello"', "The frame must be a JSON object with a type."),
        ("{}", 'Unknown type null; send "hello", "say" or "ping".'),
        ('{"type": "dance"}', 'Unknown type "dance"; send "hello", "say" or "ping".'),
        ('{"type": "hello", "after": "12"}', '"after" must be the id of the last message seen'),
        ('{"type": "hello", "after": -1}', '"after" must be the id of the last message seen'),
        ('{"type": "say", "body": 5}', '"body" must be a string of Markdown.'),
        ('{"type": "say"}', '"body" must be a string of Markdown.'),
        ('{"type": "say", "body": "  "}', "The message is empty."),
        ('{"type": "say", "body": "a\\u0000b"}', "The message cannot contain NUL characters."),
        ('{"type": "say", "body": "x", "nonce": 7}', '"nonce" must be a string'),
        ("[" * 50_000, "The frame is not JSON; send a JSON object with a type."),
        (" " * 200_000, "The frame is over"),
    ]

    async def scenario():
        client = await connect(room.pk, token=token)
        try:
            await hello(client)
            for frame, error in frames:
                await client.send_to(text_data=frame)
                event = await client.receive_json_from()
                assert event["type"] == "error" and event["error"].startswith(error), frame
            too_long = {"type": "say", "body": "x" * (MAX_BODY + 1), "nonce": "long"}
            await client.send_json_to(too_long)
            assert await client.receive_json_from() == {
                "type": "error",
                "error": f"The message is {MAX_BODY + 1} characters long; the limit is {MAX_BODY}.",
                "nonce": "long",
            }
            await client.send_to(bytes_data=b'{"type": "ping"}')
            event = await client.receive_json_from()
            assert event == {
                "type": "error",
                "error": "Frames must be text: JSON objects with a type.",
            }
            await client.send_to(text_data=json.dumps({"type": "ping"}))
            assert await client.receive_json_from() == {"type": "pong"}
        finally:
            await client.disconnect()

    async_to_sync(scenario)()
    assert not Message.objects.filter(room=room, author=bob).exists()


@pytest.mark.parametrize(
    ("how", "value"),
    [
        ("nothing", None),
        ("header", "mst_not-a-real-token"),
        ("header", ""),  # "Bearer" and nothing
        ("query", "mst_not-a-real-token"),
    ],
)
def test_without_a_valid_session_or_token_the_socket_is_closed_with_4401(room, how, value):
    async def scenario():
        from channels.testing import WebsocketCommunicator

        from muster.asgi import application
        from tests.warroom.rooms_fixtures import ORIGIN

        headers = [(b"origin", ORIGIN)]
        path = f"/ws/rooms/{room.pk}/"
        if how == "header":
            headers.append((b"authorization", f"Bearer {value}".strip().encode()))
        elif how == "query":
            path += f"?token={value}"
        client = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await client.connect()
        assert connected
        assert await closed_with(client) == 4401

    async_to_sync(scenario)()


def test_a_revoked_token_is_closed_with_4401_and_a_token_in_the_query_works(room, bob):
    from accounts.services import revoke_api_token

    token, secret = create_api_token(bob, name="ws")
    other = token_for(bob)
    revoke_api_token(token)

    async def scenario():
        from channels.testing import WebsocketCommunicator

        from muster.asgi import application
        from tests.warroom.rooms_fixtures import ORIGIN

        client = await connect(room.pk, token=secret)
        assert await closed_with(client) == 4401
        path = f"/ws/rooms/{room.pk}/?token={other}"
        client = WebsocketCommunicator(application, path, headers=[(b"origin", ORIGIN)])
        assert (await client.connect())[0]
        _, ready = await hello(client)
        assert ready["presence"] == ["bob"]
        await client.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("room_id", ["999999", "abc", "1" * 30])
def test_an_unknown_room_is_closed_with_4404(bob, room_id):
    token = token_for(bob)

    async def scenario():
        client = await connect(room_id, token=token)
        assert await closed_with(client) == 4404

    async_to_sync(scenario)()


def test_anonymous_clients_learn_nothing_about_rooms():
    async def scenario():
        client = await connect("999999")
        assert await closed_with(client) == 4401  # not 4404: no probing for room ids

    async_to_sync(scenario)()


def test_a_person_deactivated_while_connected_is_closed_with_4403_on_their_next_say(room, bob):
    token = token_for(bob)

    async def scenario():
        client = await connect(room.pk, token=token)
        await hello(client)
        bob.is_active = False
        await sync_to_async(bob.save)()
        await client.send_json_to({"type": "say", "body": "still here?", "nonce": "x"})
        reply = await client.receive_json_from()
        # Whichever comes first: the say, refused (with its nonce), or the close the save sent
        # through the channel layer (accounts.sockets), which names no message.
        assert reply.pop("nonce", "x") == "x"
        assert reply == {"type": "error", "error": "You may no longer use this room."}
        assert await closed_with(client) == 4403

    async_to_sync(scenario)()
    assert not Message.objects.filter(body="still here?").exists()


@pytest.mark.parametrize("backend", ["redis", "locmem"])
def test_presence_counts_each_person_once_and_forgets_the_silent_after_90_seconds(
    backend, settings
):
    from datetime import UTC, datetime

    import time_machine
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from warroom import presence

    if backend == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert isinstance(caches["default"], RedisCache) == (backend == "redis")
    caches["default"].clear()
    with time_machine.travel(datetime(2025, 1, 6, 9, 0, tzinfo=UTC), tick=False) as clock:
        assert presence.join(7, "c.alice", "alice") == presence.Change(["alice"], True)
        assert presence.join(7, "c.bob-1", "bob") == presence.Change(["alice", "bob"], True)
        assert presence.join(7, "c.bob-2", "bob") == presence.Change(["alice", "bob"], False)
        assert presence.users(8) == []  # rooms are apart
        clock.shift(60)
        assert presence.touch(7, "c.bob-2", "bob").changed is False
        clock.shift(31)  # alice and bob's first tab: silent for 91 seconds
        assert presence.users(7) == ["bob"]
        assert presence.touch(7, "c.alice", "alice") == presence.Change(["alice", "bob"], True)
        assert presence.leave(7, "c.bob-2", "bob") == presence.Change(["alice"], True)
        assert presence.leave(7, "c.bob-2", "bob") == presence.Change(["alice"], False)


# --- origins ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (None, True),  # a script or bot: no Origin, signs in with its token
        (b"http://localhost", True),  # one of ALLOWED_HOSTS
        (b"https://evil.example", False),  # another site's page: refused before any auth
    ],
)
def test_a_browser_origin_must_be_ours_and_scripts_send_none(room, bob, origin, accepted):
    token = token_for(bob)

    async def scenario():
        from channels.testing import WebsocketCommunicator

        from muster.asgi import application

        headers = [(b"authorization", f"Bearer {token}".encode())]
        if origin is not None:
            headers.append((b"origin", origin))
        client = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
        connected, _ = await client.connect()
        assert connected is accepted
        if connected:
            _, ready = await hello(client)
            assert ready["presence"] == ["bob"]
            await client.disconnect()

    async_to_sync(scenario)()

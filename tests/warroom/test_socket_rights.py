"""Websockets keep only the rights their person still has (security review M1).

A room's socket and the incidents feed are closed at once when their token is revoked (4401),
their session signed out (4401) or their person deactivated (4403); and whatever ends a
credential without telling them (a bulk update, an expired session, a lost message) is found
on the next frame the client sends, or before an event is relayed once the last check is older
than RECHECK_EVERY. Channels' communicator plays the clients through the whole ASGI stack on
PostgreSQL and the Redis channel layer; tests/warroom/test_daphne.py does it with real clients
of a real daphne.
"""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts import sockets
from accounts.models import ApiToken, User
from accounts.services import create_api_token, revoke_api_token
from incidents import opening
from incidents.models import EntryKind, Source, Status
from tests.warroom.rooms_fixtures import (  # noqa: F401 (fixtures)
    ORIGIN,
    WAIT,
    connect,
    hello,
    room_fixture,
)
from warroom import sockets as room_sockets
from warroom.models import Message
from warroom.services import post

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user) -> tuple[Client, str]:
    """A browser signed in as `user`, and its session cookie."""
    browser = Client()
    browser.force_login(user)
    return browser, f"sessionid={browser.cookies['sessionid'].value}"


async def feed(*, token: str | None = None, cookie: str | None = None) -> WebsocketCommunicator:
    """Open the incidents feed and read its "ready"."""
    from muster.asgi import application

    headers = [(b"origin", ORIGIN)]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    client = WebsocketCommunicator(application, "/ws/incidents/", headers=headers)
    assert (await client.connect(timeout=WAIT))[0]
    assert await client.receive_json_from(timeout=WAIT) == {"type": "ready"}
    return client


async def refused(client: WebsocketCommunicator) -> tuple[list[dict], int]:
    """Return the events up to the server's close, and its close code."""
    events = []
    while True:
        output = await client.receive_output(timeout=WAIT)
        if output["type"] == "websocket.close":
            await client.disconnect(code=output["code"])
            return events, output["code"]
        events.append(json.loads(output["text"]))


async def still_open(client: WebsocketCommunicator) -> bool:
    await client.send_json_to({"type": "ping"})
    return await client.receive_json_from(timeout=WAIT) == {"type": "pong"}


# --- closed at once --------------------------------------------------------------------------


def test_revoking_a_token_closes_the_sockets_it_opened_at_once_and_no_others(room, bob):
    token, secret = create_api_token(bob, name="leaked")
    other = create_api_token(bob, name="laptop")[1]

    async def scenario():
        in_room, on_feed = await connect(room.pk, token=secret), await feed(token=secret)
        elsewhere = await connect(room.pk, token=other)
        await hello(in_room)
        await hello(elsewhere)
        await sync_to_async(revoke_api_token)(token)
        for client in (in_room, on_feed):
            events, code = await refused(client)
            assert code == 4401
            assert events[-1]["type"] == "error" and "sign-in has ended" in events[-1]["error"]
        assert await still_open(elsewhere)
        await elsewhere.disconnect()

    async_to_sync(scenario)()


def test_signing_out_closes_that_sessions_sockets_and_not_the_other_browsers(room, bob):
    browser, cookie = signed_in(bob)
    _, other_cookie = signed_in(bob)

    async def scenario():
        in_room, on_feed = await connect(room.pk, cookie=cookie), await feed(cookie=cookie)
        elsewhere = await connect(room.pk, cookie=other_cookie)
        await hello(in_room)
        response = await sync_to_async(browser.post)("/logout/")
        assert response.status_code == 302
        assert (await refused(in_room))[1] == 4401
        assert (await refused(on_feed))[1] == 4401
        assert await still_open(elsewhere)
        await elsewhere.disconnect()

    async_to_sync(scenario)()


def test_deactivating_a_person_closes_all_their_sockets_with_4403(room, bob, charlie):
    secret = create_api_token(bob, name="bot")[1]
    _, cookie = signed_in(bob)
    charlies = create_api_token(charlie, name="ws")[1]

    async def scenario():
        clients = [
            await connect(room.pk, token=secret),
            await connect(room.pk, cookie=cookie),
            await feed(token=secret),
            await feed(cookie=cookie),
        ]
        someone_else = await connect(room.pk, token=charlies)
        bob.is_active = False
        await sync_to_async(bob.save)()
        for client in clients:
            assert (await refused(client))[1] == 4403
        assert await still_open(someone_else)
        await someone_else.disconnect()

    async_to_sync(scenario)()


def test_the_admins_revoke_action_and_deactivation_close_sockets_too(room, bob):
    root = User.objects.create_superuser("root", "root@example.com", "pw-root")
    admin, _ = signed_in(root)
    token, secret = create_api_token(bob, name="leaked")
    _, cookie = signed_in(bob)
    joined = bob.date_joined

    def revoke() -> None:
        response = admin.post(
            "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
        )
        assert response.status_code == 302

    def deactivate() -> None:
        form = {
            "username": "bob",
            "email": bob.email,
            "role": "responder",
            "date_joined_0": joined.strftime("%Y-%m-%d"),
            "date_joined_1": joined.strftime("%H:%M:%S"),
        }  # "is_active" left out: unticked
        response = admin.post(f"/admin/accounts/user/{bob.pk}/change/", form)
        assert response.status_code == 302, response.content.decode()[-2000:]

    async def scenario():
        by_token, by_session = await connect(room.pk, token=secret), await feed(cookie=cookie)
        await sync_to_async(revoke)()
        assert (await refused(by_token))[1] == 4401
        assert await still_open(by_session)
        await sync_to_async(deactivate)()
        assert (await refused(by_session))[1] == 4403

    async_to_sync(scenario)()
    token.refresh_from_db()
    bob.refresh_from_db()
    assert token.revoked_at is not None and not bob.is_active


def test_group_names_are_valid_and_never_hold_the_session_key():
    key = "k" * 32
    names = sockets.groups(sockets.Credential(user_id=7, session_key=key))
    names += sockets.groups(sockets.Credential(user_id=7, token_id=12))
    assert set(names) == {"socket-person-7", "socket-token-12", sockets.session_group(key)}
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,99}", name), name
    assert key not in sockets.session_group(key)
    assert key not in repr(sockets.Credential(user_id=7, session_key=key))


# --- found on the next frame -----------------------------------------------------------------


def test_a_revoked_tokens_ack_on_an_open_socket_is_refused_and_changes_nothing(room, bob):
    """Revoked without the close message (a bulk update): the /ack itself is refused."""
    token, secret = create_api_token(bob, name="leaked")

    async def scenario():
        client = await connect(room.pk, token=secret)
        await hello(client)
        await sync_to_async(ApiToken.objects.filter(pk=token.pk).update)(revoked_at=timezone.now())
        await client.send_json_to({"type": "say", "body": "/ack", "nonce": "a"})
        events, code = await refused(client)
        assert code == 4401
        assert [e["type"] for e in events] == ["error"] and events[0]["nonce"] == "a"

    async_to_sync(scenario)()
    room.incident.refresh_from_db()
    assert room.incident.status == Status.TRIGGERED
    assert not room.incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).exists()
    assert not Message.objects.filter(room=room, body="/ack").exists()


@pytest.mark.parametrize("ended", ["deleted", "expired", "password changed"])
def test_a_session_ended_without_signing_out_is_refused_on_its_next_frame(room, bob, ended):
    _, cookie = signed_in(bob)
    key = cookie.split("=", 1)[1]

    def end() -> None:
        if ended == "deleted":
            Session.objects.filter(session_key=key).delete()
        elif ended == "expired":
            Session.objects.filter(session_key=key).update(expire_date=timezone.now())
        else:
            bob.set_password("a new one")
            bob.save()

    async def scenario():
        client = await connect(room.pk, cookie=cookie)
        await sync_to_async(end)()
        await client.send_json_to({"type": "hello", "after": None})
        events, code = await refused(client)
        assert code == 4401 and [e["type"] for e in events] == ["error"]  # no catch-up

    async_to_sync(scenario)()


def test_the_feed_refuses_a_ping_once_its_person_is_deactivated(bob):
    secret = create_api_token(bob, name="feed")[1]

    async def scenario():
        client = await feed(token=secret)
        assert await still_open(client)
        await sync_to_async(type(bob).objects.filter(pk=bob.pk).update)(is_active=False)
        await client.send_json_to({"type": "ping"})
        assert (await refused(client))[1] == 4403

    async_to_sync(scenario)()


# --- found while only listening ----------------------------------------------------------------


def test_the_recheck_of_listeners_is_at_most_a_minute():
    assert 0 < room_sockets.RECHECK_EVERY <= 60


def test_a_listener_deactivated_quietly_gets_nothing_more_once_its_check_is_due(
    room, alice, bob, service, monkeypatch
):
    """A bulk update sends no signal: the next relayed event, its check due, closes instead."""
    secret = create_api_token(bob, name="ws")[1]

    async def scenario():
        in_room, on_feed = await connect(room.pk, token=secret), await feed(token=secret)
        await hello(in_room)
        await sync_to_async(type(bob).objects.filter(pk=bob.pk).update)(is_active=False)
        monkeypatch.setattr(room_sockets, "RECHECK_EVERY", 0.0)
        await sync_to_async(post)(room, "for the active only", author=alice)
        await sync_to_async(opening.open_incident)(
            service, title="Queue backlog", severity=2, source=Source.API
        )
        for client in (in_room, on_feed):
            events, code = await refused(client)
            assert code == 4403
            assert [e["type"] for e in events] == ["error"], events  # nothing relayed

    async_to_sync(scenario)()


def test_listeners_with_their_rights_are_not_rechecked_before_it_is_due(
    room, alice, bob, monkeypatch
):
    secret = create_api_token(bob, name="ws")[1]
    checks = []
    real = sockets.lost_rights

    def counted(*args, **kwargs):
        checks.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sockets, "lost_rights", counted)

    async def scenario():
        client = await connect(room.pk, token=secret)
        await hello(client)  # one check: the frame
        for i in range(3):
            await sync_to_async(post)(room, f"news {i}", author=alice)
            assert (await client.receive_json_from(timeout=WAIT))["message"]["body"] == f"news {i}"
        await client.disconnect()

    async_to_sync(scenario)()
    assert len(checks) == 1

"""The incidents feed, `/ws/incidents/`, through the whole ASGI stack and the channel layer.

Channels' communicator plays the browser. Test bodies are coroutines run with async_to_sync and
the verbs run in sync_to_async, committing for real (transactional_db), so each change reaches
the socket the way it does under daphne: on commit, through web.receivers.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.services import create_api_token
from incidents import opening
from incidents import services as verbs
from incidents.models import Source

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://127.0.0.1"
WAIT = 10.0  # seconds for an expected event; they come in milliseconds
QUIET = 0.5  # seconds of silence that show nothing more is coming


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def connect(*, cookie: str | None = None, token: str | None = None, origin=ORIGIN):
    from muster.asgi import application

    headers = [(b"origin", origin)]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    client = WebsocketCommunicator(application, "/ws/incidents/", headers=headers)
    connected, _ = await client.connect(timeout=WAIT)
    assert connected, "the websocket handshake was refused"
    return client


async def closed_with(client: WebsocketCommunicator) -> int:
    output = await client.receive_output(timeout=WAIT)
    assert output["type"] == "websocket.close", output
    await client.disconnect(code=output["code"])
    return output["code"]


async def drain(client: WebsocketCommunicator) -> list[dict]:
    """Return the events that arrive until nothing has come for QUIET seconds."""
    events = []
    while not await client.receive_nothing(timeout=QUIET):
        events.append(await client.receive_json_from(timeout=WAIT))
    return events


def test_a_new_incident_and_each_change_reach_the_feed(service, bob):
    cookie = session_cookie(bob)

    async def scenario():
        feed = await connect(cookie=cookie)
        try:
            assert await feed.receive_json_from(timeout=WAIT) == {"type": "ready"}

            incident = await sync_to_async(opening.open_incident)(
                service, title="Disk full on db-1", severity=2, source=Source.API
            )
            assert await feed.receive_json_from(timeout=WAIT) == {
                "type": "incident",
                "number": incident.number,
                "status": "triggered",
                "severity": 2,
                "title": "Disk full on db-1",
                "service": "checkout",
            }

            await sync_to_async(verbs.acknowledge_incident)(incident, by=bob, source=Source.WEB)
            acked = await feed.receive_json_from(timeout=WAIT)
            assert (acked["number"], acked["status"]) == (incident.number, "acknowledged")

            # A note changes nothing a list shows: no event for it.
            await sync_to_async(verbs.add_note)(incident, text="on it", by=bob, source="web")
            await sync_to_async(verbs.resolve_incident)(incident, by=bob, source=Source.WEB)
            events = [await feed.receive_json_from(timeout=WAIT)] + await drain(feed)
            assert [(e["type"], e["status"]) for e in events] == [("incident", "resolved")]
        finally:
            await feed.disconnect()

    async_to_sync(scenario)()


def test_a_web_button_press_reaches_another_persons_feed(service, alice, bob):
    incident = opening.open_incident(service, title="Queue backlog", source=Source.API)
    cookie = session_cookie(alice)
    browser = Client()
    browser.force_login(bob)

    async def scenario():
        feed = await connect(cookie=cookie)
        try:
            await feed.receive_json_from(timeout=WAIT)  # ready
            response = await sync_to_async(browser.post)(f"/incidents/{incident.number}/ack/")
            assert response.status_code == 302
            event = await feed.receive_json_from(timeout=WAIT)
            assert (event["number"], event["status"]) == (incident.number, "acknowledged")
        finally:
            await feed.disconnect()

    async_to_sync(scenario)()


def test_an_api_token_opens_the_feed_too(service, charlie):
    token = create_api_token(charlie, name="feed")[1]

    async def scenario():
        feed = await connect(token=token)  # observers read the feed
        try:
            assert await feed.receive_json_from(timeout=WAIT) == {"type": "ready"}
            await feed.send_json_to({"type": "ping"})
            assert await feed.receive_json_from(timeout=WAIT) == {"type": "pong"}
        finally:
            await feed.disconnect()

    async_to_sync(scenario)()


def test_the_feed_needs_a_signed_in_person(service, bob):
    async def scenario():
        assert await closed_with(await connect()) == 4401
        assert await closed_with(await connect(token="mst_not-a-token")) == 4401
        assert await closed_with(await connect(cookie="sessionid=forged")) == 4401

    async_to_sync(scenario)()


def test_a_deactivated_person_is_refused(service, bob):
    token = create_api_token(bob, name="feed")[1]
    bob.is_active = False
    bob.save()

    async def scenario():
        assert await closed_with(await connect(token=token)) == 4401

    async_to_sync(scenario)()


def test_a_browser_on_another_site_cannot_open_it(bob):
    cookie = session_cookie(bob)

    async def scenario():
        from muster.asgi import application

        client = WebsocketCommunicator(
            application,
            "/ws/incidents/",
            headers=[(b"origin", b"https://evil.example.com"), (b"cookie", cookie.encode())],
        )
        connected, _ = await client.connect(timeout=WAIT)
        assert not connected

    async_to_sync(scenario)()


def test_a_frame_that_is_not_json_gets_an_error_and_the_feed_stays_open(service, charlie):
    token = create_api_token(charlie, name="feed")[1]

    async def scenario():
        feed = await connect(token=token)
        try:
            assert await feed.receive_json_from(timeout=WAIT) == {"type": "ready"}
            await feed.send_to(text_data="{not json")
            error = await feed.receive_json_from(timeout=WAIT)
            assert error["type"] == "error" and "JSON" in error["error"]
            await feed.send_to(bytes_data=b"\x00\xff")
            assert (await feed.receive_json_from(timeout=WAIT))["type"] == "error"
            await feed.send_json_to({"type": "ping"})
            assert await feed.receive_json_from(timeout=WAIT) == {"type": "pong"}
        finally:
            await feed.disconnect()

    async_to_sync(scenario)()

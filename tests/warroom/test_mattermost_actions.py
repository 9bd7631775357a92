"""The buttons on the bot's opening post in Mattermost (`POST /mattermost/actions/`): a context
Muster made runs as whoever clicked; anything else is refused and changes nothing."""

from __future__ import annotations

import pytest

from incidents.models import EntryKind, Source, Status
from tests.helpers.mattermost import ACTIONS, BUTTONS_CHANNEL, button_click, post_click
from warroom.mattermost import buttons


@pytest.fixture
def incident(open_incident):
    return open_incident()


def context_of(number: int, action: str = "ack") -> dict:
    """The context of the opening post's button, as Muster made it."""
    [button] = [b for b in buttons.actions(number, BUTTONS_CHANNEL) if b["id"] == action]
    return button["integration"]["context"]


def ephemeral(response) -> str:
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"ephemeral_text"}
    return body["ephemeral_text"]


def unchanged(incident) -> None:
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_button_clicked_in_another_channel_is_refused(client, mm_bob, incident):
    payload = button_click(mm_bob, context_of(incident.number), channel_id="d" * 26)
    assert post_click(client, payload).status_code == 403
    unchanged(incident)


def test_the_acknowledge_button_acks_as_the_clicker(client, mm_bob, incident):
    text = ephemeral(post_click(client, button_click(mm_bob, context_of(incident.number))))
    assert text.startswith("Acknowledged")
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.actor.username, entry.source) == ("bob", Source.MATTERMOST)
    assert entry.message == "Acknowledged by bob via Mattermost"


def test_the_resolve_button_resolves(client, mm_bob, incident):
    context = context_of(incident.number, "resolve")
    assert "Resolved" in ephemeral(post_click(client, button_click(mm_bob, context)))
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED


def _forged(number: int) -> list:
    good = context_of(number)
    other = context_of(number + 1)
    return [
        {**good, "incident": number + 1},  # the number changed, its sig kept
        {key: value for key, value in good.items() if key != "sig"},
        {**good, "sig": ""},
        {**good, "action": "resolve"},  # the verb changed
        {**good, "incident": str(number)},
        {**other, "incident": number},
        {**good, "sig": good["sig"].upper()},
        None,
        "ack 1",
        [good],
    ]


def test_a_context_muster_did_not_make_is_refused(client, mattermost, mm_bob, incident):
    for context in _forged(incident.number):
        response = post_click(client, button_click(mm_bob, context))
        assert response.status_code == 403, context
        assert "error" in response.json()
    unchanged(incident)
    assert mattermost.api_requests(f"/api/v4/users/{mm_bob.id}") == []


def test_an_unmapped_clicker_is_told_why(client, mattermost, incident):
    carol = mattermost.add_user("carol", "carol@elsewhere.example")
    text = ephemeral(post_click(client, button_click(carol, context_of(incident.number))))
    assert "No Muster account has the email address" in text and "Nothing was done." in text
    unchanged(incident)


def test_an_observer_is_told_and_nothing_changes(client, mattermost, charlie, incident):
    mm_charlie = mattermost.add_user("charlie", "charlie@example.com")
    text = ephemeral(post_click(client, button_click(mm_charlie, context_of(incident.number))))
    assert "This needs the responder role; charlie is observer." in text
    unchanged(incident)


def test_mattermost_down_says_try_again(client, mattermost, mm_bob, incident):
    mattermost.stop()
    text = ephemeral(post_click(client, button_click(mm_bob, context_of(incident.number))))
    assert "could not check who you are" in text
    unchanged(incident)


@pytest.mark.parametrize("body", [b"{not json", b"[1]", b"\xff", b""])
def test_a_body_that_is_not_json_is_400(client, mattermost, body):
    response = client.post(ACTIONS, body, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_a_click_without_its_user_is_400(client, mm_bob, incident):
    payload = button_click(mm_bob, context_of(incident.number))
    del payload["user_id"]
    assert post_click(client, payload).status_code == 400
    unchanged(incident)


def test_not_configured_is_404(client, settings, mm_bob, incident):
    settings.MATTERMOST_URL = ""
    response = post_click(client, button_click(mm_bob, context_of(incident.number)))
    assert response.status_code == 404
    unchanged(incident)

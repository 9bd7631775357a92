"""Mattermost's slash command `/muster …` over HTTP: its token, who typed it (the real client
against the API v4 double), the one grammar, and Mattermost's slash-command response."""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlencode

import pytest

from accounts.models import User
from incidents.models import EntryKind, Source, Status
from tests.fakes.mattermost import new_id
from tests.helpers.mattermost import PUBLIC, TOKENS
from warroom.mattermost import slash

PATH = "/mattermost/commands/"


@pytest.fixture
def incident(open_incident):
    return open_incident()


@pytest.fixture
def command(client):
    """POST a slash command as Mattermost does (form-encoded), its token in the form field,
    the header, both (default) or neither."""

    def post(user_id: str, text: str, *, token: str | None = TOKENS[0], where: str = "both"):
        form = {
            "channel_id": new_id(),
            "team_id": new_id(),
            "user_id": user_id,
            "user_name": "someone",
            "command": "/muster",
            "text": text,
            "response_url": "https://mattermost.example.com/hooks/commands/x",
            "trigger_id": new_id(),
        }
        headers = {}
        if token is not None and where in ("field", "both"):
            form["token"] = token
        if token is not None and where in ("header", "both"):
            headers["HTTP_AUTHORIZATION"] = f"Token {token}"
        return client.post(
            PATH, urlencode(form), content_type="application/x-www-form-urlencoded", **headers
        )

    return post


def ephemeral_text(response) -> str:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return body["text"]


def unchanged(incident) -> None:
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


# --- it works -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "token"), [("field", TOKENS[0]), ("header", TOKENS[1])])
def test_ack_acknowledges_as_the_mapped_person_via_mattermost(
    command, mm_bob, incident, where, token
):
    response = command(mm_bob.id, f"ack {incident.number}", token=token, where=where)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    link = f"[#{incident.number}]({PUBLIC}/incidents/{incident.number}/)"
    assert body == {
        "response_type": "in_channel",
        "text": f"Acknowledged {link}: Disk full on db\\-1",
    }
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.actor.username, entry.source) == ("bob", Source.MATTERMOST)
    assert entry.message == "Acknowledged by bob via Mattermost"


def test_who_someone_is_is_asked_once_then_cached(command, mattermost, mm_bob, incident):
    command(mm_bob.id, "help")
    command(mm_bob.id, f"ack {incident.number}")
    asked = mattermost.api_requests(f"/api/v4/users/{mm_bob.id}")
    assert [r.status for r in asked] == [200]
    assert asked[0].headers["Authorization"] == f"Bearer {mattermost.bot_token}"


def test_help_and_oncall_answer_privately(command, mm_bob, service):
    text = ephemeral_text(command(mm_bob.id, "help"))
    assert "| Command | What it does | Example |" in text
    assert "`/muster`" in text
    assert "@muster" not in text
    text = ephemeral_text(command(mm_bob.id, "oncall checkout"))
    assert "checkout" in text


def test_a_mistake_gets_the_closest_command(command, mm_bob, incident):
    text = ephemeral_text(command(mm_bob.id, f"acknowlege {incident.number}"))
    assert 'Did you mean "ack"?' in text
    unchanged(incident)


def test_mentions_in_a_channel_answer_notify_nobody(command, mm_bob, open_incident):
    incident = open_incident("@channel disk full, ask @alice")
    body = command(mm_bob.id, f"ack {incident.number}").json()
    assert body["response_type"] == "in_channel"
    assert "@channel" not in body["text"] and "@\u200bchannel" in body["text"]
    assert "@\u200balice" in body["text"]


# --- the token ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "where"),
    [(None, "both"), ("wrong", "both"), (TOKENS[0] + "x", "field"), ("", "header")],
)
def test_without_a_commands_token_nothing_changes(
    command, mattermost, mm_bob, incident, token, where
):
    response = command(mm_bob.id, f"ack {incident.number}", token=token, where=where)
    assert response.status_code == 401
    assert "error" in response.json()
    unchanged(incident)
    assert mattermost.requests == []


def test_a_bearer_header_is_not_a_commands_token(client, mm_bob, incident):
    response = client.post(
        PATH,
        urlencode({"user_id": mm_bob.id, "text": f"ack {incident.number}"}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {TOKENS[0]}",
    )
    assert response.status_code == 401
    unchanged(incident)


def test_not_configured_is_404(command, settings, bob):
    settings.MATTERMOST_URL = ""
    settings.MATTERMOST_COMMAND_TOKENS = TOKENS
    assert command(new_id(), "help").status_code == 404


# --- who typed it -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"email": "nobody@example.com"}, "No Muster account has the email address"),
        ({"email": "bob@example.com", "email_verified": False}, "is not confirmed"),
        ({"email": ""}, "Mattermost did not share your email address"),
        ({"email": "bob@example.com", "delete_at": 1}, "deactivated"),
    ],
)
def test_an_unmapped_user_is_told_why_and_nothing_changes(
    command, mattermost, bob, incident, fields, why
):
    user = mattermost.add_user("someone", **fields)
    text = ephemeral_text(command(user.id, f"ack {incident.number}"))
    assert why in text and "Nothing was done." in text
    unchanged(incident)


def test_a_shared_email_maps_to_nobody(command, mm_bob, incident):
    User.objects.create_user("bob2", "BOB@example.com", "pw")
    text = ephemeral_text(command(mm_bob.id, f"ack {incident.number}"))
    assert "Several Muster accounts have the email address" in text
    unchanged(incident)


@pytest.mark.parametrize("user_id", ["x" * 26, "../../users/me", ""])
def test_an_unknown_mattermost_user_changes_nothing(command, mattermost, bob, incident, user_id):
    response = command(user_id, f"ack {incident.number}")
    if not user_id:
        assert response.status_code == 400
    else:
        assert "Mattermost does not know the user" in ephemeral_text(response)
    unchanged(incident)


def test_an_observer_is_told_and_nothing_changes(command, mattermost, charlie, incident):
    user = mattermost.add_user("charlie", "charlie@example.com")
    text = ephemeral_text(command(user.id, f"ack {incident.number}"))
    assert "This needs the responder role; charlie is observer." in text
    unchanged(incident)


# --- Mattermost in trouble ----------------------------------------------------------------------


def test_rate_limited_says_try_again_and_changes_nothing(command, mattermost, mm_bob, incident):
    mattermost.rate_limit_next(retry_after=7)
    text = ephemeral_text(command(mm_bob.id, f"ack {incident.number}"))
    assert "could not check who you are" in text and "try in 7 s" in text
    unchanged(incident)
    # Nothing was cached: the next command asks again, and works.
    assert command(mm_bob.id, f"ack {incident.number}").json()["response_type"] == "in_channel"


def test_over_the_rate_limit_says_try_again(command, mattermost, bob, incident):
    mattermost.per_second = 0
    user = mattermost.add_user("bobby", "bob@example.com")
    text = ephemeral_text(command(user.id, f"ack {incident.number}"))
    assert "could not check who you are" in text
    unchanged(incident)


@pytest.mark.parametrize("status", [500, 502, 401])
def test_mattermost_failing_says_try_again(command, mattermost, mm_bob, incident, status):
    mattermost.fail_next(status=status)
    assert "Try again." in ephemeral_text(command(mm_bob.id, f"ack {incident.number}"))
    unchanged(incident)


def test_mattermost_down_says_try_again(command, mattermost, mm_bob, incident):
    mattermost.stop()
    text = ephemeral_text(command(mm_bob.id, f"ack {incident.number}"))
    assert "could not check who you are with Mattermost just now" in text
    unchanged(incident)


# --- what is not a slash command ----------------------------------------------------------------


def test_json_payloads_are_read_too(client, mm_bob, incident):
    body = {"token": TOKENS[0], "user_id": mm_bob.id, "text": f"ack {incident.number}"}
    response = client.post(PATH, json.dumps(body), content_type="application/json")
    assert response.json()["response_type"] == "in_channel"


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"user_id": 5}', b"\xff\xfe", b'{"text": "help"}']
)
def test_malformed_json_is_400(client, mattermost, body):
    response = client.post(
        PATH, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {TOKENS[0]}"
    )
    assert response.status_code == 400
    assert "error" in response.json()


def test_huge_text_is_refused_privately(command, mattermost, mm_bob, incident):
    text = ephemeral_text(command(mm_bob.id, f"ack {incident.number} " + "x" * 10_000))
    assert "too long" in text
    unchanged(incident)
    assert mattermost.requests == []


def test_a_huge_field_or_body_is_400(client, command, mattermost, mm_bob):
    assert command("y" * 5_000, "help").status_code == 400
    response = client.post(
        PATH,
        urlencode({"token": TOKENS[0], "user_id": mm_bob.id, "text": "x" * 3_000_000}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400


def test_empty_text_and_get_are_answered(client, command, mm_bob):
    assert "Nothing to do." in ephemeral_text(command(mm_bob.id, ""))
    assert client.get(PATH).status_code == 405


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_slash_command_as_mattermost_sends_it(live_server, mattermost, bob, open_incident):
    incident = open_incident()
    user = mattermost.add_user("bobby", "bob@example.com")
    url = live_server.url + PATH
    response = mattermost.send_command(url, user, f"ack #{incident.number}", token=TOKENS[1])
    assert response.status_code == 200
    assert response.json()["response_type"] == "in_channel"
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    # Answered in the response itself: nothing went to the response_url.
    assert mattermost.responses == []
    refused = mattermost.send_command(url, user, "resolve", token="forged")
    assert refused.status_code == 401


def test_every_configured_token_is_compared_in_constant_time(monkeypatch, settings):
    settings.MATTERMOST_COMMAND_TOKENS = TOKENS
    compared = []
    original = hmac.compare_digest

    def spy(given, expected):
        compared.append((type(given), type(expected)))
        return original(given, expected)

    monkeypatch.setattr(slash.hmac, "compare_digest", spy)
    assert slash.authentic({"token": TOKENS[1]}, f"Token {TOKENS[0]}")
    assert compared == [(bytes, bytes)] * 4  # field and header, against each token
    assert not slash.authentic({"token": "nope"}, "")

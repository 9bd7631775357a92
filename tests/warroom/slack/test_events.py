"""Slack's Events API: the URL check, `@muster …` mentions answered in their thread, retries
acted on once, Muster's own posts ignored."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from incidents.models import EntryKind, Source, Status
from muster.celery import app
from tests.fakes.slack import BOT_ID, BOT_USER_ID
from tests.helpers.slack import json_body, mention_event
from tests.warroom.slack.conftest import EVENTS, sent_names
from warroom.slack.tasks import COMMAND_TASK, MENTION_TASK, command_text


@pytest.fixture
def incident(open_incident):
    return open_incident()


def test_url_verification_answers_the_challenge(event, fake_slack):
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    response, sent = event({"token": "x", "challenge": challenge, "type": "url_verification"})
    assert response.status_code == 200
    assert response.json() == {"challenge": challenge}
    assert sent == []


def test_url_verification_must_be_signed(event, fake_slack):
    response, _ = event({"challenge": "c", "type": "url_verification"}, secret="wrong")
    assert response.status_code == 401


def test_a_mention_acts_and_answers_in_its_thread(event, fake_slack, bob_on_slack, incident):
    payload = mention_event(f"<@{BOT_USER_ID}> ack {incident.number}")
    response, sent = event(payload)
    assert response.status_code == 200
    assert sent_names(sent) == [MENTION_TASK]
    assert fake_slack.posts == []
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.source, entry.message) == (Source.SLACK, "Acknowledged by bob via Slack")
    [post] = fake_slack.posts
    assert (post.channel, post.ephemeral, post.thread_ts) == (
        "C0INCIDENTS",
        False,
        payload["event"]["ts"],
    )
    assert post.text.startswith("Acknowledged <https://muster.example.com/incidents/")


def test_a_read_only_mention_is_answered_to_its_author_only(event, fake_slack, bob_on_slack):
    _, sent = event(mention_event(f"<@{BOT_USER_ID}> help"))
    sent.run()
    [post] = fake_slack.posts
    assert (post.ephemeral, post.user) == (True, "U0BOB")


def test_an_unmapped_mention_is_told_why(event, fake_slack, bob, incident):
    fake_slack.add_user("U0BOB", "bob@example.com", email_confirmed=False)
    _, sent = event(mention_event(f"<@{BOT_USER_ID}> ack {incident.number}"))
    sent.run()
    [post] = fake_slack.posts
    assert post.ephemeral
    assert "not confirmed" in post.text
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_retried_event_acts_once(event, fake_slack, bob_on_slack, incident):
    payload = mention_event(f"<@{BOT_USER_ID}> note {incident.number} rolled back")
    first, sent = event(payload)
    # Slack's retry: the same event_id, a new request (new timestamp, so a new signature).
    retry, sent_again = event(payload, age=30, headers={"HTTP_X_SLACK_RETRY_NUM": "1"})
    assert (first.status_code, retry.status_code) == (200, 200)
    assert sent_names(sent) == [MENTION_TASK]
    assert sent_again == []
    sent.run()
    assert incident.timeline.filter(kind=EntryKind.NOTE).count() == 1


@pytest.mark.parametrize(
    "own",
    [{"bot_id": BOT_ID}, {"subtype": "bot_message", "bot_id": BOT_ID}],
    ids=["bot_id", "bot_message"],
)
def test_the_bots_own_events_are_ignored(event, fake_slack, bob_on_slack, incident, own):
    response, sent = event(
        mention_event(f"<@{BOT_USER_ID}> ack {incident.number}", user=BOT_USER_ID, **own)
    )
    assert response.status_code == 200
    assert sent == []


def test_a_mention_from_the_bots_user_is_ignored_by_the_worker(
    event, fake_slack, bob_on_slack, incident
):
    fake_slack.add_user(BOT_USER_ID, "bob@example.com")
    _, sent = event(mention_event(f"<@{BOT_USER_ID}> ack {incident.number}", user=BOT_USER_ID))
    sent.run()
    assert fake_slack.posts == []
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[1, 2]", json_body({"type": "event_callback", "event": "x"})],
    ids=["empty", "not-json", "not-an-object", "no-event-id"],
)
def test_bad_events_are_a_4xx(post_signed, fake_slack, body):
    response, sent = post_signed(EVENTS, body, "application/json")
    assert response.status_code == 400
    assert sent == []


def test_a_replayed_event_request_is_refused(client, event, fake_slack, bob_on_slack):
    first, _ = event(mention_event(f"<@{BOT_USER_ID}> help"))
    headers = {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": first.wsgi_request.headers["X-Slack-Request-Timestamp"],
        "HTTP_X_SLACK_SIGNATURE": first.wsgi_request.headers["X-Slack-Signature"],
    }
    again = client.post(EVENTS, first.wsgi_request.body, content_type="application/json", **headers)
    assert again.status_code == 401


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("<@U0MUSTERBOT> ack 1042", "ack 1042"),
        ("<@U0MUSTERBOT|muster>: ack 1042 ", "ack 1042"),
        ("<@U0MUSTERBOT>", ""),
        ("ack 1042", "ack 1042"),
    ],
)
def test_the_mention_is_stripped(text, command):
    assert command_text(text) == command


def test_the_worker_finds_the_slack_tasks():
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert {MENTION_TASK, COMMAND_TASK} <= set(app.tasks)


def test_a_broker_that_is_down_gets_503_and_slacks_retry_acts(
    event, fake_slack, bob_on_slack, incident, monkeypatch
):
    payload = mention_event(f"<@{BOT_USER_ID}> note {incident.number} rolled back")

    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis: Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(app, "send_task", down)
        first, sent = event(payload)
    assert first.status_code == 503 and sent == []
    # The event_id was not kept: Slack's retry is acted on.
    retry, sent = event(payload, age=30, headers={"HTTP_X_SLACK_RETRY_NUM": "1"})
    assert retry.status_code == 200 and sent_names(sent) == [MENTION_TASK]
    sent.run()
    assert incident.timeline.filter(kind=EntryKind.NOTE).count() == 1

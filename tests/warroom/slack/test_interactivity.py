"""Clicks on the buttons of the bot's posts (`POST /slack/interactivity/`): verified like every
Slack request, answered 200 at once, run by a task as the person, answered through the click's
response_url without replacing the post."""

from __future__ import annotations

import json

import pytest
from kombu.exceptions import OperationalError

from incidents.models import EntryKind, Source, Status
from muster.celery import app
from tests.helpers.slack import block_actions, interactivity_body
from tests.warroom.slack.conftest import INTERACTIVITY, sent_names
from warroom.slack.tasks import BUTTON_TASK
from warroom.slack.views import NOT_QUEUED

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def incident(open_incident):
    return open_incident()


def test_acknowledge_acts_and_answers_through_response_url(
    click, fake_slack, bob_on_slack, incident
):
    response, sent, url = click("muster_ack", str(incident.number))
    assert (response.status_code, response.content) == (200, b"")
    assert sent_names(sent) == [BUTTON_TASK]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED  # answered before anything ran
    assert fake_slack.answers(url) == []

    sent.run()

    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.actor.username, entry.source) == ("bob", Source.SLACK)
    assert entry.message == "Acknowledged by bob via Slack"
    [answer] = fake_slack.answers(url)
    assert (answer["response_type"], answer["replace_original"]) == ("in_channel", False)
    assert answer["text"].startswith("Acknowledged <https://muster.example.com/incidents/")


def test_resolve_resolves(click, fake_slack, bob_on_slack, incident):
    _, sent, _ = click("muster_resolve", str(incident.number))
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED


def test_an_observer_is_answered_privately_and_nothing_changes(
    click, fake_slack, charlie, incident
):
    fake_slack.add_user("U0CHARLIE", "charlie@example.com")
    _, sent, url = click("muster_ack", str(incident.number), user="U0CHARLIE")
    sent.run()
    assert fake_slack.answers(url) == [
        {
            "response_type": "ephemeral",
            "text": "This needs the responder role; charlie is observer.",
            "replace_original": False,
        }
    ]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_an_unmapped_user_is_told_why(click, fake_slack, incident):
    fake_slack.add_user("U0JANE", "jane@elsewhere.example")
    _, sent, url = click("muster_ack", str(incident.number), user="U0JANE")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "ephemeral"
    assert "No Muster account has the email address" in answer["text"]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


@pytest.mark.parametrize(
    ("action_id", "value"),
    [("muster_open", ""), ("someone_elses", "1"), ("muster_ack", "not-a-number")],
)
def test_the_link_button_and_unknown_actions_do_nothing(
    click, fake_slack, bob_on_slack, incident, action_id, value
):
    response, sent, url = click(action_id, value)
    assert (response.status_code, sent_names(sent)) == (200, [])
    assert fake_slack.answers(url) == []


def test_other_interactions_do_nothing(post_signed, fake_slack, bob_on_slack):
    body = interactivity_body({"type": "view_submission", "user": {"id": "U0BOB"}})
    response, sent = post_signed(INTERACTIVITY, body, FORM)
    assert (response.status_code, sent_names(sent)) == (200, [])


@pytest.mark.parametrize(
    "signing",
    [{"secret": None}, {"secret": "forged"}, {"age": 6 * 60}],
    ids=["unsigned", "forged", "stale"],
)
def test_unverified_clicks_are_refused(post_signed, fake_slack, bob_on_slack, incident, signing):
    url = fake_slack.response_url()
    body = interactivity_body(block_actions("muster_ack", str(incident.number), url))
    response, sent = post_signed(INTERACTIVITY, body, FORM, **signing)
    assert response.status_code == 401
    assert response.json()["error"]
    assert sent_names(sent) == []
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_replayed_click_is_refused(client, click, fake_slack, bob_on_slack, incident):
    first, sent, _ = click("muster_ack", str(incident.number))
    request = first.wsgi_request
    headers = {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": request.headers["X-Slack-Request-Timestamp"],
        "HTTP_X_SLACK_SIGNATURE": request.headers["X-Slack-Signature"],
    }
    again = client.post(INTERACTIVITY, request.body, content_type=FORM, **headers)
    assert again.status_code == 401
    assert sent_names(sent) == [BUTTON_TASK]


def test_unconfigured_is_404(client, settings):
    settings.SLACK_BOT_TOKEN = ""
    response = client.post(INTERACTIVITY, b"payload=%7B%7D", content_type=FORM)
    assert response.status_code == 404


def _too_long(url: str) -> dict:
    payload = block_actions("muster_ack", "1042", url)
    payload["user"]["id"] = "U" * 500
    return payload


def _no_actions(url: str) -> dict:
    payload = block_actions("muster_ack", "1042", url)
    payload["actions"] = []
    return payload


def _no_user(url: str) -> dict:
    payload = block_actions("muster_ack", "1042", url)
    del payload["user"]
    return payload


def _not_a_url(url: str) -> dict:
    return block_actions("muster_ack", "1042", "javascript:alert(1)")


@pytest.mark.parametrize(
    "payload",
    [
        lambda url: "{not json",
        lambda url: "[1, 2]",
        lambda url: "",
        _too_long,
        _no_actions,
        _no_user,
        _not_a_url,
    ],
    ids=["not-json", "not-an-object", "empty", "too-long", "no-actions", "no-user", "not-a-url"],
)
def test_malformed_payloads_are_400(post_signed, fake_slack, bob_on_slack, incident, payload):
    raw = payload(fake_slack.response_url())
    body = interactivity_body(raw if isinstance(raw, str) else json.dumps(raw))
    response, sent = post_signed(INTERACTIVITY, body, FORM)
    assert response.status_code == 400
    assert response.json()["error"]
    assert sent_names(sent) == []
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_broker_that_is_down_says_try_again_and_keeps_nothing(
    click, fake_slack, bob_on_slack, incident, monkeypatch
):
    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis: Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(app, "send_task", down)
        response, sent, url = click("muster_ack", str(incident.number))
    assert response.status_code == 200 and sent == []
    assert fake_slack.answers(url) == [
        {"response_type": "ephemeral", "text": NOT_QUEUED, "replace_original": False}
    ]
    # Nothing was kept: the person's second click acts.
    _, sent, _ = click("muster_ack", str(incident.number))
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED

"""`/muster …` from Slack: signed, answered at once, run by a task as the person the Slack user
is, answered through response_url in mrkdwn."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from accounts.models import User
from incidents.models import EntryKind, Source, Status
from muster.celery import app
from tests.fakes.slack import Failure
from tests.helpers.slack import BOB_SLACK, command_form, form_body
from tests.warroom.slack.conftest import COMMANDS, sent_names
from warroom.models import ChatChannel, ChatChannelState
from warroom.slack.people import COULD_NOT_CHECK
from warroom.slack.tasks import COMMAND_TASK
from warroom.slack.views import NOT_QUEUED


@pytest.fixture
def incident(open_incident):
    return open_incident()


def test_ack_answers_at_once_then_acts_and_answers_through_response_url(
    slash, fake_slack, bob_on_slack, incident
):
    response, sent, url = slash(f"ack {incident.number}")
    assert response.status_code == 200
    assert response.json() == {"response_type": "ephemeral", "text": "Working on it…"}
    # The view answered before anything ran: queued, not done, nothing posted yet.
    assert sent_names(sent) == [COMMAND_TASK]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    assert fake_slack.answers(url) == []

    sent.run()  # the worker

    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.actor.username, entry.source) == ("bob", Source.SLACK)
    assert entry.message == "Acknowledged by bob via Slack"
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "in_channel"
    link = f"<https://muster.example.com/incidents/{incident.number}/|#{incident.number}>"
    assert answer["text"].startswith(f"Acknowledged {link}")
    assert [call.params["user"] for call in fake_slack.calls_of("users.info")] == [BOB_SLACK]


def test_the_mapping_is_cached(slash, fake_slack, bob_on_slack, incident):
    for text in ("help", "incidents"):
        slash(text)[1].run()
    assert len(fake_slack.calls_of("users.info")) == 1


def test_read_only_answers_are_ephemeral(slash, fake_slack, bob_on_slack, incident):
    _, sent, url = slash("incidents")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "ephemeral"
    assert f"#{incident.number}>" in answer["text"]


def test_unknown_command_gets_the_closest_command(slash, fake_slack, bob_on_slack, incident):
    _, sent, url = slash(f"akc {incident.number}")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "ephemeral"
    assert "ack" in answer["text"]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


@pytest.mark.parametrize(
    ("email", "confirmed", "why"),
    [
        ("nobody@example.com", True, "No Muster account has the email address"),
        ("bob@example.com", False, "is not confirmed"),
        ("shared@example.com", True, "Several Muster accounts"),
    ],
)
def test_unmapped_users_are_told_why_and_nothing_changes(
    slash, fake_slack, bob, incident, email, confirmed, why
):
    User.objects.create_user("s1", "shared@example.com", "pw")
    User.objects.create_user("s2", "SHARED@example.com", "pw")
    fake_slack.add_user(BOB_SLACK, email, email_confirmed=confirmed)
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "ephemeral"
    assert why in answer["text"]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_deactivated_slack_account_is_no_one(slash, fake_slack, bob, incident):
    fake_slack.add_user(BOB_SLACK, "bob@example.com", deleted=True)
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer == {"response_type": "ephemeral", "text": "Your Slack account is deactivated."}
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_unknown_slack_user(slash, fake_slack, bob, incident):
    _, sent, url = slash(f"ack {incident.number}", user_id="U0STRANGER")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert "user_not_found" in answer["text"]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_an_observer_is_refused(slash, fake_slack, charlie, incident):
    fake_slack.add_user("U0CHARLIE", "charlie@example.com")
    _, sent, url = slash(f"ack {incident.number}", user_id="U0CHARLIE")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer == {
        "response_type": "ephemeral",
        "text": "This needs the responder role; charlie is observer.",
    }
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


@pytest.mark.parametrize(
    "failure", [Failure(429, "ratelimited", 30), Failure(503, "service_unavailable", None)]
)
def test_slack_rate_limiting_or_failing_users_info(
    slash, fake_slack, bob_on_slack, incident, failure
):
    fake_slack.fail_next("users.info", failure)
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    assert fake_slack.answers(url) == [{"response_type": "ephemeral", "text": COULD_NOT_CHECK}]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    # Nothing was cached: the next try asks Slack again, and works.
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    assert fake_slack.answers(url)[0]["response_type"] == "in_channel"


def test_users_info_past_its_tier_is_a_429_too(slash, fake_slack, bob_on_slack, incident):
    fake_slack.limits["users.info"] = (0, 60.0)
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    assert fake_slack.answers(url)[0]["text"] == COULD_NOT_CHECK


def test_slack_down(slash, fake_slack, bob_on_slack, incident, settings):
    settings.SLACK_API_BASE_URL = "http://127.0.0.1:9/api/"  # nothing listens on discard
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    assert fake_slack.answers(url)[0]["text"] == COULD_NOT_CHECK
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_response_url_that_fails_is_logged_not_raised(slash, fake_slack, bob_on_slack, incident):
    _, sent, _ = slash(f"ack {incident.number}")
    sent[0].args[0]["response_url"] = fake_slack.url + "/commands/T0/expired"
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED


# --- requests Muster refuses -----------------------------------------------------------------


@pytest.fixture
def ack_body(fake_slack, incident):
    return form_body(command_form(f"ack {incident.number}", fake_slack.response_url()))


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": None},
        {"secret": "not-the-secret"},
        {"age": 6 * 60},
        {"age": -6 * 60},
    ],
    ids=["unsigned", "forged", "stale", "future"],
)
def test_unsigned_forged_and_stale_requests_are_refused(
    post_signed, bob_on_slack, incident, ack_body, signing
):
    response, sent = post_signed(COMMANDS, ack_body, FORM, **signing)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401
    assert sent == []
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_a_replayed_request_is_refused(client, post_signed, bob_on_slack, incident, ack_body):
    first, sent = post_signed(COMMANDS, ack_body, FORM)
    assert (first.status_code, sent_names(sent)) == (200, [COMMAND_TASK])
    headers = {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": first.wsgi_request.headers["X-Slack-Request-Timestamp"],
        "HTTP_X_SLACK_SIGNATURE": first.wsgi_request.headers["X-Slack-Signature"],
    }
    again = client.post(COMMANDS, ack_body, content_type=FORM, **headers)
    assert again.status_code == 401
    assert "already received" in again.json()["error"]["message"]


def test_a_body_changed_after_signing_is_refused(client, post_signed, bob_on_slack, ack_body):
    first, _ = post_signed(COMMANDS, ack_body, FORM)
    headers = {
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": first.wsgi_request.headers["X-Slack-Request-Timestamp"],
        "HTTP_X_SLACK_SIGNATURE": first.wsgi_request.headers["X-Slack-Signature"],
    }
    forged = ack_body.replace(b"U0BOB", b"U0EVE")
    assert client.post(COMMANDS, forged, content_type=FORM, **headers).status_code == 401


def test_not_configured_is_404(post_signed, settings, ack_body):
    settings.SLACK_SIGNING_SECRET = ""
    response, _ = post_signed(COMMANDS, ack_body, FORM)
    assert response.status_code == 404


def test_only_post(client, fake_slack):
    assert client.get(COMMANDS).status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"text=ack+1",
        b"%%%&&&===\xff\xfe",
        form_body({**command_form("ack 1", "ftp://x/"), "user_id": "U0BOB"}),
        form_body({**command_form("ack 1", "https://hooks.slack.com/x"), "user_id": "U" * 300}),
    ],
    ids=["empty", "missing-fields", "malformed", "not-a-url", "huge-field"],
)
def test_bad_input_is_a_4xx(post_signed, fake_slack, body):
    response, sent = post_signed(COMMANDS, body, FORM)
    assert 400 <= response.status_code < 500
    assert sent == []


@pytest.mark.parametrize(
    ("text", "said"), [("ack " + "9" * 5000, "too long"), ("ack\x00 1", "cannot take")]
)
def test_huge_or_nul_text_is_answered_ephemerally(slash, bob_on_slack, text, said):
    response, sent, _ = slash(text)
    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert said in response.json()["text"]
    assert sent == []


def test_what_slack_escapes_is_unescaped(slash, fake_slack, bob_on_slack, incident):
    _, sent, _ = slash(f"note {incident.number} db &lt;primary&gt; &amp; replica restarted")
    sent.run()
    note = incident.timeline.get(kind=EntryKind.NOTE)
    assert "db <primary> & replica restarted" in note.message


def test_a_broker_that_is_down_gets_a_clear_answer_and_a_second_try_works(
    slash, fake_slack, bob_on_slack, incident, monkeypatch
):
    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis: Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(app, "send_task", down)
        response, sent, _ = slash(f"ack {incident.number}")
    assert response.status_code == 200
    assert response.json() == {"response_type": "ephemeral", "text": NOT_QUEUED}
    assert sent == []

    response, sent, url = slash(f"ack {incident.number}")  # the person types it again
    assert response.json()["text"] == "Working on it…"
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    assert fake_slack.answers(url)[0]["response_type"] == "in_channel"


def test_in_an_incident_channel_the_number_is_optional(slash, fake_slack, bob_on_slack, incident):
    ChatChannel.objects.update_or_create(
        platform="slack",
        incident=incident,
        defaults={"state": ChatChannelState.READY, "name": "inc-x", "channel_id": "C0INC1042"},
    )
    _, sent, url = slash("ack", channel_id="C0INC1042")
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert entry.message == "Acknowledged by bob via Slack"
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "in_channel"


def test_elsewhere_the_number_is_asked_for(slash, fake_slack, bob_on_slack, incident):
    _, sent, url = slash("ack")  # in #incidents, no incident's own channel
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "Which incident? Add its number, e.g. ack 1042"

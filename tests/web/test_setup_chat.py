"""Setup: the chat platforms on /setup/ (settings, the outbox's delivery, a test message) and a
service's chat settings in its form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from incidents.models import Service, Source
from incidents.opening import open_incident
from tests.fakes.slack import DEFAULT_TOKEN, Failure, FakeSlack
from warroom.chat import outbox
from warroom.chat.status import platform_status
from warroom.models import ChatChannel, ChatChannelState, ChatPost, ChatPostState

pytestmark = pytest.mark.django_db

SLACK_ID = "C0TESTCHAN"
MATTERMOST_ID = "4xp9fdt7pbgium38k5k6w95oeh"
SECRET_TOKEN = "xoxb-do-not-show-this-token"


@pytest.fixture(autouse=True)
def nothing_configured(settings):
    settings.SLACK_BOT_TOKEN = ""
    settings.SLACK_SIGNING_SECRET = ""
    settings.MATTERMOST_URL = ""
    settings.MATTERMOST_BOT_TOKEN = ""
    settings.MATTERMOST_COMMAND_TOKENS = []
    settings.MATTERMOST_TEAM = ""


@pytest.fixture
def fake_slack(settings) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        settings.SLACK_BOT_TOKEN = DEFAULT_TOKEN
        settings.SLACK_SIGNING_SECRET = "fake-slack-signing-secret"
        settings.SLACK_API_BASE_URL = fake.api_url
        yield fake


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post(client: Client, url: str, data: dict | None = None):
    """POST a form with the CSRF token from a page just fetched, as the browser does."""
    client.get("/setup/")
    token = client.cookies["csrftoken"].value
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": token})


def panel(html: str, platform: str) -> str:
    start = html.index(f'<article class="panel" id="chat-{platform}"')
    return html[start : html.index("</article>", start)]


def count_in(html: str, state: str) -> int:
    match = re.search(rf'data-state="{state}">(\d+)<', html)
    assert match, f"no count of {state}"
    return int(match.group(1))


def chat_post(state: str, *, platform: str = "slack", error: str = "", age=None) -> ChatPost:
    post = ChatPost.objects.create(
        platform=platform, kind="line", body="x", target=SLACK_ID, state=state, error=error
    )
    if age is not None:
        ChatPost.objects.filter(pk=post.pk).update(created_at=timezone.now() - age)
    return post


# --- the chat section of /setup/ --------------------------------------------------------------


def test_not_configured_names_the_missing_settings(web_charlie):
    html = web_charlie.get("/setup/").content.decode()
    slack, mattermost = panel(html, "slack"), panel(html, "mattermost")
    assert "not configured" in slack
    assert "<code>SLACK_BOT_TOKEN</code>, <code>SLACK_SIGNING_SECRET</code>" in slack
    for name in ("MATTERMOST_URL", "MATTERMOST_BOT_TOKEN", "MATTERMOST_COMMAND_TOKENS"):
        assert f"<code>{name}</code>" in mattermost
    assert "docs/warroom/slack.md" in slack and "docs/warroom/mattermost.md" in mattermost


def test_configured_shows_no_token_value(web_charlie, settings):
    settings.SLACK_BOT_TOKEN = SECRET_TOKEN
    html = web_charlie.get("/setup/").content.decode()
    slack = panel(html, "slack")
    assert '<span class="badge ok" data-configured>configured</span>' in slack
    assert "<code>SLACK_SIGNING_SECRET</code>" in slack  # still missing, for commands
    assert "SLACK_BOT_TOKEN" not in slack
    assert SECRET_TOKEN not in html
    assert "Incident channels: made when an incident opens" in slack


def test_mattermost_without_a_team_makes_no_channels(web_charlie, settings):
    settings.MATTERMOST_URL = "https://chat.example.com"
    settings.MATTERMOST_BOT_TOKEN = "mm-bot-secret"
    settings.MATTERMOST_COMMAND_TOKENS = ["mm-command-secret"]
    html = web_charlie.get("/setup/").content.decode()
    mattermost = panel(html, "mattermost")
    assert "data-missing" not in mattermost
    assert "Incident channels cannot be made" in mattermost
    assert "<code>MATTERMOST_TEAM</code>" in mattermost
    assert "mm-bot-secret" not in html and "mm-command-secret" not in html
    settings.MATTERMOST_TEAM = "ops"
    mattermost = panel(web_charlie.get("/setup/").content.decode(), "mattermost")
    assert "Incident channels: made when an incident opens" in mattermost


def test_delivery_state_counts_the_last_day(web_charlie, service):
    for state, n in ((ChatPostState.SENT, 3), (ChatPostState.FAILED, 2), ("unknown", 1)):
        for _ in range(n):
            chat_post(state)
    chat_post(ChatPostState.SENT, age=timedelta(hours=25))  # too old to count
    chat_post(ChatPostState.QUEUED, age=timedelta(minutes=7))
    chat_post(ChatPostState.SENDING)
    chat_post(ChatPostState.SENT, platform="mattermost")
    failed = chat_post(ChatPostState.FAILED, error="channel_not_found")
    ChatPost.objects.filter(pk=failed.pk).update(created_at=timezone.now() - timedelta(hours=2))
    incident = open_incident(service, title="Disk full", severity=2, source=Source.API)
    ChatChannel.objects.create(platform="slack", incident=incident, name="inc-1")
    other = open_incident(service, title="CPU", severity=2, source=Source.API)
    ChatChannel.objects.create(
        platform="slack", incident=other, name="inc-2", state=ChatChannelState.FAILED
    )

    slack = panel(web_charlie.get("/setup/").content.decode(), "slack")
    assert [count_in(slack, s) for s in ("queued", "sending", "sent", "unknown", "failed")] == [
        1,
        1,
        3,
        1,
        3,
    ]
    assert "Oldest queued post: waiting" in slack and "7\xa0minutes" in slack
    assert "channel_not_found" in slack
    assert "waiting to be made: 1" in slack and "failed: 1" in slack
    mattermost = panel(web_charlie.get("/setup/").content.decode(), "mattermost")
    assert count_in(mattermost, "sent") == 1
    assert "Nothing queued." in mattermost


def test_status_numbers(service):
    queued = chat_post(ChatPostState.QUEUED, age=timedelta(minutes=3))
    ChatPost.objects.filter(pk=queued.pk).update(error="Slack unavailable: ratelimited")
    status = platform_status("slack")
    assert status.counts == {"queued": 1, "sending": 0, "sent": 0, "unknown": 0, "failed": 0}
    assert timedelta(minutes=3) <= status.oldest_queued < timedelta(minutes=4)
    assert status.last_error.error == "Slack unavailable: ratelimited"
    assert status.missing == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]
    assert not status.configured and not status.can_make_channels


def test_the_index_takes_a_fixed_number_of_queries(web_charlie, django_assert_max_num_queries):
    for state in ChatPostState.values:
        chat_post(state)
    with django_assert_max_num_queries(30):
        assert web_charlie.get("/setup/").status_code == 200


# --- the test message -------------------------------------------------------------------------


def test_only_admins_see_the_test_form(web_bob, web_alice, fake_slack):
    assert 'id="chat-test-slack"' not in web_bob.get("/setup/").content.decode()
    assert 'id="chat-test-slack"' in web_alice.get("/setup/").content.decode()


def test_the_form_offers_the_first_shared_channel(web_alice, fake_slack):
    Service.objects.create(name="b-service", slack_channel="C0SECOND")
    Service.objects.create(name="a-service", slack_channel=SLACK_ID)
    Service.objects.create(name="0-service")
    slack = panel(web_alice.get("/setup/").content.decode(), "slack")
    assert f'name="slack-channel_id" value="{SLACK_ID}"' in slack


def test_admin_sends_a_test_message_and_sees_it_sent(
    alice, fake_slack, django_capture_on_commit_callbacks
):
    client = csrf_client(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/setup/chat/slack/test/", {"slack-channel_id": SLACK_ID})
    post_ = ChatPost.objects.get(kind="test")
    assert response.status_code == 302
    assert response["Location"] == f"/setup/chat/posts/{post_.pk}/"
    assert (post_.platform, post_.target, post_.state) == ("slack", SLACK_ID, "queued")
    assert post_.incident is None
    page = client.get(response["Location"]).content.decode()
    assert 'id="chat-post-state">queued<' in page
    assert '<meta http-equiv="refresh"' in page
    entry = AuditEntry.objects.get(object_type="warroom.chatpost")
    assert entry.actor == alice
    assert entry.summary == f"alice sent a Slack test message to {SLACK_ID}"

    outbox.deliver("slack", SLACK_ID)

    [sent] = fake_slack.posts
    assert sent.channel == SLACK_ID and "Test message from Muster, sent by alice" in sent.text
    page = client.get(response["Location"]).content.decode()
    assert 'id="chat-post-state">sent<' in page
    assert '<meta http-equiv="refresh"' not in page


def test_a_refused_test_message_shows_the_providers_error(alice, fake_slack):
    fake_slack.fail_next("chat.postMessage", Failure(200, "channel_not_found", None))
    client = csrf_client(alice)
    response = post(client, "/setup/chat/slack/test/", {"slack-channel_id": "C0NOSUCH"})
    outbox.deliver("slack", "C0NOSUCH")
    page = client.get(response["Location"]).content.decode()
    assert 'id="chat-post-state">failed<' in page
    assert 'id="chat-post-error">channel_not_found<' in page


@pytest.mark.parametrize("channel", ["#general", "c0lower", "", "C" + "A" * 45])
def test_a_bad_channel_id_is_a_form_error(alice, fake_slack, channel):
    response = post(csrf_client(alice), "/setup/chat/slack/test/", {"slack-channel_id": channel})
    assert response.status_code == 400
    slack = panel(response.content.decode(), "slack")
    assert 'class="field invalid"' in slack
    assert not ChatPost.objects.exists()


def test_a_mattermost_id_is_checked_as_mattermost(alice, settings):
    settings.MATTERMOST_URL = "https://chat.example.com"
    settings.MATTERMOST_BOT_TOKEN = "mm-bot"
    client = csrf_client(alice)
    response = post(client, "/setup/chat/mattermost/test/", {"mattermost-channel_id": SLACK_ID})
    assert response.status_code == 400
    assert "not a Mattermost channel id" in response.content.decode()
    response = post(
        client, "/setup/chat/mattermost/test/", {"mattermost-channel_id": MATTERMOST_ID}
    )
    assert response.status_code == 302
    assert ChatPost.objects.get().target == MATTERMOST_ID


def test_no_test_message_while_not_configured(alice):
    response = post(csrf_client(alice), "/setup/chat/slack/test/", {"slack-channel_id": SLACK_ID})
    assert response.status_code == 400
    assert "No test message sent: Slack is not configured." in response.content.decode()
    assert not ChatPost.objects.exists()


@pytest.mark.parametrize("who", ["web_bob", "web_charlie"])
def test_only_admins_send_test_messages(request, who, fake_slack):
    client = request.getfixturevalue(who)
    response = client.post("/setup/chat/slack/test/", {"slack-channel_id": SLACK_ID})
    assert response.status_code == 403
    assert not ChatPost.objects.exists()


def test_test_message_needs_csrf_and_login(alice, fake_slack):
    client = csrf_client(alice)
    assert client.post("/setup/chat/slack/test/", {"slack-channel_id": SLACK_ID}).status_code == 403
    response = Client().post("/setup/chat/slack/test/", {"slack-channel_id": SLACK_ID})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not ChatPost.objects.exists()


def test_get_and_unknown_platforms(web_alice):
    assert web_alice.get("/setup/chat/slack/test/")["Location"] == "/setup/#chat-slack"
    assert web_alice.post("/setup/chat/teams/test/", {}).status_code == 404
    line = chat_post(ChatPostState.SENT)  # an incident's post is not shown here
    assert web_alice.get(f"/setup/chat/posts/{line.pk}/").status_code == 404


# --- a service's chat settings in its form ----------------------------------------------------


def test_service_form_has_the_chat_settings(web_alice, service):
    html = web_alice.get(f"/setup/services/{service.pk}/").content.decode()
    for name in (
        "slack_channel_mode",
        "slack_channel",
        "mattermost_channel_mode",
        "mattermost_channel",
        "archive_chat_channels",
    ):
        assert f'name="{name}"' in html
    assert "Slack: where incidents are told (Slack is not configured)" in html


def test_configured_platforms_are_not_flagged(web_alice, service, fake_slack):
    html = web_alice.get(f"/setup/services/{service.pk}/").content.decode()
    assert "(Slack is not configured)" not in html
    assert "(Mattermost is not configured)" in html


def form_data(**chat) -> dict:
    return {
        "name": "checkout",
        "slack_channel_mode": "channel-per-incident",
        "mattermost_channel_mode": "channel-per-incident",
        "archive_chat_channels": "on",
        **chat,
    }


def test_admin_sets_a_shared_channel(alice, service):
    response = post(
        csrf_client(alice),
        f"/setup/services/{service.pk}/",
        form_data(slack_channel_mode="shared", slack_channel=SLACK_ID, archive_chat_channels=""),
    )
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.slack_channel_mode, service.slack_channel) == ("shared", SLACK_ID)
    assert service.archive_chat_channels is False
    [entry] = AuditEntry.objects.all()
    assert {"slack_channel", "slack_channel_mode"} <= set(entry.changes)


@pytest.mark.parametrize(
    "chat, field, says",
    [
        ({"slack_channel_mode": "shared"}, "slack_channel", "Shared mode needs"),
        ({"mattermost_channel": "town-square"}, "mattermost_channel", "not a Mattermost"),
        ({"slack_channel": "#ops"}, "slack_channel", "not a Slack channel id"),
    ],
)
def test_service_form_refuses_bad_chat_settings(web_alice, service, chat, field, says):
    response = web_alice.post(f"/setup/services/{service.pk}/", form_data(**chat))
    assert response.status_code == 200
    html = response.content.decode()
    assert says in html and f'name="{field}"' in html
    service.refresh_from_db()
    assert service.slack_channel_mode == "channel-per-incident" and service.slack_channel == ""

"""The Slack double speaks the Web API as the real slack_sdk client expects it."""

from __future__ import annotations

import json
from http.client import RemoteDisconnected
from urllib.error import URLError

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import (
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_TOKEN,
    TEAM_ID,
    Failure,
    FakeSlack,
    interaction_form,
)


@pytest.fixture
def fake():
    with FakeSlack() as fake:
        yield fake


def client(fake: FakeSlack, token: str = DEFAULT_TOKEN) -> WebClient:
    return WebClient(token=token, base_url=fake.api_url, timeout=5)


def test_auth_test_and_users_info(fake):
    fake.add_user("U1", "bob@example.com", email_confirmed=False)
    assert client(fake).auth_test()["user_id"] == BOT_USER_ID
    user = client(fake).users_info(user="U1")["user"]
    assert (user["profile"]["email"], user["is_email_confirmed"]) == ("bob@example.com", False)


@pytest.mark.parametrize(("token", "error"), [("xoxb-other", "invalid_auth"), ("", "not_authed")])
def test_bad_tokens(fake, token, error):
    with pytest.raises(SlackApiError) as raised:
        client(fake, token).auth_test()
    assert raised.value.response["error"] == error


def test_unknown_user(fake):
    with pytest.raises(SlackApiError) as raised:
        client(fake).users_info(user="U404")
    assert raised.value.response["error"] == "user_not_found"


def test_post_message_is_limited_per_channel(fake):
    web = client(fake)
    web.chat_postMessage(channel="C1", text="one")
    web.chat_postMessage(channel="C2", text="another channel")
    with pytest.raises(SlackApiError) as raised:
        web.chat_postMessage(channel="C1", text="too soon")
    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert int(raised.value.response.headers["Retry-After"]) >= 1
    assert [post.text for post in fake.posts] == ["one", "another channel"]


def test_users_info_tier(fake):
    fake.add_user("U1", "bob@example.com")
    fake.limits["users.info"] = (2, 60.0)
    for _ in range(2):
        client(fake).users_info(user="U1")
    with pytest.raises(SlackApiError) as raised:
        client(fake).users_info(user="U1")
    assert raised.value.response.status_code == 429


def test_post_ephemeral_needs_a_known_user(fake):
    fake.add_user("U1", "bob@example.com")
    assert client(fake).chat_postEphemeral(channel="C1", user="U1", text="hi")["ok"]
    with pytest.raises(SlackApiError):
        client(fake).chat_postEphemeral(channel="C1", user="U2", text="hi")


def test_a_response_url_takes_five_answers(fake):
    url = fake.response_url()
    for n in range(5):
        assert httpx.post(url, json={"text": str(n)}).status_code == 200
    assert httpx.post(url, json={"text": "six"}).status_code == 404
    assert [answer["text"] for answer in fake.answers(url)] == ["0", "1", "2", "3", "4"]


# --- channels ------------------------------------------------------------------------------------


def test_create_a_channel_invite_and_archive(fake):
    fake.add_user("U1", "bob@example.com")
    fake.add_user("U2", "ann@example.com")
    web = client(fake)
    created = web.conversations_create(name="inc-1042-db-down", is_private=True)["channel"]
    assert created["id"].startswith("C") and created["name"] == "inc-1042-db-down"
    assert created["is_private"] is True and created["creator"] == BOT_USER_ID
    assert created["is_archived"] is False and created["is_member"] is True
    assert web.conversations_invite(channel=created["id"], users=["U1", "U2"])["ok"]
    channel = fake.channels[created["id"]]
    assert channel.members == [BOT_USER_ID, "U1", "U2"] and channel.is_private
    info = web.conversations_info(channel=created["id"], include_num_members=True)["channel"]
    assert info["num_members"] == 3
    assert web.conversations_archive(channel=created["id"])["ok"]
    assert fake.channels[created["id"]].archived
    listed = web.conversations_list(types="public_channel,private_channel")["channels"]
    assert [c["is_archived"] for c in listed] == [True]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("x" * 81, "invalid_name_maxlength"),
        ("Inc-1", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("--", "invalid_name_punctuation"),
    ],
)
def test_a_channel_name_as_slack_checks_it(fake, name, error):
    with pytest.raises(SlackApiError) as raised:
        client(fake).conversations_create(name=name)
    assert raised.value.response["error"] == error


def test_a_taken_name(fake):
    client(fake).conversations_create(name="x" * 80)
    with pytest.raises(SlackApiError) as raised:
        client(fake).conversations_create(name="x" * 80)
    assert raised.value.response["error"] == "name_taken"


@pytest.mark.parametrize(
    ("users", "error"),
    [
        ("U404", "user_not_found"),
        (BOT_USER_ID, "cant_invite_self"),
        ("U1", "already_in_channel"),
    ],
)
def test_invite_refusals(fake, users, error):
    fake.add_user("U1", "bob@example.com")
    channel = fake.add_channel("ops", members=(BOT_USER_ID, "U1"))
    with pytest.raises(SlackApiError) as raised:
        client(fake).conversations_invite(channel=channel.id, users=users)
    assert raised.value.response["error"] == error


def test_an_archived_or_unknown_channel(fake):
    fake.add_user("U1", "bob@example.com")
    channel = fake.add_channel("old")
    web = client(fake)
    web.conversations_archive(channel=channel.id)
    for call, error in [
        (lambda: web.conversations_archive(channel=channel.id), "already_archived"),
        (lambda: web.conversations_invite(channel=channel.id, users="U1"), "is_archived"),
        (lambda: web.chat_postMessage(channel=channel.id, text="hi"), "is_archived"),
        (lambda: web.conversations_archive(channel="C404"), "channel_not_found"),
        (lambda: web.conversations_invite(channel="C404", users="U1"), "channel_not_found"),
        (lambda: web.conversations_info(channel="C404"), "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            call()
        assert raised.value.response["error"] == error
    assert fake.posts == []


def test_strict_channels_refuse_a_post_to_an_unknown_channel(fake):
    fake.strict_channels = True
    with pytest.raises(SlackApiError) as raised:
        client(fake).chat_postMessage(channel="C404", text="hi")
    assert raised.value.response["error"] == "channel_not_found"
    ops = fake.add_channel("ops")
    assert client(fake).chat_postMessage(channel="#ops", text="hi")["channel"] == ops.id


def test_conversations_list_pages(fake):
    for n in range(3):
        fake.add_channel(f"c{n}")
    first = client(fake).conversations_list(limit=2)
    assert [c["name"] for c in first["channels"]] == ["c0", "c1"]
    cursor = first["response_metadata"]["next_cursor"]
    rest = client(fake).conversations_list(limit=2, cursor=cursor)
    assert [c["name"] for c in rest["channels"]] == ["c2"]
    assert rest["response_metadata"]["next_cursor"] == ""


def test_users_lookup_by_email(fake):
    fake.add_user("U1", "Bob@Example.com")
    assert client(fake).users_lookupByEmail(email="bob@example.com")["user"]["id"] == "U1"
    with pytest.raises(SlackApiError) as raised:
        client(fake).users_lookupByEmail(email="nobody@example.com")
    assert raised.value.response["error"] == "users_not_found"


# --- posting -------------------------------------------------------------------------------------


def test_a_post_records_blocks_and_gets_an_increasing_ts(fake):
    fake.limits["chat.postMessage"] = (1, 1.0, 5)
    ops = fake.add_channel("ops")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Sev1*"}}]
    web = client(fake)
    first = web.chat_postMessage(channel=ops.id, text="Sev1", blocks=blocks)
    second = web.chat_postMessage(channel=ops.id, text="again", thread_ts=first["ts"])
    assert (first["channel"], first["message"]["blocks"]) == (ops.id, blocks)
    assert float(second["ts"]) > float(first["ts"]) and len(first["ts"].split(".")[1]) == 6
    posts = fake.posts_in(ops.id)
    assert [(p.text, p.blocks, p.thread_ts) for p in posts] == [
        ("Sev1", blocks, ""),
        ("again", None, first["ts"]),
    ]
    web.chat_postMessage(channel=ops.id, text="Sev1", blocks=json.dumps(blocks))  # as a form field
    assert fake.posts_in(ops.id)[-1].blocks == blocks


def test_burst_then_one_a_second(fake):
    fake.limits["chat.postMessage"] = (1, 1.0, 3)
    web = client(fake)
    for n in range(3):
        web.chat_postMessage(channel="C1", text=str(n))
    with pytest.raises(SlackApiError) as raised:
        web.chat_postMessage(channel="C1", text="too many")
    assert raised.value.response.status_code == 429


def test_the_workspace_wide_limit(fake):
    fake.limits["chat.postMessage/workspace"] = (2, 60.0)
    web = client(fake)
    web.chat_postMessage(channel="C1", text="1")
    web.chat_postMessage(channel="C2", text="2")
    with pytest.raises(SlackApiError) as raised:
        web.chat_postMessage(channel="C3", text="3")
    assert raised.value.response.status_code == 429
    assert int(raised.value.response.headers["Retry-After"]) == 30


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("conversations.create", lambda web, n: web.conversations_create(name=f"c{n}")),
        ("users.lookupByEmail", lambda web, n: web.users_lookupByEmail(email="a@example.com")),
    ],
)
def test_the_tiers_limit_the_new_methods(fake, method, call):
    fake.add_user("U1", "a@example.com")
    tier = fake.limits[method]
    assert tier in ((20, 60.0), (50, 60.0))
    fake.limits[method] = (1, 60.0)
    call(client(fake), 1)
    with pytest.raises(SlackApiError) as raised:
        call(client(fake), 2)
    assert raised.value.response["error"] == "ratelimited"


# --- outcome unknown, down -----------------------------------------------------------------------


def test_a_hung_call_is_carried_out_but_answered_too_late(fake):
    fake.hang_next("chat.postMessage", 3)
    web = WebClient(token=DEFAULT_TOKEN, base_url=fake.api_url, timeout=0.5)
    with pytest.raises(TimeoutError):
        web.chat_postMessage(channel="C1", text="did it?")
    assert [p.text for p in fake.posts_in("C1")] == ["did it?"]


def test_a_hung_call_not_carried_out(fake):
    fake.hang_next("conversations.create", 0.1, processed=False)
    web = client(fake)
    web.retry_handlers = []  # slack_sdk retries a dropped connection once by default
    with pytest.raises(RemoteDisconnected):
        web.conversations_create(name="never")
    assert fake.channels == {}
    fake.hang_next("conversations.create", 0.1, processed=False)
    assert client(fake).conversations_create(name="retried")["ok"]
    assert len(fake.calls_of("conversations.create")) == 3


def test_a_late_failure(fake):
    fake.fail_next("auth.test", Failure(500, "internal_error", None, delay=0.2))
    with pytest.raises(SlackApiError) as raised:
        client(fake).auth_test()
    assert raised.value.response.status_code == 500


def test_down_then_up_again_on_the_same_url(fake):
    url = fake.api_url
    fake.stop()
    with pytest.raises(URLError):
        client(fake).auth_test()
    fake.start()
    assert fake.api_url == url and client(fake).auth_test()["ok"]


# --- what Slack sends the app --------------------------------------------------------------------


def test_a_block_action_payload(fake):
    fake.add_user("U1", "bob@example.com")
    ops = fake.add_channel("ops")
    posted = client(fake).chat_postMessage(channel=ops.id, text="Sev1")
    payload = fake.block_action_payload("U1", ops.id, "ack", "inc-1042")
    assert payload["type"] == "block_actions" and payload["team"]["id"] == TEAM_ID
    assert payload["user"]["id"] == "U1" and payload["channel"] == {"id": ops.id, "name": "ops"}
    assert payload["container"]["message_ts"] == posted["ts"]
    assert payload["trigger_id"] and payload["message"]["text"] == "Sev1"
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["type"]) == ("ack", "inc-1042", "button")
    assert action["block_id"] and action["action_ts"]
    assert httpx.post(payload["response_url"], json={"text": "acked"}).status_code == 200
    assert json.loads(interaction_form(payload)["payload"]) == payload


def test_a_message_event_payload(fake):
    payload = fake.message_event_payload("U1", "C1", "rolled back", "1700000000.000100", "1.2")
    assert payload["type"] == "event_callback" and payload["event_id"].startswith("Ev")
    assert (payload["team_id"], payload["api_app_id"]) == (TEAM_ID, "A0MUSTER")
    assert payload["event_time"] == 1700000000
    event = payload["event"]
    assert (event["type"], event["user"], event["text"]) == ("message", "U1", "rolled back")
    assert event["thread_ts"] == "1.2" and "bot_id" not in event
    bot = fake.message_event_payload("", "C1", "posted", bot_id=BOT_ID, subtype="bot_message")
    assert bot["event"]["bot_id"] == BOT_ID and "user" not in bot["event"]

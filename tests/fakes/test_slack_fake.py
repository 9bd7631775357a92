"""The Slack double speaks the Web API as the real slack_sdk client expects it."""

from __future__ import annotations

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack import BOT_USER_ID, DEFAULT_TOKEN, FakeSlack


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

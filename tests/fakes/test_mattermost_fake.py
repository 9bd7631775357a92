"""The Mattermost double itself: API v4's users, its AppErrors and its rate limiting, as the
reference documents them; and Muster's client against it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.mattermost import FakeMattermost, new_id
from warroom.mattermost import client


@pytest.fixture
def fake() -> Iterator[FakeMattermost]:
    with FakeMattermost() as fake:
        yield fake


def get(fake: FakeMattermost, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or fake.bot_token}"} if token != "" else {}
    return httpx.get(fake.url + path, headers=headers, trust_env=False)


def test_users_and_me_are_user_objects(fake):
    bob = fake.add_user("bob", "bob@example.com")
    got = get(fake, f"/api/v4/users/{bob.id}")
    assert got.status_code == 200
    user = got.json()
    assert (user["id"], user["username"], user["email"]) == (bob.id, "bob", "bob@example.com")
    assert user["email_verified"] is True and user["delete_at"] == 0
    me = get(fake, "/api/v4/users/me").json()
    assert me["id"] == fake.bot.id and me["is_bot"] is True


def test_a_hidden_email_is_sanitized_away(fake):
    hidden = fake.add_user("eve", "")
    user = get(fake, f"/api/v4/users/{hidden.id}").json()
    assert user["email"] == "" and "email_verified" not in user


@pytest.mark.parametrize("token", ["", "wrong"])
def test_a_bad_token_is_401_app_error(fake, token):
    got = get(fake, "/api/v4/users/me", token=token)
    assert got.status_code == 401
    error = got.json()
    assert error["id"] == "api.context.session_expired.app_error"
    assert error["status_code"] == 401 and error["message"]


def test_an_unknown_user_is_404_missing_account(fake):
    got = get(fake, f"/api/v4/users/{new_id()}")
    assert got.status_code == 404
    assert got.json()["id"] == "app.user.missing_account.const"
    assert get(fake, "/api/v4/users/not-an-id").status_code == 400


def test_every_answer_carries_the_rate_limit_and_429_says_when(fake):
    fake.per_second = 2
    first = get(fake, "/api/v4/users/me")
    assert first.headers["X-Ratelimit-Limit"] == "2"
    assert first.headers["X-Ratelimit-Remaining"] == "1"
    answers = [get(fake, "/api/v4/users/me") for _ in range(5)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].text == "limit exceeded"
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].headers["X-Ratelimit-Remaining"] == "0"


def test_rate_limit_next_and_fail_next(fake):
    fake.rate_limit_next(retry_after=9)
    fake.fail_next(status=503)
    assert get(fake, "/api/v4/users/me").headers["Retry-After"] == "9"
    assert get(fake, "/api/v4/users/me").status_code == 503
    assert get(fake, "/api/v4/users/me").status_code == 200


def test_a_response_url_records_what_it_gets(fake):
    url = fake.response_url()
    sent = httpx.post(url, json={"response_type": "ephemeral", "text": "hi"}, trust_env=False)
    assert sent.status_code == 200
    assert [r.body for r in fake.responses] == [{"response_type": "ephemeral", "text": "hi"}]
    assert fake.requests == []  # not an API request


# --- Muster's client against it ------------------------------------------------------------------


@pytest.fixture
def configured(fake, settings):
    settings.MATTERMOST_URL = fake.url
    settings.MATTERMOST_BOT_TOKEN = fake.bot_token
    return fake


def test_the_client_reads_a_user(configured):
    bob = configured.add_user("bob", "bob@example.com")
    assert client.get_user(bob.id)["email"] == "bob@example.com"
    with pytest.raises(client.UnknownUser):
        client.get_user(new_id())
    with pytest.raises(client.UnknownUser):
        client.get_user("../me")
    assert configured.api_requests("/api/v4/users/../me") == []


def test_the_client_reports_429_with_retry_after(configured):
    configured.rate_limit_next(retry_after=4)
    with pytest.raises(client.MattermostUnavailable) as raised:
        client.get_user(configured.bot.id)
    assert raised.value.retry_after == 4


def test_the_client_reports_a_wrong_token_and_a_dead_server(configured, settings):
    settings.MATTERMOST_BOT_TOKEN = "wrong"
    with pytest.raises(client.MattermostUnavailable, match="401"):
        client.get_user(configured.bot.id)
    configured.stop()
    with pytest.raises(client.MattermostUnavailable, match="did not answer"):
        client.get_user(configured.bot.id)

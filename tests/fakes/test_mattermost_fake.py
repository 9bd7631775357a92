"""The Mattermost double itself: API v4's users, its AppErrors and its rate limiting, as the
reference documents them; and Muster's client against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.fakes.loopback import LoopbackServer
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


# --- teams, channels, posts, outgoing webhooks ---------------------------------------------------


class Receiver(LoopbackServer):
    """Muster's end, for what the fake Mattermost server sends: records each JSON or form body,
    answers `answer` (JSON)."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer or {}
        self.received: list[tuple[str, Any]] = []

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                kind = self.headers["Content-Type"]
                sent = json.loads(body) if kind == "application/json" else parse_qs(body.decode())
                receiver.received.append((kind, sent))
                data = json.dumps(receiver.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def api(fake: FakeMattermost, method: str, path: str, body: Any = None, **kw: Any):
    headers = {"Authorization": f"Bearer {fake.bot_token}"}
    return httpx.request(
        method, fake.url + "/api/v4" + path, json=body, headers=headers, trust_env=False, **kw
    )


def new_channel(fake, team, name="inc-1042", kind="O"):
    body = {"team_id": team.id, "name": name, "display_name": "INC-1042", "type": kind}
    return api(fake, "POST", "/channels", body)


def test_a_team_by_name(fake):
    ops = fake.add_team("ops")
    got = api(fake, "GET", "/teams/name/ops")
    assert got.status_code == 200 and (got.json()["id"], got.json()["name"]) == (ops.id, "ops")
    missing = api(fake, "GET", "/teams/name/dev")
    assert missing.status_code == 404 and missing.json()["status_code"] == 404


def test_create_a_channel_and_its_name_is_the_teams(fake):
    ops = fake.add_team("ops")
    created = new_channel(fake, ops, kind="P")
    assert created.status_code == 201
    channel = created.json()
    assert (channel["team_id"], channel["name"], channel["type"]) == (ops.id, "inc-1042", "P")
    assert channel["display_name"] == "INC-1042" and channel["delete_at"] == 0
    assert channel["creator_id"] == fake.bot.id and fake.channels[channel["id"]].members
    again = new_channel(fake, ops)
    assert again.status_code == 400
    assert again.json()["id"] == "store.sql_channel.save_channel.exists.app_error"
    assert new_channel(fake, fake.add_team("dev")).status_code == 201  # another team: fine


@pytest.mark.parametrize("name", ["", "Inc-1", "-inc", "inc 1", "x" * 65])
def test_a_channel_name_mattermost_refuses(fake, name):
    refused = new_channel(fake, fake.add_team("ops"), name=name)
    assert refused.status_code == 400
    assert refused.json()["id"] == "model.channel.is_valid.2_or_more.app_error"


def test_a_channel_display_name_and_an_unknown_team(fake):
    ops = fake.add_team("ops")
    long = {"team_id": ops.id, "name": "x", "display_name": "x" * 65, "type": "O"}
    assert api(fake, "POST", "/channels", long).json()["id"].endswith("display_name.app_error")
    assert api(fake, "POST", "/channels", {**long, "team_id": new_id()}).status_code == 403


def test_archive_a_channel(fake):
    channel = fake.add_channel(fake.add_team("ops"), "old")
    archived = api(fake, "DELETE", f"/channels/{channel.id}")
    assert (archived.status_code, archived.json()) == (200, {"status": "OK"})
    assert fake.channels[channel.id].delete_at > 0
    assert api(fake, "DELETE", f"/channels/{channel.id}").status_code == 400
    assert api(fake, "DELETE", f"/channels/{new_id()}").status_code == 404
    assert api(fake, "DELETE", "/channels/nope").status_code == 400


def test_add_a_member(fake):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    bob = fake.add_user("bob", "bob@example.com")
    added = api(fake, "POST", f"/channels/{channel.id}/members", {"user_id": bob.id})
    assert added.status_code == 201
    assert (added.json()["channel_id"], added.json()["user_id"]) == (channel.id, bob.id)
    again = api(fake, "POST", f"/channels/{channel.id}/members", {"user_id": bob.id})
    assert again.status_code == 201 and channel.members.count(bob.id) == 1
    unknown = api(fake, "POST", f"/channels/{channel.id}/members", {"user_id": new_id()})
    assert unknown.status_code == 404
    api(fake, "DELETE", f"/channels/{channel.id}")
    archived = api(fake, "POST", f"/channels/{channel.id}/members", {"user_id": bob.id})
    assert archived.json()["id"] == "api.channel.add_user_to_channel.deleted.app_error"


def test_a_user_by_email(fake):
    bob = fake.add_user("bob", "bob@example.com")
    fake.add_user("eve", "")
    assert api(fake, "GET", "/users/email/Bob@Example.com").json()["id"] == bob.id
    missing = api(fake, "GET", "/users/email/eve@example.com")
    assert missing.status_code == 404 and missing.json()["id"] == "app.user.missing_account.const"


def buttons(url: str, *ids: str) -> dict[str, Any]:
    actions = [
        {"id": i, "name": f"Ack {i}", "integration": {"url": url, "context": {"incident": 42}}}
        for i in ids
    ]
    return {"attachments": [{"text": "Sev1", "actions": actions}]}


def test_a_post_with_buttons(fake):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    body = {"channel_id": channel.id, "message": "Sev1", "props": buttons("http://x/", "ack", "")}
    created = api(fake, "POST", "/posts", body)
    assert created.status_code == 201
    post = created.json()
    assert post["id"] and post["create_at"] and post["user_id"] == fake.bot.id
    actions = post["props"]["attachments"][0]["actions"]
    assert actions[0]["id"] == "ack" and len(actions[1]["id"]) == 26  # Mattermost gives one
    assert all("integration" not in action for action in actions)  # stays on the server
    (stored,) = fake.posts_in(channel.id)
    assert stored.actions()[0]["integration"]["context"] == {"incident": 42}
    reply = api(
        fake, "POST", "/posts", {"channel_id": channel.id, "message": "r", "root_id": post["id"]}
    )
    assert reply.status_code == 201 and reply.json()["root_id"] == post["id"]
    bad_root = api(
        fake, "POST", "/posts", {"channel_id": channel.id, "message": "r", "root_id": new_id()}
    )
    assert bad_root.status_code == 400


def test_a_post_to_an_unknown_or_archived_channel(fake):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    unknown = api(fake, "POST", "/posts", {"channel_id": new_id(), "message": "hi"})
    assert unknown.status_code == 403
    api(fake, "DELETE", f"/channels/{channel.id}")
    archived = api(fake, "POST", "/posts", {"channel_id": channel.id, "message": "hi"})
    assert archived.status_code == 400
    assert archived.json()["id"] == "api.post.create_post.can_not_post_to_deleted.error"
    assert fake.posts_in(channel.id) == []


def test_outgoing_webhooks_on_public_channels_only(fake):
    ops = fake.add_team("ops")
    public, private = fake.add_channel(ops, "inc"), fake.add_channel(ops, "sec", type="P")
    hook = {
        "team_id": ops.id,
        "channel_id": public.id,
        "display_name": "muster",
        "callback_urls": ["http://127.0.0.1:9/"],
        "content_type": "application/json",
    }
    created = api(fake, "POST", "/hooks/outgoing", hook)
    assert created.status_code == 201
    assert created.json()["token"] and created.json()["channel_id"] == public.id
    refused = api(fake, "POST", "/hooks/outgoing", {**hook, "channel_id": private.id})
    assert refused.status_code == 403
    assert refused.json()["id"] == "api.outgoing_webhook.disabled.app_error"  # sic: the server's
    deleted = api(fake, "DELETE", f"/hooks/outgoing/{created.json()['id']}")
    assert (deleted.status_code, deleted.json()) == (200, {"status": "OK"})
    assert api(fake, "DELETE", f"/hooks/outgoing/{created.json()['id']}").status_code == 404


def test_outgoing_webhooks_turned_off_are_501(fake):
    ops = fake.add_team("ops")
    fake.outgoing_webhooks = False
    hook = {
        "team_id": ops.id,
        "channel_id": fake.add_channel(ops, "inc").id,
        "callback_urls": ["http://127.0.0.1:9/"],
    }
    refused = api(fake, "POST", "/hooks/outgoing", hook)
    assert refused.status_code == 501
    assert refused.json()["id"] == "api.outgoing_webhook.disabled.app_error"


def test_a_direct_channel_is_the_pairs_one_channel(fake):
    bob = fake.add_user("bob", "bob@example.com")
    made = api(fake, "POST", "/channels/direct", [bob.id, fake.bot.id])
    assert made.status_code == 201
    channel = made.json()
    assert channel["type"] == "D" and channel["team_id"] == ""
    assert channel["name"] == "__".join(sorted([bob.id, fake.bot.id]))
    again = api(fake, "POST", "/channels/direct", [fake.bot.id, bob.id])
    assert (again.status_code, again.json()["id"]) == (201, channel["id"])
    posted = api(fake, "POST", "/posts", {"channel_id": channel["id"], "message": "only you"})
    assert posted.status_code == 201
    assert [p.message for p in fake.direct_messages_to(bob.id)] == ["only you"]


def test_a_direct_channel_mattermost_refuses(fake):
    bob, carol = fake.add_user("bob", "bob@example.com"), fake.add_user("carol", "c@example.com")
    not_the_bots = api(fake, "POST", "/channels/direct", [bob.id, carol.id])
    assert not_the_bots.status_code == 403
    three = api(fake, "POST", "/channels/direct", [bob.id, carol.id, fake.bot.id])
    assert (
        three.status_code == 400
        and three.json()["id"] == "api.context.invalid_body_param.app_error"
    )
    unknown = api(fake, "POST", "/channels/direct", [new_id(), fake.bot.id])
    assert unknown.json()["id"] == "api.channel.create_direct_channel.invalid_user.app_error"
    assert api(fake, "POST", "/channels/direct", {"user_ids": []}).status_code == 400
    fake.refuse_direct_channels = True
    assert api(fake, "POST", "/channels/direct", [bob.id, fake.bot.id]).status_code == 403


def test_a_users_post_calls_the_outgoing_webhook(fake, receiver):
    ops = fake.add_team("ops")
    channel = fake.add_channel(ops, "inc")
    bob = fake.add_user("bob", "bob@example.com")
    hook = {
        "team_id": ops.id,
        "channel_id": channel.id,
        "display_name": "muster",
        "callback_urls": [receiver.url + "/mm/outgoing"],
        "content_type": "application/json",
    }
    token = api(fake, "POST", "/hooks/outgoing", hook).json()["token"]
    receiver.answer = {"text": "noted", "response_type": "comment"}
    post, (answer,) = fake.user_posts(channel.id, bob, "rolled back db-1")
    assert answer.status_code == 200
    ((kind, sent),) = receiver.received
    assert kind == "application/json"
    assert sent["token"] == token and (sent["team_id"], sent["team_domain"]) == (ops.id, "ops")
    assert (sent["channel_id"], sent["channel_name"]) == (channel.id, "inc")
    assert (sent["user_id"], sent["user_name"], sent["post_id"]) == (bob.id, "bob", post.id)
    assert (sent["text"], sent["trigger_word"], sent["file_ids"]) == ("rolled back db-1", "", "")
    assert sent["timestamp"] == post.create_at
    reply = fake.posts_in(channel.id)[-1]
    assert (reply.message, reply.root_id, reply.props["from_webhook"]) == ("noted", post.id, "true")
    assert len(receiver.received) == 1  # the webhook's own answer fires nothing


def test_the_bots_own_api_post_fires_the_hook_too(fake, receiver):
    ops = fake.add_team("ops")
    channel = fake.add_channel(ops, "inc")
    hook = {
        "team_id": ops.id,
        "channel_id": channel.id,
        "display_name": "muster",
        "callback_urls": [receiver.url],
        "content_type": "application/json",
    }
    api(fake, "POST", "/hooks/outgoing", hook)
    assert api(fake, "POST", "/hooks/outgoing", hook).status_code == 201  # no trigger words
    api(fake, "POST", "/posts", {"channel_id": channel.id, "message": "Sev1 opened"})
    deliveries = fake.wait_for_deliveries(2)
    assert [d[2]["user_id"] for d in deliveries] == [fake.bot.id, fake.bot.id]
    clash = {**hook, "trigger_words": ["muster"]}
    api(fake, "POST", "/hooks/outgoing", clash)
    assert api(fake, "POST", "/hooks/outgoing", clash).status_code == 500  # intersecting


def test_trigger_words_and_form_encoding(fake, receiver):
    ops = fake.add_team("ops")
    channel = fake.add_channel(ops, "inc")
    bob = fake.add_user("bob", "bob@example.com")
    hook = {
        "team_id": ops.id,
        "display_name": "muster",
        "trigger_words": ["muster"],
        "callback_urls": [receiver.url],
    }
    assert api(fake, "POST", "/hooks/outgoing", hook).status_code == 201
    assert fake.user_posts(channel.id, bob, "no trigger here")[1] == []
    fake.user_posts(channel.id, bob, "muster ack")
    ((kind, sent),) = receiver.received
    assert kind == "application/x-www-form-urlencoded" and sent["trigger_word"] == ["muster"]


def test_a_click_posts_the_context_and_applies_the_update(fake, receiver):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    bob = fake.add_user("bob", "bob@example.com")
    body = {"channel_id": channel.id, "message": "Sev1", "props": buttons(receiver.url, "ack")}
    post_id = api(fake, "POST", "/posts", body).json()["id"]
    receiver.answer = {"update": {"message": "Acked by bob", "props": {}}, "ephemeral_text": "ok"}
    status, answer = fake.click(post_id, "ack", bob)
    assert status == 200 and answer["ephemeral_text"] == "ok"
    ((_, sent),) = receiver.received
    assert (sent["user_id"], sent["user_name"], sent["post_id"]) == (bob.id, "bob", post_id)
    assert (sent["channel_id"], sent["team_domain"], sent["type"]) == (channel.id, "ops", "")
    assert sent["context"] == {"incident": 42} and sent["trigger_id"]
    assert fake.post(post_id).message == "Acked by bob"


def test_a_button_id_mattermost_cannot_route(fake, receiver):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    body = {"channel_id": channel.id, "message": "x", "props": buttons(receiver.url, "ack_1")}
    post_id = api(fake, "POST", "/posts", body).json()["id"]
    assert fake.click(post_id, "ack_1", fake.add_user("bob", "b@example.com"))[0] == 404
    assert receiver.received == []


def test_the_new_endpoints_are_rate_limited_too(fake):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    fake.rate_limit_next(retry_after=3)
    limited = api(fake, "POST", "/posts", {"channel_id": channel.id, "message": "hi"})
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert fake.posts_in(channel.id) == []


def test_a_hung_request_is_carried_out_but_answered_too_late(fake):
    channel = fake.add_channel(fake.add_team("ops"), "inc")
    fake.hang_next(3)
    with pytest.raises(httpx.ReadTimeout):
        api(fake, "POST", "/posts", {"channel_id": channel.id, "message": "hi"}, timeout=0.5)
    assert [p.message for p in fake.posts_in(channel.id)] == ["hi"]
    fake.hang_next(0.1, processed=False)
    with pytest.raises(httpx.RemoteProtocolError):
        api(fake, "POST", "/posts", {"channel_id": channel.id, "message": "lost"})
    assert len(fake.posts_in(channel.id)) == 1


def test_down_and_up_again(fake):
    url = fake.url
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        get(fake, "/api/v4/users/me")
    fake.start()
    assert fake.url == url and get(fake, "/api/v4/users/me").status_code == 200

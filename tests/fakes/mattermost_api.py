"""The Mattermost double's teams, channels, posts and outgoing webhooks: the API v4 endpoints
that manage them, and what the Mattermost *server* does towards Muster (`user_posts` fires the
outgoing webhooks, `click` calls a button's integration URL). `FakeMattermost` mixes it in."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx

from tests.fakes.mattermost_model import (
    ACTION_ID,
    CHANNEL_DISPLAY_NAME_MAX,
    CHANNEL_NAME,
    FakeChannel,
    FakeHook,
    FakePost,
    FakeTeam,
    FakeUser,
    app_error,
    is_id,
    new_id,
    now_ms,
)

Answer = tuple[int, Any]
_PERMISSIONS = (
    403,
    "api.context.permissions.app_error",
    "You do not have the appropriate permissions.",
)
_NO_CHANNEL = (404, "app.channel.get.existing.app_error", "Unable to find the existing channel.")
_NO_USER = (404, "app.user.missing_account.const", "Unable to find the user.")


def _err(status: int, error_id: str, message: str) -> Answer:
    return status, app_error(status, error_id, message)


def _bad_url_param(name: str) -> Answer:
    return _err(
        400,
        "api.context.invalid_url_param.app_error",
        f"Invalid or missing {name} parameter in request URL.",
    )


def _bad_body_param(name: str) -> Answer:
    return _err(
        400,
        "api.context.invalid_body_param.app_error",
        f"Invalid or missing {name} in request body.",
    )


class Resources:
    bot: FakeUser
    _users: dict[str, FakeUser]
    _lock: threading.Lock

    def _init_resources(self) -> None:
        self.teams: dict[str, FakeTeam] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.posts: list[FakePost] = []
        self.hooks: dict[str, FakeHook] = {}
        self.deliveries: list[tuple[str, str, dict[str, Any], httpx.Response | Exception]] = []
        # System Console > Integrations > Enable Outgoing Webhooks (off: creating one is 501).
        self.outgoing_webhooks = True
        # A bot whose role lacks create_direct_channel: a direct channel is 403.
        self.refuse_direct_channels = False
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = [
            ("GET", re.compile(r"/api/v4/teams/name/(?P<name>[^/]+)"), self._team_by_name),
            ("POST", re.compile(r"/api/v4/channels"), self._create_channel),
            ("POST", re.compile(r"/api/v4/channels/direct"), self._direct_channel),
            ("DELETE", re.compile(r"/api/v4/channels/(?P<channel_id>[^/]+)"), self._archive),
            ("POST", re.compile(r"/api/v4/channels/(?P<channel_id>[^/]+)/members"), self._join),
            ("GET", re.compile(r"/api/v4/users/email/(?P<email>[^/]+)"), self._user_by_email),
            ("POST", re.compile(r"/api/v4/posts"), self._create_post),
            ("POST", re.compile(r"/api/v4/hooks/outgoing"), self._create_hook),
            ("DELETE", re.compile(r"/api/v4/hooks/outgoing/(?P<hook_id>[^/]+)"), self._drop_hook),
        ]

    # --- what a test sets up and reads -----------------------------------------------------------

    def add_team(self, name: str, display_name: str = "") -> FakeTeam:
        team = FakeTeam(new_id(), name, display_name or name.title())
        with self._lock:
            self.teams[team.id] = team
        return team

    def add_channel(
        self, team: FakeTeam, name: str, *, type: str = "O", members: tuple[str, ...] = ()
    ) -> FakeChannel:
        """A channel that exists already; the bot is a member."""
        channel = FakeChannel(new_id(), team.id, name, name.title(), type)
        channel.members = [self.bot.id, *members]
        with self._lock:
            self.channels[channel.id] = channel
        return channel

    def posts_in(self, channel_id: str) -> list[FakePost]:
        with self._lock:
            return [post for post in self.posts if post.channel_id == channel_id]

    def post(self, post_id: str) -> FakePost:
        with self._lock:
            return next(post for post in self.posts if post.id == post_id)

    # --- routing ---------------------------------------------------------------------------------

    def _route(self, method: str, path: str, body: bytes) -> Answer | None:
        for verb, pattern, handler in self._routes:
            matched = pattern.fullmatch(path)
            if matched and verb == method:
                try:
                    sent = json.loads(body) if body else {}
                except ValueError:
                    sent = None
                # The body is an object, but a direct channel's is an array of two user ids.
                expected = list if handler == self._direct_channel else dict
                if not isinstance(sent, expected):
                    return _bad_body_param("body")
                with self._lock:
                    return handler(sent, **{k: unquote(v) for k, v in matched.groupdict().items()})
        return None

    def _channel(self, channel_id: str) -> tuple[FakeChannel | None, Answer | None]:
        if not is_id(channel_id):
            return None, _bad_url_param("channel_id")
        channel = self.channels.get(channel_id)
        return channel, None if channel else _err(*_NO_CHANNEL)

    # --- the endpoints ---------------------------------------------------------------------------

    def _team_by_name(self, sent: Any, name: str) -> Answer:
        team = next((t for t in self.teams.values() if t.name == name), None)
        if team is None:
            return _err(404, "app.team.get_by_name.missing.app_error", "Unable to find the team.")
        return 200, team.json()

    def _create_channel(self, sent: dict[str, Any]) -> Answer:
        team = self.teams.get(str(sent.get("team_id", "")))
        if team is None:
            return _err(*_PERMISSIONS)
        name, display = str(sent.get("name", "")), str(sent.get("display_name", ""))
        kind = str(sent.get("type", "O"))
        if not display or len(display) > CHANNEL_DISPLAY_NAME_MAX:
            return _err(
                400, "model.channel.is_valid.display_name.app_error", "Invalid display name."
            )
        if not CHANNEL_NAME.match(name):
            return _err(
                400,
                "model.channel.is_valid.2_or_more.app_error",
                "Name must be 1 or more lowercase alphanumeric characters.",
            )
        if kind not in ("O", "P"):
            return _err(400, "model.channel.is_valid.type.app_error", "Invalid type.")
        if any(c.team_id == team.id and c.name == name for c in self.channels.values()):
            return _err(
                400,
                "store.sql_channel.save_channel.exists.app_error",
                "A channel with that name already exists on the same team.",
            )
        channel = FakeChannel(new_id(), team.id, name, display, kind, creator_id=self.bot.id)
        channel.purpose, channel.header = str(sent.get("purpose", "")), str(sent.get("header", ""))
        channel.members.append(self.bot.id)
        self.channels[channel.id] = channel
        return 201, channel.json()

    def _direct_channel(self, sent: list[Any]) -> Answer:
        """api4/channel.go createDirectChannel: exactly two valid user ids, the caller (the bot)
        one of them; the one channel of the pair, made the first time (201 both times)."""
        if len(sent) != 2:
            return _bad_body_param("user_ids")
        if not all(isinstance(i, str) and is_id(i) for i in sent):
            return _bad_body_param("user_id")
        if self.bot.id not in sent or self.refuse_direct_channels:
            return _err(*_PERMISSIONS)
        if not all(i in self._users for i in sent):
            return _err(
                400,
                "api.channel.create_direct_channel.invalid_user.app_error",
                "Invalid user ID for direct channel creation.",
            )
        name = "__".join(sorted(sent))
        channel = next(
            (c for c in self.channels.values() if c.type == "D" and c.name == name), None
        )
        if channel is None:
            channel = FakeChannel(new_id(), "", name, "", "D", creator_id=self.bot.id)
            channel.members = sorted(set(sent))
            self.channels[channel.id] = channel
        return 201, channel.json()

    def direct_messages_to(self, user_id: str) -> list[FakePost]:
        """What the bot said to `user_id` in their direct channel."""
        name = "__".join(sorted({self.bot.id, user_id}))
        with self._lock:
            ids = {c.id for c in self.channels.values() if c.type == "D" and c.name == name}
            return [post for post in self.posts if post.channel_id in ids]

    def _archive(self, sent: Any, channel_id: str) -> Answer:
        channel, refused = self._channel(channel_id)
        if channel is None:
            return refused  # type: ignore[return-value]
        if channel.delete_at:
            return _err(
                400,
                "api.channel.delete_channel.deleted.app_error",
                "The channel has been archived.",
            )
        channel.delete_at = now_ms()
        return 200, {"status": "OK"}

    def _join(self, sent: dict[str, Any], channel_id: str) -> Answer:
        channel, refused = self._channel(channel_id)
        if channel is None:
            return refused  # type: ignore[return-value]
        user_id = str(sent.get("user_id", ""))
        if not is_id(user_id):
            return _bad_body_param("user_id")
        if user_id not in self._users:
            return _err(*_NO_USER)
        if channel.delete_at:
            return _err(
                400,
                "api.channel.add_user_to_channel.deleted.app_error",
                "The channel has been archived or deleted.",
            )
        if user_id not in channel.members:  # a member already: the same 201, as Mattermost does
            channel.members.append(user_id)
        return 201, channel.member_json(user_id)

    def _user_by_email(self, sent: Any, email: str) -> Answer:
        if "@" not in email:
            return _bad_url_param("email")
        found = [u for u in self._users.values() if u.email and u.email.lower() == email.lower()]
        return (200, found[0].json()) if found else _err(*_NO_USER)

    def _create_post(self, sent: dict[str, Any]) -> Answer:
        channel = self.channels.get(str(sent.get("channel_id", "")))
        if channel is None or (channel.type in ("P", "D") and self.bot.id not in channel.members):
            return _err(*_PERMISSIONS)
        if channel.delete_at:
            return _err(
                400,
                "api.post.create_post.can_not_post_to_deleted.error",
                "Can not post to deleted channel.",
            )
        root_id, props = str(sent.get("root_id", "")), sent.get("props") or {}
        if root_id and not any(p.id == root_id and not p.root_id for p in self.posts):
            return _err(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
        for action in FakePost("", "", "", "", props=props).actions():
            action["id"] = action.get("id") or new_id()  # Post.GenerateActionIds
        post = FakePost(new_id(), channel.id, self.bot.id, str(sent.get("message", "")))
        post.root_id, post.props = root_id, props
        self.posts.append(post)
        threading.Thread(target=self._fire_hooks, args=(post, self.bot), daemon=True).start()
        return 201, post.json()

    def _create_hook(self, sent: dict[str, Any]) -> Answer:
        team_id, channel_id = str(sent.get("team_id", "")), str(sent.get("channel_id", ""))
        if team_id not in self.teams:
            return _err(*_PERMISSIONS)
        if not self.outgoing_webhooks:  # app/webhook.go CreateOutgoingWebhook
            return _err(
                501,
                "api.outgoing_webhook.disabled.app_error",
                "Outgoing webhooks have been disabled by the system admin.",
            )
        words, urls = list(sent.get("trigger_words") or []), list(sent.get("callback_urls") or [])
        if channel_id:
            channel = self.channels.get(channel_id)
            if channel is None:
                return _err(*_NO_CHANNEL)
            if channel.type != "O":  # app.CreateOutgoingWebhook answers this id for it
                return _err(
                    403,
                    "api.outgoing_webhook.disabled.app_error",
                    "Outgoing webhooks have been disabled by the system admin.",
                )
            if channel.team_id != team_id:
                return _err(
                    403,
                    "api.webhook.create_outgoing.permissions.app_error",
                    "Invalid permissions to create outgoing webhook.",
                )
        elif not words:
            return _err(
                400,
                "api.webhook.create_outgoing.triggers.app_error",
                "Either trigger_words or channel_id must be set.",
            )
        if not urls or not all(u.startswith(("http://", "https://")) for u in urls):
            return _err(
                400, "model.outgoing_hook.is_valid.callback.app_error", "Invalid callback urls."
            )
        for other in self.hooks.values():
            if (
                other.channel_id == channel_id
                and set(other.callback_urls) & set(urls)
                and set(other.trigger_words) & set(words)
            ):
                return _err(
                    500,
                    "api.webhook.create_outgoing.intersect.app_error",
                    "Outgoing webhooks from the same channel cannot have the same trigger "
                    "words/callback URLs.",
                )
        hook = FakeHook(
            new_id(), new_id(), team_id, channel_id, str(sent.get("display_name", "")), urls
        )
        hook.trigger_words, hook.trigger_when = words, int(sent.get("trigger_when") or 0)
        hook.content_type = str(sent.get("content_type") or hook.content_type)
        hook.description, hook.creator_id = str(sent.get("description", "")), self.bot.id
        self.hooks[hook.id] = hook
        return 201, hook.json()

    def _drop_hook(self, sent: Any, hook_id: str) -> Answer:
        if not is_id(hook_id):
            return _bad_url_param("hook_id")
        if self.hooks.pop(hook_id, None) is None:
            return _err(404, "app.webhooks.get_outgoing.app_error", "Unable to get the webhook.")
        return 200, {"status": "OK"}

    # --- what the Mattermost server does towards Muster ----------------------------------------

    def user_posts(
        self, channel_id: str, user: FakeUser, text: str, *, root_id: str = ""
    ) -> tuple[FakePost, list[httpx.Response]]:
        """`user` writes `text` in the channel: the post is recorded and the outgoing webhooks it
        triggers are called (synchronously here; returns their answers)."""
        with self._lock:
            post = FakePost(new_id(), channel_id, user.id, text, root_id=root_id)
            self.posts.append(post)
        return post, self._fire_hooks(post, user)

    def _fire_hooks(self, post: FakePost, user: FakeUser) -> list[httpx.Response]:
        """What app.handleWebhookEvents does: public channels only; a channel's hook without
        trigger words fires on every post, else the first word must match. A webhook's own answer
        (`from_webhook`) fires nothing; a bot's API post does fire (Mattermost does not skip it)."""
        with self._lock:
            channel = self.channels[post.channel_id]
            if channel.type != "O":
                return []
            team = self.teams[channel.team_id]
            hooks = [
                (hook, word)
                for hook in self.hooks.values()
                if hook.team_id == team.id
                and hook.channel_id in ("", channel.id)
                and (word := hook.trigger(post.message)) is not None
            ]
        if post.props.get("from_webhook") == "true":
            return []
        answers = []
        for hook, word in hooks:
            payload = {
                "token": hook.token,
                "team_id": team.id,
                "team_domain": team.name,
                "channel_id": channel.id,
                "channel_name": channel.name,
                "timestamp": post.create_at,
                "user_id": user.id,
                "user_name": user.username,
                "post_id": post.id,
                "text": post.message,
                "trigger_word": word,
                "file_ids": "",
            }
            for url in hook.callback_urls:
                try:
                    answer = self._send_hook(hook, url, payload)
                except httpx.HTTPError as error:  # Mattermost logs it and goes on
                    self.deliveries.append((hook.id, url, payload, error))
                    continue
                self.deliveries.append((hook.id, url, payload, answer))
                answers.append(answer)
                self._post_back(hook, post, answer)
        return answers

    @staticmethod
    def _send_hook(hook: FakeHook, url: str, payload: dict[str, Any]) -> httpx.Response:
        headers = {"Accept": "application/json"}
        with httpx.Client(trust_env=False, timeout=30) as client:
            if hook.content_type == "application/json":
                return client.post(url, json=payload, headers=headers)
            return client.post(url, data={k: str(v) for k, v in payload.items()}, headers=headers)

    def _post_back(self, hook: FakeHook, post: FakePost, answer: httpx.Response) -> None:
        """An answer with `text` or `attachments` becomes a post by the hook's creator."""
        try:
            sent = answer.json()
        except ValueError:
            return
        if not isinstance(sent, dict) or not (sent.get("text") or sent.get("attachments")):
            return
        root = (post.root_id or post.id) if sent.get("response_type") == "comment" else ""
        reply = FakePost(new_id(), post.channel_id, hook.creator_id, str(sent.get("text") or ""))
        reply.root_id = root
        reply.props = {**(sent.get("props") or {}), "webhook_display_name": hook.display_name}
        if sent.get("attachments"):
            reply.props["attachments"] = sent["attachments"]
        reply.props["from_webhook"] = "true"
        with self._lock:
            self.posts.append(reply)

    def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[tuple]:
        """Wait until `count` outgoing webhook calls were made (API posts fire them in a thread,
        as Mattermost does); return (hook id, url, payload, response or error) for each."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.deliveries)

    def click(self, post_id: str, action_id: str, user: FakeUser) -> tuple[int, Any]:
        """`user` clicks the button `action_id` of the post: Mattermost POSTs to its
        `integration.url` and applies the answer's `update` to the post. Returns the answer's
        status and JSON; 404 (no request) for an id that is not [A-Za-z0-9]+, as api4's route."""
        with self._lock:
            post = next((p for p in self.posts if p.id == post_id), None)
            action = (
                next((a for a in post.actions() if a.get("id") == action_id), None)
                if post
                else None
            )
            if post is None or action is None or not ACTION_ID.match(action_id):
                return 404, app_error(404, "api.post.do_action.action_id.app_error", "Not found.")
            channel = self.channels[post.channel_id]
            team = self.teams[channel.team_id]
        integration = action.get("integration") or {}
        if not integration.get("url"):
            return 400, app_error(
                400, "api.post.do_action.action_integration.app_error", "Action integration error."
            )
        payload = {
            "user_id": user.id,
            "user_name": user.username,
            "channel_id": channel.id,
            "channel_name": channel.name,
            "team_id": team.id,
            "team_domain": team.name,
            "post_id": post.id,
            "trigger_id": new_id(),
            "type": "",
            "data_source": "",
            "context": integration.get("context") or {},
        }
        with httpx.Client(trust_env=False, timeout=30) as client:
            answer = client.post(integration["url"], json=payload)
        try:
            sent = answer.json()
        except ValueError:
            sent = None
        update = (sent or {}).get("update") if isinstance(sent, dict) else None
        if answer.status_code == 200 and update:
            with self._lock:
                post.message = str(update.get("message", post.message))
                post.props = update.get("props", post.props) or {}
                post.update_at = now_ms()
        return answer.status_code, sent

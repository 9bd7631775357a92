"""A Slack-Web-API-compatible server on loopback, and the `response_url`s slash commands answer.

Muster's real `slack_sdk.WebClient` talks to it (`SLACK_API_BASE_URL` = `fake.api_url`): no
network, nothing patched. It serves, as Slack's Web API documents them:

- `auth.test`: the bot's `user_id`, `bot_id`, `team_id`;
- `users.info` (`user`): the user object with `profile.email` and `is_email_confirmed`
  (the `users:read.email` scope's fields), or `{"ok": false, "error": "user_not_found"}`;
  `users.lookupByEmail` (`email`): the user, or `users_not_found`;
- `conversations.create` / `invite` / `archive` / `info` / `list` (tests/fakes/slack_workspace.py):
  channel names checked as Slack checks them, members and archiving recorded in `channels`
  (by id); `add_channel(name, is_private=, members=)` sets up one that exists already;
- `chat.postMessage` (`channel`, `text` and/or `blocks`, `thread_ts`) and `chat.postEphemeral`
  (`channel`, `user`, `text`), recorded in `posts` (`posts_in(channel)`); a message gets a unique,
  increasing `ts`. An archived channel is `is_archived`; a channel the fake does not know is
  accepted unless `strict_channels` is set (then `channel_not_found`);
- every method: a bearer token (`Authorization: Bearer xoxb-…`, or the `token` parameter);
  none → `not_authed`, another → `invalid_auth`, always with HTTP 200 as Slack answers;
- Slack's rate limits: HTTP 429, `Retry-After` and `{"ok": false, "error": "ratelimited"}` past a
  method's tier (`DEFAULT_LIMITS`: Tier 2 is 20+ a minute, Tier 3 50+, Tier 4 100+). Each limit
  is a token bucket, `(count, seconds)` or `(count, seconds, burst)`: `count` calls refill per
  `seconds`, at most `burst` (default `count`) back to back. chat.postMessage is "special": about
  one a second per channel, with "generous burst behavior" that Slack does not quantify, so the
  default burst is 1 (conservative: a caller that copes with it copes with Slack); raise it with
  `fake.limits["chat.postMessage"] = (1, 1.0, 5)`. The workspace as a whole takes "several
  hundred messages a minute": `limits["chat.postMessage/workspace"]`, 300 a minute by default.

What a test makes happen:

- `fail_next(method, Failure(...))`: the next call answered with an error (429 by default);
  `Failure(delay=…)` answers it late;
- `hang_next(method, seconds)`: the next call is carried out (channel created, message
  recorded), but answered only after `seconds`: past the client's timeout, the caller cannot know
  whether it happened. `processed=False`: not carried out, the connection closed unanswered;
- Slack down: `fake.stop()` (connections refused), `fake.start()` again on the same `url`.

A slash command's `response_url` is `fake.response_url()`: it takes up to 5 JSON posts, as
Slack's do, and records them in `responses`. What Slack sends the app (button clicks, message
events) is built by `block_action_payload` / `message_event_payload` (slack_payloads.py).

In a test: the `fake_slack` fixture (tests/warroom/slack/conftest.py), or
`with FakeSlack() as fake:`.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple

from tests.fakes.loopback import LoopbackServer
from tests.fakes.slack_payloads import Payloads, interaction_form
from tests.fakes.slack_workspace import (
    API_APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    Conversations,
    SlackChannel,
    SlackUser,
)

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_LIMITS",
    "DEFAULT_TOKEN",
    "TEAM_ID",
    "Call",
    "Failure",
    "FakeSlack",
    "Post",
    "SlackChannel",
    "SlackUser",
    "interaction_form",
]

DEFAULT_TOKEN = "xoxb-fake-slack-bot-token"
WORKSPACE = "/workspace"  # limits[method + WORKSPACE]: the method's limit for the whole workspace
Limit = tuple[int, float] | tuple[int, float, int]  # (count, seconds[, burst])
DEFAULT_LIMITS: dict[str, Limit] = {
    "auth.test": (600, 60.0),
    "users.info": (100, 60.0),  # Tier 4
    "users.lookupByEmail": (50, 60.0),  # Tier 3
    "conversations.create": (20, 60.0),  # Tier 2
    "conversations.invite": (50, 60.0),  # Tier 3
    "conversations.archive": (20, 60.0),  # Tier 2
    "conversations.info": (50, 60.0),  # Tier 3
    "conversations.list": (20, 60.0),  # Tier 2
    "chat.postMessage": (1, 1.0, 1),  # special: per channel
    "chat.postMessage" + WORKSPACE: (300, 60.0),
    "chat.postEphemeral": (100, 60.0),  # Tier 4
}
PER_CHANNEL = frozenset({"chat.postMessage", "chat.postEphemeral"})
RESPONSE_URL_USES = 5


@dataclass(frozen=True)
class Call:
    """A Web API call as received: the method, its parameters, and when (`time.time()`)."""

    method: str
    params: dict[str, Any]
    received_at: float


@dataclass(frozen=True)
class Post:
    """A message posted with chat.postMessage (ephemeral False) or chat.postEphemeral."""

    channel: str
    text: str
    ephemeral: bool
    user: str = ""
    thread_ts: str = ""
    ts: str = ""
    blocks: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Failure:
    """An error answer; `delay`: seconds before it is sent."""

    status: int = 429
    error: str = "ratelimited"
    retry_after: int | None = 30
    delay: float = 0.0


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: Any  # None: close the connection unanswered
    delay: float = 0.0


@dataclass
class FakeSlack(Conversations, Payloads, LoopbackServer):
    token: str = DEFAULT_TOKEN
    limits: dict[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    strict_channels: bool = False

    def __post_init__(self) -> None:
        self.users: dict[str, SlackUser] = {}
        self.channels: dict[str, SlackChannel] = {}
        self.calls: list[Call] = []
        self.posts: list[Post] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._hangs: dict[str, deque[tuple[float, bool]]] = defaultdict(deque)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._last_ts_us = 0
        self._lock = threading.Lock()

    # --- running (start, stop, url, the context manager: LoopbackServer) ----------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    @property
    def api_url(self) -> str:
        """What SLACK_API_BASE_URL is set to."""
        return self.url + "/api/"

    # --- what a test sets up and reads -----------------------------------------------------

    def add_user(self, user_id: str, email: str, **fields: Any) -> SlackUser:
        self.users[user_id] = SlackUser(user_id, email, **fields)
        return self.users[user_id]

    def fail_next(self, method: str, failure: Failure | None = None, *, count: int = 1) -> None:
        """Answer the next `count` calls of `method` with `failure` (429 + Retry-After)."""
        for _ in range(count):
            self._failures[method].append(failure or Failure())

    def hang_next(
        self, method: str, seconds: float = 30.0, *, processed: bool = True, count: int = 1
    ) -> None:
        """Answer the next `count` calls of `method` only after `seconds`, having carried them
        out (`processed=False`: not carried out, and the connection closed unanswered)."""
        for _ in range(count):
            self._hangs[method].append((seconds, processed))

    def clear_failures(self) -> None:
        """Forget the failures and hangs set up with `fail_next` and `hang_next`."""
        self._failures.clear()
        self._hangs.clear()

    def response_url(self) -> str:
        """A new slash command's `response_url`."""
        key = uuid.uuid4().hex
        self.responses[key] = []
        return f"{self.url}/commands/{TEAM_ID}/{key}"

    def answers(self, response_url: str) -> list[dict[str, Any]]:
        """What was posted to `response_url`."""
        return self.responses[response_url.rsplit("/", 1)[-1]]

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def posts_in(self, channel: str) -> list[Post]:
        """The messages (not the ephemeral ones) posted to `channel`, oldest first."""
        return [post for post in self.posts if post.channel == channel and not post.ephemeral]

    # --- serving ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if parsed.path.startswith("/commands/"):
            answer = self._response_url(parsed.path, body)
        elif parsed.path.startswith("/api/"):
            params = self._params(parsed.query, request.headers.get("Content-Type", ""), body)
            with self._lock:
                answer = self._api(
                    parsed.path[len("/api/") :], params, request.headers.get("Authorization", "")
                )
        else:
            answer = Answer(404, {}, {"ok": False, "error": "unknown_method"})
        if answer.delay:
            self._pause(answer.delay)
        if answer.body is None:
            request.close_connection = True
            return
        payload = answer.body
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        content_type = "text/plain" if isinstance(payload, str) else "application/json"
        try:
            request.send_response(answer.status)
            request.send_header("Content-Type", f"{content_type}; charset=utf-8")
            request.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting: what a hung answer is for

    @staticmethod
    def _params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
        if content_type.startswith("application/json") and body:
            loaded = json.loads(body)
            params.update(loaded if isinstance(loaded, dict) else {})
        elif body:
            params.update(urllib.parse.parse_qsl(body.decode()))
        return params

    def _response_url(self, path: str, body: bytes) -> Answer:
        key = path.rsplit("/", 1)[-1]
        with self._lock:
            answers = self.responses.get(key)
            if answers is None or len(answers) >= RESPONSE_URL_USES:
                return Answer(404, {}, "expired_url")
            try:
                answers.append(json.loads(body))
            except ValueError:
                return Answer(400, {}, "invalid_payload")
        return Answer(200, {}, "ok")

    def _api(self, method: str, params: dict[str, Any], authorization: str) -> Answer:
        self.calls.append(Call(method, dict(params), time.time()))
        token = authorization.removeprefix("Bearer ").strip() or params.get("token", "")
        if not token:
            return Answer(200, {}, {"ok": False, "error": "not_authed"})
        if token != self.token:
            return Answer(200, {}, {"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if self._hangs[method]:
            seconds, processed = self._hangs[method].popleft()
            if not processed or handler is None:
                return Answer(0, {}, None, seconds)
            return Answer(200, {}, handler(params), seconds)
        if self._failures[method]:
            return self._failed(self._failures[method].popleft())
        limited = self._rate_limited(method, str(params.get("channel", "")))
        if limited is not None:
            return limited
        if handler is None:
            return Answer(200, {}, {"ok": False, "error": "unknown_method"})
        return Answer(200, {}, handler(params))

    @staticmethod
    def _failed(failure: Failure) -> Answer:
        headers = {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
        return Answer(failure.status, headers, {"ok": False, "error": failure.error}, failure.delay)

    def _rate_limited(self, method: str, channel: str) -> Answer | None:
        """Take a token from each of the call's buckets, or say how long until there is one."""
        scopes = [(method, channel if method in PER_CHANNEL else "")]
        if method + WORKSPACE in self.limits:
            scopes.append((method + WORKSPACE, ""))
        now = time.monotonic()
        filled, wait = [], 0.0
        for name, scope in scopes:
            count, seconds, *rest = self.limits.get(name, (1000, 60.0))
            burst, rate = (rest[0] if rest else count), count / seconds
            tokens, last = self._buckets.get((name, scope), (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            filled.append(((name, scope), tokens))
            if tokens < 1:
                wait = max(wait, (1 - tokens) / rate)
        if wait:
            retry_after = max(1, math.ceil(wait))
            return self._failed(Failure(429, "ratelimited", retry_after))
        for key, tokens in filled:
            self._buckets[key] = (tokens - 1, now)
        return None

    def _next_ts(self) -> str:
        """A message `ts`: seconds and microseconds, unique and increasing."""
        self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    # --- methods (conversations.* and users.lookupByEmail: slack_workspace.py) ---------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://muster-test.slack.com/",
            "team": "Muster Test",
            "user": "muster",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user.json()}

    def _channel_for_post(self, name_or_id: str) -> tuple[str, str | None]:
        """The channel id a post goes to, and Slack's refusal of it (or None)."""
        channel = self.channels.get(name_or_id) or self.channel_named(name_or_id.lstrip("#"))
        if channel is None:
            refused = not name_or_id or self.strict_channels
            return name_or_id, "channel_not_found" if refused else None
        return channel.id, "is_archived" if channel.archived else None

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, refused = self._channel_for_post(str(params.get("channel", "")))
        if refused:
            return {"ok": False, "error": refused}
        text, blocks = str(params.get("text", "")), params.get("blocks") or None
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return {"ok": False, "error": "invalid_blocks_format"}
        if blocks is not None and not isinstance(blocks, list):
            return {"ok": False, "error": "invalid_blocks_format"}
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        ts, thread = self._next_ts(), str(params.get("thread_ts", ""))
        self.posts.append(Post(channel, text, False, thread_ts=thread, ts=ts, blocks=blocks))
        message = {"type": "message", "text": text, "user": BOT_USER_ID, "bot_id": BOT_ID}
        message.update({"app_id": API_APP_ID, "team": TEAM_ID, "ts": ts})
        if blocks:
            message["blocks"] = blocks
        if thread:
            message["thread_ts"] = thread
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, refused = self._channel_for_post(str(params.get("channel", "")))
        user, text = str(params.get("user", "")), str(params.get("text", ""))
        if refused:
            return {"ok": False, "error": refused}
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        if not text and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts, thread = self._next_ts(), str(params.get("thread_ts", ""))
        self.posts.append(Post(channel, text, ephemeral=True, user=user, thread_ts=thread, ts=ts))
        return {"ok": True, "message_ts": ts}

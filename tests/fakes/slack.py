"""A Slack-Web-API-compatible server on loopback, and the `response_url`s slash commands answer.

Muster's real `slack_sdk.WebClient` talks to it (`SLACK_API_BASE_URL` = `fake.api_url`): no
network, nothing patched. It serves, as Slack's Web API documents them:

- `auth.test`: the bot's `user_id`, `bot_id`, `team_id`;
- `users.info` (`user`): the user object with `profile.email` and `is_email_confirmed`
  (the `users:read.email` scope's fields), or `{"ok": false, "error": "user_not_found"}`;
- `chat.postMessage` (`channel`, `text` or `blocks`, `thread_ts`) and `chat.postEphemeral`
  (`channel`, `user`, `text`), recorded in `posts`;
- every method: a bearer token (`Authorization: Bearer xoxb-…`, or the `token` parameter);
  none → `not_authed`, another → `invalid_auth`, always with HTTP 200 as Slack answers;
- Slack's rate limits: HTTP 429, `Retry-After` and `{"ok": false, "error": "ratelimited"}` past a
  method's tier (users.info: Tier 4, 100+ a minute; chat.postMessage: about one a second per
  channel); tests lower them with `limits`, or force an answer with `fail_next`.

A slash command's `response_url` is `fake.response_url()`: it takes up to 5 JSON posts, as
Slack's do, and records them in `responses`.

In a test: the `fake_slack` fixture (tests/warroom/slack/conftest.py), or
`with FakeSlack() as fake:`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer

DEFAULT_TOKEN = "xoxb-fake-slack-bot-token"
TEAM_ID = "T0MUSTER"
BOT_USER_ID = "U0MUSTERBOT"
BOT_ID = "B0MUSTERBOT"
# Slack's limits: users.info is Tier 4 (100+ a minute); chat.postMessage is "special": about
# one message a second per channel, short bursts allowed. (count, seconds); per channel if
# the method's name is in PER_CHANNEL.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "auth.test": (600, 60.0),
    "users.info": (100, 60.0),
    "chat.postMessage": (1, 1.0),
    "chat.postEphemeral": (100, 60.0),
}
PER_CHANNEL = frozenset({"chat.postMessage", "chat.postEphemeral"})
RESPONSE_URL_USES = 5


@dataclass
class SlackUser:
    id: str
    email: str
    email_confirmed: bool = True
    name: str = ""
    deleted: bool = False
    is_bot: bool = False

    def json(self) -> dict[str, Any]:
        name = self.name or self.email.split("@")[0]
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": self.deleted,
            "real_name": name.title(),
            "tz": "Europe/Amsterdam",
            "tz_offset": 3600,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": self.email_confirmed,
            "profile": {
                "real_name": name.title(),
                "display_name": name,
                "email": self.email,
                "team": TEAM_ID,
            },
        }


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


@dataclass(frozen=True)
class Failure:
    status: int = 429
    error: str = "ratelimited"
    retry_after: int | None = 30


@dataclass
class FakeSlack(LoopbackServer):
    token: str = DEFAULT_TOKEN
    limits: dict[str, tuple[int, float]] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    def __post_init__(self) -> None:
        self.users: dict[str, SlackUser] = {}
        self.calls: list[Call] = []
        self.posts: list[Post] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._seen: dict[tuple[str, str], deque[float]] = defaultdict(deque)
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

    # --- serving ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if parsed.path.startswith("/commands/"):
            status, headers, answer = self._response_url(parsed.path, body)
        elif parsed.path.startswith("/api/"):
            params = self._params(parsed.query, request.headers.get("Content-Type", ""), body)
            with self._lock:
                status, headers, answer = self._api(
                    parsed.path[len("/api/") :], params, request.headers.get("Authorization", "")
                )
        else:
            status, headers, answer = 404, {}, {"ok": False, "error": "unknown_method"}
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        request.send_response(status)
        content_type = "text/plain" if isinstance(answer, str) else "application/json"
        request.send_header("Content-Type", f"{content_type}; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    @staticmethod
    def _params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
        if content_type.startswith("application/json") and body:
            loaded = json.loads(body)
            params.update(loaded if isinstance(loaded, dict) else {})
        elif body:
            params.update(urllib.parse.parse_qsl(body.decode()))
        return params

    def _response_url(self, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        key = path.rsplit("/", 1)[-1]
        with self._lock:
            answers = self.responses.get(key)
            if answers is None or len(answers) >= RESPONSE_URL_USES:
                return 404, {}, "expired_url"
            try:
                answers.append(json.loads(body))
            except ValueError:
                return 400, {}, "invalid_payload"
        return 200, {}, "ok"

    def _api(
        self, method: str, params: dict[str, Any], authorization: str
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.calls.append(Call(method, dict(params), time.time()))
        token = authorization.removeprefix("Bearer ").strip() or params.get("token", "")
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if self._failures[method]:
            failure = self._failures[method].popleft()
            return self._failed(failure)
        limited = self._rate_limited(method, str(params.get("channel", "")))
        if limited is not None:
            return limited
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(params)

    @staticmethod
    def _failed(failure: Failure) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
        return failure.status, headers, {"ok": False, "error": failure.error}

    def _rate_limited(
        self, method: str, channel: str
    ) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        count, seconds = self.limits.get(method, (1000, 60.0))
        key = (method, channel if method in PER_CHANNEL else "")
        now = time.monotonic()
        seen = self._seen[key]
        while seen and seen[0] <= now - seconds:
            seen.popleft()
        if len(seen) >= count:
            retry_after = max(1, int(seen[0] + seconds - now + 0.999))
            return self._failed(Failure(429, "ratelimited", retry_after))
        seen.append(now)
        return None

    # --- methods ---------------------------------------------------------------------------

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

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, text = str(params.get("channel", "")), str(params.get("text", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not text and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = f"{time.time():.6f}"
        thread = str(params.get("thread_ts", ""))
        self.posts.append(Post(channel, text, ephemeral=False, thread_ts=thread, ts=ts))
        message = {"type": "message", "text": text, "user": BOT_USER_ID, "bot_id": BOT_ID}
        return {"ok": True, "channel": channel, "ts": ts, "message": {**message, "ts": ts}}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, user = str(params.get("channel", "")), str(params.get("user", ""))
        text = str(params.get("text", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        if not text and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = f"{time.time():.6f}"
        thread = str(params.get("thread_ts", ""))
        self.posts.append(Post(channel, text, ephemeral=True, user=user, thread_ts=thread, ts=ts))
        return {"ok": True, "message_ts": ts}

"""A Mattermost-API-v4-compatible server on loopback, and the slash command Mattermost would post.

Muster's real client (`warroom.mattermost.client`, httpx) talks to it (`MATTERMOST_URL`): no
network, nothing patched. It serves, as Mattermost's API reference (api/v4/source/users.yaml,
introduction.yaml) documents them:

- `GET /api/v4/users/{user_id}` and `GET /api/v4/users/me`, with `Authorization: Bearer <token>`:
  the User object; a user whose email the server does not show (Privacy > Show Email Address off)
  has `"email": ""`. Errors are Mattermost's AppError JSON (`id`, `message`, `detailed_error`,
  `request_id`, `status_code`): 401 `api.context.session_expired.app_error` for a missing or
  wrong token, 400 `api.context.invalid_url_param.app_error` for what is not an id, 404
  `app.user.missing_account.const` for an unknown user;
- teams, channels, posts and outgoing webhooks (tests/fakes/mattermost_api.py), as
  api/v4/source/{teams,channels,posts,webhooks}.yaml document them: `GET /teams/name/{name}`
  (a team set up with `add_team`), `POST /channels` (201; 400
  `store.sql_channel.save_channel.exists.app_error` for a name the team has, and the model's
  name / display name checks), `DELETE /channels/{id}` (archives: `delete_at`),
  `POST /channels/{id}/members` (201 ChannelMember), `GET /users/email/{email}`,
  `POST /posts` (201; 403 for a channel the bot cannot post in, 400
  `api.post.create_post.can_not_post_to_deleted.error` for an archived one; buttons get ids and
  come back without their `integration`, which stays on the server), `POST /hooks/outgoing`
  (201, with `token`; 403 for a private channel, 500 for one intersecting another) and
  `DELETE /hooks/outgoing/{id}`;
- rate limiting as Mattermost's (throttled) limiter does it: every answer carries
  `X-Ratelimit-Limit`, `X-Ratelimit-Remaining` and `X-Ratelimit-Reset`; over the limit, `429`
  with `Retry-After` and the plain-text body `limit exceeded`. `per_second` sets the limit;
  `rate_limit_next(count, retry_after)` forces 429s; `fail_next(count, status)` other errors;
  `hang_next(seconds)` carries the next request out but answers only after `seconds` (past the
  client's timeout: outcome unknown; `processed=False`: not carried out, closed unanswered);
  Mattermost down is `fake.stop()` (connections refused); `fake.start()` serves again, same url;
- a `response_url`: `POST /hooks/commands/{id}` records the JSON it gets (`responses`).

What the Mattermost server sends Muster: `send_command` posts a slash command as Mattermost does
(form-encoded, the command's token both as the `token` field and as `Authorization: Token …`);
`user_posts(channel_id, user, text)` records a user's post and calls the outgoing webhooks it
triggers, returning their answers (public channels only; a webhook's own answer posted back fires
nothing, but the bot's posts through `POST /posts` do fire, in a thread, as the server's do:
`wait_for_deliveries`); `click(post_id, action_id, user)` POSTs a button's `integration.url` and
applies the answer's `update` to the post.

In a test: `with FakeMattermost() as fake:`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.fakes.loopback import LoopbackServer
from tests.fakes.mattermost_api import Resources
from tests.fakes.mattermost_model import FakeUser, app_error, is_id, new_id

DEFAULT_BOT_TOKEN = "fakemattermostbottoken000000"
__all__ = ["DEFAULT_BOT_TOKEN", "FakeMattermost", "FakeUser", "app_error", "new_id"]


@dataclass
class Recorded:
    """One request to the fake's API, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    received_at: float
    status: int = 0


@dataclass
class Response:
    """What a `response_url` received."""

    path: str
    body: Any
    received_at: float = field(default_factory=time.time)


class FakeMattermost(Resources, LoopbackServer):
    """Mattermost's API v4 on 127.0.0.1, in a thread; see the module docstring."""

    thread_name = "fake-mattermost"

    def __init__(self, *, bot_token: str = DEFAULT_BOT_TOKEN, per_second: int = 10) -> None:
        self.bot_token = bot_token
        self.per_second = per_second
        self.bot = FakeUser(new_id(), "muster", "", is_bot=True)
        self._users: dict[str, FakeUser] = {self.bot.id: self.bot}
        self._lock = threading.Lock()
        self._window = (0, 0)  # (second, requests in it)
        self._next: deque[tuple[int, float]] = deque()  # (status, retry-after) to answer next
        self._hangs: deque[tuple[float, bool]] = deque()  # (seconds, processed)
        self._init_resources()
        self.requests: list[Recorded] = []
        self.responses: list[Response] = []
        self._bind()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # --- what the server knows and does next ---------------------------------------------------

    def add_user(self, username: str, email: str, **fields: Any) -> FakeUser:
        user = FakeUser(new_id(), username, email, **fields)
        with self._lock:
            self._users[user.id] = user
        return user

    def rate_limit_next(self, count: int = 1, *, retry_after: float = 1) -> None:
        """Answer the next `count` API requests 429, with `Retry-After: retry_after`."""
        with self._lock:
            self._next.extend((429, retry_after) for _ in range(count))

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        with self._lock:
            self._next.extend((status, 0) for _ in range(count))

    def hang_next(self, seconds: float = 30.0, *, processed: bool = True, count: int = 1) -> None:
        """Answer the next `count` API requests only after `seconds`, having carried them out
        (`processed=False`: not carried out, the connection closed unanswered)."""
        with self._lock:
            self._hangs.extend((seconds, processed) for _ in range(count))

    def response_url(self) -> str:
        return f"{self.url}/hooks/commands/{new_id()}"

    def api_requests(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # --- what Mattermost sends Muster ------------------------------------------------------------

    def send_command(
        self,
        url: str,
        user: FakeUser,
        text: str,
        *,
        token: str,
        in_header: bool = True,
        in_field: bool = True,
        trigger: str = "muster",
    ) -> httpx.Response:
        """Post `/<trigger> <text>` typed by `user` to Muster's request URL, as Mattermost does."""
        form = {
            "channel_id": new_id(),
            "channel_name": "town-square",
            "command": f"/{trigger}",
            "response_url": self.response_url(),
            "team_domain": "ops",
            "team_id": new_id(),
            "text": text,
            "trigger_id": new_id(),
            "user_id": user.id,
            "user_name": user.username,
        }
        if in_field:
            form["token"] = token
        headers = {"Accept": "application/json", "User-Agent": "Mattermost-Bot/1.1"}
        if in_header:
            headers["Authorization"] = f"Token {token}"
        with httpx.Client(trust_env=False, timeout=30) as client:
            return client.post(url, data=form, headers=headers)

    # --- the API -------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any, dict]:
        if path.startswith("/hooks/commands/") and method == "POST":
            try:
                sent = json.loads(body or b"null")
            except ValueError:
                return 400, {"error": "not JSON"}, {}
            with self._lock:
                self.responses.append(Response(path, sent))
            return 200, None, {}
        record = Recorded(method, path, dict(headers.items()), time.time())
        with self._lock:
            self.requests.append(record)
            hang = self._hangs.popleft() if self._hangs else None
        if hang is not None and not hang[1]:
            self._pause(hang[0])
            return 0, None, {}
        status, payload, extra = self._api(method, path, headers.get("Authorization", ""), body)
        record.status = status
        if hang is not None:
            self._pause(hang[0])
        return status, payload, {**self._limit_headers(status), **extra}

    def _api(
        self, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, Any, dict]:
        with self._lock:
            forced = self._next.popleft() if self._next else None
            second = int(time.time())
            start, count = self._window
            self._window = (second, count + 1) if start == second else (second, 1)
            over = self._window[1] > self.per_second
        limited = forced is not None and forced[0] == 429
        if limited or over:
            wait = forced[1] if forced is not None and limited else 1
            return 429, "limit exceeded", {"Retry-After": str(int(wait))}
        if forced is not None:
            return forced[0], app_error(forced[0], "app.fake.failure", "Forced failure."), {}
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, self.bot_token):
            return (
                401,
                app_error(
                    401,
                    "api.context.session_expired.app_error",
                    "Invalid or expired session, please login again.",
                ),
                {},
            )
        routed = self._route(method, path.split("?", 1)[0], body)
        if routed is not None:
            return routed[0], routed[1], {}
        if method != "GET" or not path.startswith("/api/v4/users/"):
            return (
                404,
                app_error(404, "api.context.404.app_error", "Sorry, we could not find the page."),
                {},
            )
        user_id = path.removeprefix("/api/v4/users/")
        if user_id == "me":
            return 200, self.bot.json(), {}
        if not is_id(user_id):
            return (
                400,
                app_error(
                    400,
                    "api.context.invalid_url_param.app_error",
                    "Invalid or missing user_id parameter in request URL.",
                ),
                {},
            )
        with self._lock:
            user = self._users.get(user_id)
        if user is None:
            return (
                404,
                app_error(404, "app.user.missing_account.const", "Unable to find the user."),
                {},
            )
        return 200, user.json(), {}

    def _limit_headers(self, status: int) -> dict[str, str]:
        with self._lock:
            used = self._window[1]
        remaining = 0 if status == 429 else max(0, self.per_second - used)
        return {
            "X-Ratelimit-Limit": str(self.per_second),
            "X-Ratelimit-Remaining": str(remaining),
            "X-Ratelimit-Reset": "1",
        }


def _handler_for(fake: FakeMattermost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, headers = fake._answer(self.command, self.path, self.headers, body)
            if status == 0:  # hung, not carried out: close unanswered
                self.close_connection = True
                return
            if isinstance(payload, str):
                data, kind = payload.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(payload).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-Id", uuid.uuid4().hex[:26])
            self.send_header("X-Version-Id", "10.5.0.fake")
            for name, value in headers.items():
                self.send_header(name, value)
            try:
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting: a hung answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

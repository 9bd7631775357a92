"""Slack's Web API through the official `slack_sdk.WebClient` (SLACK_API_BASE_URL), and the
`response_url` a slash command answers through.

Every failure (Slack down, 429 with Retry-After, an error answer) becomes `SlackUnavailable`
or `SlackRefused`, so callers answer the person clearly instead of failing.
"""

from __future__ import annotations

import functools
import logging
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

import httpx
from django.conf import settings
from django.core.cache import cache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5
# Who Muster's own bot is changes only with the token: asked once an hour.
BOT_CACHE_SECONDS = 60 * 60


class SlackUnavailable(Exception):
    """Slack could not be asked now (down, timed out, rate-limited): try again later.
    `maybe_sent`: the request reached Slack and may have been acted on (no answer came)."""

    def __init__(
        self, message: str, *, retry_after: int | None = None, maybe_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class SlackRefused(Exception):
    """Slack answered `{"ok": false, "error": ...}` for a reason that will not pass by itself."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class Profile:
    """What `users.info` says of a Slack user that the person mapping needs."""

    user_id: str
    email: str
    email_confirmed: bool
    deleted: bool = False
    is_bot: bool = False
    name: str = ""  # the display name, else the real name, else the handle


@dataclass(frozen=True)
class Bot:
    """Muster's own bot, as `auth.test` names it: its user id and bot id."""

    user_id: str
    bot_id: str


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: the SDK's urllib would build one (loading every CA
    certificate) for each call."""
    return ssl.create_default_context()


def web_client(*, retries: bool = True) -> WebClient:
    """Return a WebClient with Muster's bot token, on SLACK_API_BASE_URL. Without `retries`,
    the SDK does not send again on a dropped connection (which could post twice)."""
    return WebClient(
        token=settings.SLACK_BOT_TOKEN,
        base_url=settings.SLACK_API_BASE_URL,
        timeout=TIMEOUT_SECONDS,
        ssl=_tls(),
        **({} if retries else {"retry_handlers": []}),
    )


def call(method: str, *, retries: bool = True, **kwargs: Any) -> dict[str, Any]:
    """Call Web API `method` (e.g. "users.info") through the SDK's own method for it."""
    try:
        response = getattr(web_client(retries=retries), method.replace(".", "_"))(**kwargs)
    except SlackApiError as exc:
        status = exc.response.status_code
        error = str(exc.response.get("error", "") or f"HTTP {status}")
        if status == 429 or status >= 500:
            retry = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                "retry-after"
            )
            log.warning("Slack %s: %s (Retry-After %s)", method, error, retry)
            raise SlackUnavailable(error, retry_after=_seconds(retry)) from exc
        raise SlackRefused(error) from exc
    except (SlackClientError, OSError, ValueError) as exc:  # down, timed out, not JSON
        log.warning("Slack %s: %s", method, exc)
        # urllib wraps what fails before the request is sent (refused, unresolvable) in
        # URLError; a timeout or a dropped connection after it is raised as it is.
        maybe_sent = isinstance(exc, OSError) and not isinstance(exc, URLError)
        raise SlackUnavailable(str(exc) or type(exc).__name__, maybe_sent=maybe_sent) from exc
    return dict(response.data) if isinstance(response.data, dict) else {}


def _seconds(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def user_profile(user_id: str) -> Profile:
    """Return what Slack's `users.info` says of `user_id` (needs `users:read.email`)."""
    user = call("users.info", user=user_id).get("user") or {}
    profile = user.get("profile") or {}
    return Profile(
        user_id=str(user.get("id", user_id)),
        email=str(profile.get("email") or ""),
        email_confirmed=bool(user.get("is_email_confirmed", False)),
        deleted=bool(user.get("deleted", False)),
        is_bot=bool(user.get("is_bot", False)),
        name=str(profile.get("display_name") or profile.get("real_name") or user.get("name") or ""),
    )


def our_bot() -> Bot:
    """Return Muster's own bot (`auth.test`), cached for an hour."""
    key = f"slack:auth.test:{settings.SLACK_API_BASE_URL}"
    cached = cache.get(key)
    if isinstance(cached, tuple) and len(cached) == 2:
        return Bot(*cached)
    data = call("auth.test")
    bot = Bot(str(data.get("user_id", "")), str(data.get("bot_id", "")))
    cache.set(key, (bot.user_id, bot.bot_id), BOT_CACHE_SECONDS)
    return bot


def post_message(channel: str, text: str, *, thread_ts: str | None = None) -> None:
    """Post `text` (mrkdwn) to `channel`, in the thread `thread_ts` if given."""
    payload: dict[str, Any] = {"channel": channel, "text": text}
    if thread_ts:
        payload["thread_ts"] = thread_ts
    call("chat.postMessage", **payload)


def post_ephemeral(channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
    """Show `text` to `user` only, in `channel`."""
    payload: dict[str, Any] = {"channel": channel, "user": user, "text": text}
    if thread_ts:
        payload["thread_ts"] = thread_ts
    call("chat.postEphemeral", **payload)


def respond(
    response_url: str, text: str, *, in_channel: bool, replace_original: bool | None = None
) -> None:
    """Answer a slash command or a button click through its `response_url` (valid 30 minutes,
    5 times); a click's answer says `replace_original: false`, so the bot's post stays."""
    payload: dict[str, Any] = {
        "response_type": "in_channel" if in_channel else "ephemeral",
        "text": text,
    }
    if replace_original is not None:
        payload["replace_original"] = replace_original
    try:
        answered = httpx.post(response_url, json=payload, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise SlackUnavailable(str(exc) or type(exc).__name__) from exc
    if answered.status_code >= 400:
        log.warning("Slack response_url answered %s", answered.status_code)
        raise SlackUnavailable(f"response_url answered {answered.status_code}")

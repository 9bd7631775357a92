"""Mattermost's REST API v4, as the bot account reads it (`MATTERMOST_URL`,
`MATTERMOST_BOT_TOKEN`): only what the slash command needs, a user's profile.

Every failure that is Mattermost's, not the caller's (down, slow, 5xx, 429, an answer that is
not a user), is one `MattermostUnavailable`; a user Mattermost does not know is `UnknownUser`.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx
from django.conf import settings

# A slash command waits for these: short, so a slow Mattermost gets a clear answer quickly.
TIMEOUT = httpx.Timeout(3.0, connect=2.0)
# Mattermost's ids are 26 lowercase letters and digits; anything else is not sent to it.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


class MattermostError(Exception):
    """Mattermost could not say who a user is."""


class MattermostUnavailable(MattermostError):
    """Mattermost is down, slow, rate-limiting (`retry_after`, in seconds, when it said), or
    answered something that is not what its API documents. `maybe_sent`: the request reached
    Mattermost and may have been acted on (no answer came)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, maybe_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class MattermostRefused(MattermostError):
    """Mattermost refused a request (4xx): its `status` and error `id` say why."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(f"{error_id or status}: {message}"[:300])
        self.status = status
        self.error_id = error_id


class UnknownUser(MattermostError):
    """Mattermost has no such user (404 `app.user.missing_account.const`), or the id is not
    one."""


def is_user_id(value: str) -> bool:
    """Whether `value` is shaped like a Mattermost id (26 lowercase letters and digits)."""
    return len(value) == 26 and set(value) <= _ID_CHARS


def _client() -> httpx.Client:
    return _shared_client(settings.MATTERMOST_URL, settings.MATTERMOST_BOT_TOKEN)


@functools.lru_cache(maxsize=4)
def _shared_client(url: str, token: str) -> httpx.Client:
    """One client per process (and settings), kept: its connections are reused, and making one
    builds a TLS context, which cost more CPU than the call (`bench/profile_incident.py --chat
    on`, 2026-12-07). httpx's clients are safe to share between threads."""
    return httpx.Client(
        base_url=f"{url}/api/v4",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": "Muster",
        },
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,  # Mattermost is reached directly, as configured
    )


def get_user(user_id: str) -> dict[str, Any]:
    """Return the user object of `GET /api/v4/users/{user_id}`.

    Raises UnknownUser, or MattermostUnavailable for everything that is Mattermost's fault.
    """
    if not is_user_id(user_id):
        raise UnknownUser(f"{user_id[:40]!r} is not a Mattermost user id")
    try:
        response = _client().get(f"/users/{user_id}")
    except httpx.HTTPError as exc:
        raise MattermostUnavailable(f"Mattermost did not answer: {type(exc).__name__}") from exc
    if response.status_code == 404:
        raise UnknownUser(f"Mattermost has no user {user_id}")
    if response.status_code == 429:
        raise MattermostUnavailable(
            "Mattermost is rate-limiting Muster", retry_after=retry_after(response)
        )
    if response.status_code != 200:
        raise MattermostUnavailable(f"Mattermost answered {response.status_code}")
    try:
        user = response.json()
    except ValueError as exc:
        raise MattermostUnavailable("Mattermost's answer was not JSON") from exc
    if not isinstance(user, dict) or user.get("id") != user_id:
        raise MattermostUnavailable("Mattermost's answer was not that user")
    return user


def api(method: str, path: str, *, json: Any = None) -> Any:
    """Call API v4 (`path` below /api/v4) as the bot; return the answer's JSON.

    Raises MattermostRefused for a 4xx, MattermostUnavailable for the rest that failed.
    """
    try:
        response = _client().request(method, path, json=json)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise MattermostUnavailable(f"Mattermost did not answer: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:  # sent, then no answer: it may have been acted on
        raise MattermostUnavailable(
            f"Mattermost did not answer: {type(exc).__name__}", maybe_sent=True
        ) from exc
    if response.status_code == 429:
        raise MattermostUnavailable(
            "Mattermost is rate-limiting Muster", retry_after=retry_after(response)
        )
    if response.status_code >= 500:
        raise MattermostUnavailable(f"Mattermost answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        error = body if isinstance(body, dict) else {}
        raise MattermostRefused(
            response.status_code, str(error.get("id", "")), str(error.get("message", ""))
        )
    return body


def retry_after(response: httpx.Response) -> float | None:
    """Return how long to wait, in seconds, by `Retry-After` or else `X-Ratelimit-Reset`
    (seconds until the window resets, as Mattermost sends it), if either is a number."""
    for header in ("Retry-After", "X-Ratelimit-Reset"):
        value = response.headers.get(header, "").strip()
        try:
            seconds = float(value)
        except ValueError:
            continue
        if 0 <= seconds < 86_400:
            return seconds
    return None

"""What the websocket consumers share (the war room's, and the web UI's incidents feed): close
codes, who is connecting, and running database code off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from accounts.models import User
from accounts.services import user_for_token

T = TypeVar("T")

# Close codes, in the 4000s that the websocket protocol leaves to applications.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NO_SUCH_ROOM = 4404


def in_thread(func: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run `func` off the event loop in a thread pool (the one thread-sensitive thread would
    queue every room of the process behind each other's queries), and give its database
    connection back after it: channels' database_sync_to_async closes connections outside
    the context asgiref runs the function in, so there it would not see this one."""

    def run(*args: Any, **kwargs: Any) -> T:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


def token_in(scope: dict[str, Any]) -> str | None:
    """Return the API token a websocket sent (a malformed one as ""), or None when none was:
    a Bearer header, else `?token=` (browsers cannot set headers on a websocket)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if parts and parts[0].lower() == "bearer":
                return parts[1] if len(parts) == 2 else ""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "token" in query:
        return query["token"][0]
    return None


async def authenticate(scope: dict[str, Any]) -> User | None:
    """Return the person behind a websocket: its token if one was sent, else its session."""
    token = token_in(scope)
    if token is not None:
        return await in_thread(user_for_token)(token) if token else None
    user = scope.get("user")
    return user if user is not None and user.is_authenticated else None

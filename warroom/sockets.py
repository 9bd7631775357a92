"""What the websocket consumers share (the war room's, and the web UI's incidents feed): close
codes, who is connecting, running database code off the event loop, and keeping a socket's
rights checked (`CheckedSocket`, over accounts.sockets)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import close_old_connections

from accounts import sockets
from accounts.models import Role, User
from accounts.services import token_for

T = TypeVar("T")
log = logging.getLogger(__name__)

# Close codes, in the 4000s that the websocket protocol leaves to applications.
UNAUTHENTICATED = sockets.UNAUTHENTICATED
FORBIDDEN = sockets.FORBIDDEN
NO_SUCH_ROOM = 4404

# A socket that only receives re-checks its rights before relaying an event when the last check
# is older than this (every frame the client sends is checked anyway). At most 60 s.
RECHECK_EVERY = 30.0


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


async def authenticate(scope: dict[str, Any]) -> tuple[User, sockets.Credential] | None:
    """Return the person behind a websocket and what they signed in with: its token if one was
    sent, else its session; None if neither signs anyone in."""
    secret = token_in(scope)
    if secret is not None:
        token = await in_thread(token_for)(secret) if secret else None
        if token is None:
            return None
        return token.user, sockets.Credential(user_id=token.user_id, token_id=token.pk)
    user = scope.get("user")
    session = scope.get("session")
    if user is None or not user.is_authenticated or session is None or not session.session_key:
        return None
    return user, sockets.Credential(user_id=user.pk, session_key=session.session_key)


class CheckedSocket(AsyncJsonWebsocketConsumer):
    """A consumer whose client keeps only the rights it still has (accounts.sockets): it joins
    its token's or session's group and its person's, which close it at once; and it re-checks
    its credential on every frame from the client (`refused`) and, before relaying, when the
    last check is older than RECHECK_EVERY (`refused_if_stale`)."""

    credential: sockets.Credential | None = None
    checked_at = float("-inf")  # time.monotonic() of the last check that passed
    closing = False  # refused: nothing more is received or relayed
    forbidden = "You may no longer use this."  # the error sent before closing with 4403

    async def sign_in(self) -> User | None:
        """Authenticate the client; on success join its groups and return the person."""
        signed_in = await authenticate(self.scope)
        if signed_in is None:
            return None
        user, self.credential = signed_in
        self.checked_at = time.monotonic()
        for group in sockets.groups(self.credential):
            await self.channel_layer.group_add(group, self.channel_name)
        return user

    async def sign_out(self) -> None:
        """Leave the credential's groups (from disconnect)."""
        if self.credential is not None:
            for group in sockets.groups(self.credential):
                await self.channel_layer.group_discard(group, self.channel_name)
            self.credential = None

    async def refused(self, nonce: str | None = None) -> bool:
        """Check the credential now, before a frame from the client is handled. If it no
        longer holds, tell the client, close the socket and return True. A check that cannot
        be made (the database is away) refuses the frame but keeps the socket."""
        if self.closing or self.credential is None:
            return True
        try:
            code = await self._lost_rights()
        except Exception:
            log.warning("websocket: could not check %s", self.credential, exc_info=True)
            await self._error("Your sign-in could not be checked; send it again.", nonce)
            return True
        if code is None:
            return False
        await self.refuse(code, nonce)
        return True

    async def refused_if_stale(self) -> bool:
        """Before relaying an event: `refused`, when the last check is older than
        RECHECK_EVERY; else False at once. A check that cannot be made lets the event through
        (the next one tries again): a database blip does not cut every listener off."""
        if self.closing:
            return True
        if time.monotonic() - self.checked_at < RECHECK_EVERY:
            return False
        try:
            code = await self._lost_rights()
        except Exception:
            log.warning("websocket: could not check %s", self.credential, exc_info=True)
            return False
        if code is None:
            return False
        await self.refuse(code)
        return True

    async def _lost_rights(self) -> int | None:
        if self.credential is None:
            return UNAUTHENTICATED
        code = await in_thread(sockets.lost_rights)(self.credential, Role.OBSERVER)
        if code is None:
            self.checked_at = time.monotonic()
        return code

    async def refuse(self, code: int, nonce: str | None = None) -> None:
        """Say why, and close with `code` (UNAUTHENTICATED or FORBIDDEN)."""
        if self.closing:
            return
        self.closing = True
        if code == UNAUTHENTICATED:
            error = "Your sign-in has ended (a revoked token, or signed out)."
        else:
            error = self.forbidden
        await self._error(error, nonce)
        await self.close(code=code)

    async def _error(self, error: str, nonce: str | None = None) -> None:
        event = {"type": "error", "error": error}
        if nonce is not None:
            event["nonce"] = nonce
        await self.send_json(event)

    async def socket_disconnect(self, message: dict[str, Any]) -> None:
        """accounts.sockets.close_sockets: the token was revoked, the session signed out or
        the person deactivated."""
        await self.refuse(message["code"])

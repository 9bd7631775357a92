"""The incidents feed over a websocket: `/ws/incidents/`.

A thin consumer: it authenticates as the war room's does (session, or an API token as a
Bearer header or `?token=`), refuses with 4401/4403, joins the feed's group and relays each
`incident` event that web.receivers broadcasts: {"type": "incident", "number", "status",
"severity", "title", "service"}. The client only listens (and may "ping"); the list page
re-fetches what it shows when an event comes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import close_old_connections

from accounts.models import Role, User
from accounts.services import user_for_token
from warroom.consumers import FORBIDDEN, UNAUTHENTICATED

FEED_GROUP = "incidents.feed"
EVENT_TYPE = "incident.event"


def token_in(scope: dict[str, Any]) -> str | None:
    """Return the API token a websocket sent (a malformed one as ""), or None when none was;
    as the war room's socket reads it: a Bearer header, else `?token=`."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if parts and parts[0].lower() == "bearer":
                return parts[1] if len(parts) == 2 else ""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query["token"][0] if "token" in query else None


def _user_for_token(token: str) -> User | None:
    if not token:
        return None
    close_old_connections()
    try:
        return user_for_token(token)
    finally:
        close_old_connections()


class IncidentFeedConsumer(AsyncJsonWebsocketConsumer):
    """One client following every incident change."""

    joined = False

    async def connect(self) -> None:
        user = await self._authenticate()
        # Accept first: a close code only reaches a client on an open websocket.
        await self.accept()
        if user is None:
            await self.close(code=UNAUTHENTICATED)
            return
        if not user.has_role(Role.OBSERVER):
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(FEED_GROUP, self.channel_name)
        self.joined = True
        await self.send_json({"type": "ready"})

    async def disconnect(self, code: int) -> None:
        if self.joined:
            self.joined = False
            await self.channel_layer.group_discard(FEED_GROUP, self.channel_name)

    async def _authenticate(self) -> User | None:
        """Return the person behind a token, if one was sent, else behind the session."""
        token = token_in(self.scope)
        if token is not None:
            return await sync_to_async(_user_for_token, thread_sensitive=False)(token)
        user = self.scope.get("user")
        return user if user is not None and user.is_authenticated else None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json({"type": "error", "error": 'This feed only listens; send "ping".'})

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == EVENT_TYPE:
            # No database here: skip channels' check of old connections for every event.
            await self.incident_event(message)
            return
        await super().dispatch(message)

    async def incident_event(self, message: dict[str, Any]) -> None:
        """Relay an incident change (web.receivers.broadcast_change) to the client."""
        await self.send_json(message["event"])

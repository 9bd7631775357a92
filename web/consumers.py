"""The incidents feed over a websocket: `/ws/incidents/`.

A thin consumer: it authenticates as the war room's does (session, or an API token as a
Bearer header or `?token=`), refuses with 4401/4403, joins the feed's group and relays each
`incident` event that web.receivers broadcasts: {"type": "incident", "number", "status",
"severity", "title", "service"}. The client only listens (and may "ping"); the list page
re-fetches what it shows when an event comes. Its rights are re-checked as a room's are
(warroom.sockets.CheckedSocket): on every frame, before relaying when the last check is older
than RECHECK_EVERY, and at once when its token, session or person ends.
"""

from __future__ import annotations

import json
from typing import Any

from accounts.models import Role
from warroom.sockets import FORBIDDEN, UNAUTHENTICATED, CheckedSocket

FEED_GROUP = "incidents.feed"
EVENT_TYPE = "incident.event"
NOT_JSON = 'Frames are JSON text, such as {"type": "ping"}.'


class IncidentFeedConsumer(CheckedSocket):
    """One client following every incident change."""

    joined = False
    forbidden = "You may no longer follow incidents."

    async def connect(self) -> None:
        user = await self.sign_in()
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
        await self.sign_out()
        if self.joined:
            self.joined = False
            await self.channel_layer.group_discard(FEED_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if await self.refused():
            return
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if content is None:
            # Channels' own decoding would raise, and the server would close with 1011.
            await self.send_json({"type": "error", "error": NOT_JSON})
            return
        await self.receive_json(content)

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
        if await self.refused_if_stale():
            return
        await self.send_json(message["event"])

"""The war room over a websocket: `/ws/rooms/<room_id>/`, the protocol in docs/api/war-rooms.md.

A thin consumer: it authenticates (session or API token), joins the room's channel-layer
group, answers `hello` with the messages the client missed, hands `say` to
`warroom.surfaces.chat.say` and relays the group's events. Nothing is sent before the client's
`hello` is answered: the catch-up is read after the group was joined, so whatever was
broadcast before it is in the database, and whatever is broadcast after it is relayed.

Its rights are re-checked on every frame it sends and, while it only listens, at least every
RECHECK_EVERY seconds; revoking its token, signing out its session or deactivating its person
closes it at once (warroom.sockets.CheckedSocket, accounts.sockets).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError

from accounts.models import Role, User
from warroom import presence, selectors, services
from warroom.markdown import MAX_BODY
from warroom.models import Room
from warroom.sockets import (
    FORBIDDEN,
    NO_SUCH_ROOM,
    UNAUTHENTICATED,
    CheckedSocket,
    in_thread,
)
from warroom.surfaces.chat import say

log = logging.getLogger(__name__)

CATCH_UP_MAX = selectors.HISTORY_MAX
MAX_FRAME = MAX_BODY * 6 + 1024  # a body of MAX_BODY characters, each JSON-escaped at worst
MAX_NONCE = 200  # characters
_REMEMBERED = 1000  # ids sent directly (catch-up, own messages) whose broadcast is still due


# Well inside presence's 90 s staleness, so an active client never drops off the roster.
TOUCH_EVERY = 20.0


class RoomConsumer(CheckedSocket):
    """One client in one room."""

    forbidden = "You may no longer use this room."

    room_id: int
    room: Room | None = None
    user: User | None = None
    joined = False  # in the group and on the presence roster
    ready = False  # its hello answered: events are relayed from now on
    presence_sent: list[str] | None = None  # the last list of people the client was told
    touched_at = float("-inf")  # time.monotonic() of the last roster refresh

    async def connect(self) -> None:
        raw_id = self.scope["url_route"]["kwargs"]["room_id"]
        self.room_id = (
            int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18 else 0
        )
        self.sent: OrderedDict[int, None] = OrderedDict()
        self.user = await self.sign_in()
        # Accept first: a close code only reaches a client on an open websocket (refusing the
        # handshake would answer a bare HTTP 403).
        await self.accept()
        if self.user is None:
            await self.close(code=UNAUTHENTICATED)
            return
        if not self.user.has_role(Role.OBSERVER):
            await self.close(code=FORBIDDEN)
            return
        # The room (and its incident) is read once: what a message needs of it never changes.
        self.room = await in_thread(
            Room.objects.select_related("incident").filter(pk=self.room_id).first
        )()
        if self.room is None:
            await self.close(code=NO_SUCH_ROOM)
            return
        await self.channel_layer.group_add(services.room_group(self.room_id), self.channel_name)
        self.joined = True
        await self._presence(presence.join)

    async def disconnect(self, code: int) -> None:
        await self.sign_out()
        if not self.joined:
            return
        self.joined = False
        await self.channel_layer.group_discard(services.room_group(self.room_id), self.channel_name)
        await self._presence(presence.leave)

    @property
    def username(self) -> str:
        return self.user.get_username() if self.user is not None else ""

    # --- frames from the client -------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame, problem = _parse(text_data)
        # Every frame re-checks the rights first, whatever it holds (its nonce, if it has one,
        # goes back with the refusal).
        nonce = frame.get("nonce") if frame is not None else None
        if not (isinstance(nonce, str) and len(nonce) <= MAX_NONCE):
            nonce = None
        if await self.refused(nonce):
            return
        if frame is None:
            await self._error(problem)
            return
        handler = {"hello": self._on_hello, "say": self._on_say, "ping": self._on_ping}.get(
            frame.get("type") if isinstance(frame.get("type"), str) else None
        )
        if handler is None:
            kind = json.dumps(frame.get("type"))[:50]
            await self._error(f'Unknown type {kind}; send "hello", "say" or "ping".')
            return
        await handler(frame)

    async def _on_hello(self, frame: dict[str, Any]) -> None:
        after = frame.get("after")
        if after is not None and (type(after) is not int or after < 0):
            await self._error('"after" must be the id of the last message seen, or null.')
            return
        try:
            catch_up = await in_thread(_catch_up)(self.room_id, after)
        except Exception:
            log.exception("room %s: could not read the catch-up", self.room_id)
            await self._error("The room's history could not be read; send hello again.")
            return
        if catch_up is None:
            await self.close(code=NO_SUCH_ROOM)
            return
        messages, gap, room, last_id = catch_up
        if gap is not None:
            await self.send_json({"type": "gap", **gap})
        for message in messages:
            self._remember(message["id"])
            await self.send_json({"type": "message", "message": message})
        try:
            users = await in_thread(presence.users)(self.room_id)
        except Exception:
            log.warning("room %s: presence could not be read", self.room_id, exc_info=True)
            users = [self.username]
        self.ready = True
        self.presence_sent = users
        await self.send_json({"type": "ready", "room": room, "last_id": last_id, "presence": users})

    async def _on_say(self, frame: dict[str, Any]) -> None:
        nonce = frame.get("nonce")
        if nonce is not None and not (isinstance(nonce, str) and len(nonce) <= MAX_NONCE):
            await self._error(f'"nonce" must be a string of at most {MAX_NONCE} characters.')
            return
        body = frame.get("body")
        problem = services.body_problem(body)
        if problem:
            await self._error(problem, nonce)
            return
        try:
            said = await in_thread(_say_as)(self.room, self.user.pk, body)
        except Exception:
            log.exception("room %s: could not post a message by %s", self.room_id, self.username)
            await self._error("The message could not be posted; send it again.", nonce)
            return
        if isinstance(said, int):
            why = "You may no longer use this room." if said == FORBIDDEN else "The room is gone."
            await self._error(why, nonce)
            await self.close(code=said)
            return
        # The sender gets its messages at once, its nonce on the first; their broadcast
        # copies are dropped when they arrive (see room_event).
        for i, message in enumerate(said):
            self._remember(message["id"])
            event = {"type": "message", "message": message}
            if i == 0 and nonce is not None:
                event["nonce"] = nonce
            await self.send_json(event)
        await self._touch()

    async def _on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})
        await self._touch()

    async def _touch(self) -> None:
        """Refresh this client on the roster, at most every TOUCH_EVERY seconds: a busy room
        says many things a minute, and each refresh is a round trip to the cache."""
        now = time.monotonic()
        if now - self.touched_at >= TOUCH_EVERY:
            self.touched_at = now
            await self._presence(presence.touch)

    # --- events from the room's group -------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "room.event":
            # No database here: skip channels' check of old connections, a thread hop for every
            # client of every message.
            await self.room_event(message)
            return
        await super().dispatch(message)

    async def room_event(self, message: dict[str, Any]) -> None:
        """Relay an event broadcast to the room (services.broadcast) to the client."""
        if not self.ready:
            return  # the hello's catch-up and "ready" carry everything until then
        if await self.refused_if_stale():
            return
        event = message["event"]
        if event.get("type") == "message" and event["message"]["id"] in self.sent:
            del self.sent[event["message"]["id"]]
            return  # sent already: in the catch-up, or to its sender directly
        if event.get("type") == "presence":
            if event["users"] == self.presence_sent:
                return  # no news (its own arrival, already in "ready")
            self.presence_sent = event["users"]
        await self.send_json(event)

    def _remember(self, message_id: int) -> None:
        self.sent[message_id] = None
        while len(self.sent) > _REMEMBERED:
            self.sent.popitem(last=False)

    # --- presence ---------------------------------------------------------------------------

    async def _presence(self, change: Callable[[int, str, str], presence.Change]) -> None:
        """Join, touch or leave the roster; tell the room if who is in it changed. Presence is
        a courtesy: when the cache or the layer fails, the room works on without it."""
        try:
            changed = await in_thread(change)(self.room_id, self.channel_name, self.username)
            if changed.changed:
                event = {"type": "presence", "users": changed.users}
                await self.channel_layer.group_send(
                    services.room_group(self.room_id), {"type": "room.event", "event": event}
                )
        except Exception:
            log.warning("room %s: presence failed", self.room_id, exc_info=True)


def _parse(text_data: str | None) -> tuple[dict[str, Any] | None, str]:
    """Return a client's frame as a JSON object, or None and what is wrong with it."""
    if text_data is None:
        return None, "Frames must be text: JSON objects with a type."
    if len(text_data) > MAX_FRAME:
        return None, f"The frame is over {MAX_FRAME} characters."
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError):
        return None, "The frame is not JSON; send a JSON object with a type."
    if not isinstance(frame, dict):
        return None, "The frame must be a JSON object with a type."
    return frame, ""


def _catch_up(
    room_id: int, after: int | None
) -> tuple[list[dict[str, Any]], dict[str, int] | None, dict[str, Any], int | None] | None:
    """Return the newest messages after `after` (at most CATCH_UP_MAX), the gap before them if
    more were missed, the room and its last message id; None if the room is gone."""
    try:
        room = selectors.get_room(room_id)
    except selectors.RoomNotFound:
        return None
    rows, more = selectors.messages_between(room_id, after=after, limit=CATCH_UP_MAX, newest=True)
    gap = {"after": after or 0, "before": rows[0].pk} if more else None
    last_id = rows[-1].pk if rows else selectors.last_message_id(room_id)
    return [services.message_json(m) for m in rows], gap, selectors.room_json(room), last_id


def _say_as(room: Room, user_id: int, body: str) -> list[dict[str, Any]] | int:
    """Say `body` in the room as the user; return the messages, or the close code that applies
    (a deactivated user, a deleted room). The person is read again every time: deactivating
    someone takes effect on their next word."""
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.has_role(Role.OBSERVER):
        return FORBIDDEN
    try:
        said = say(room, body, user=user)
    except IntegrityError:  # the room was deleted while this client was in it
        return NO_SUCH_ROOM
    return [services.message_json(m, attachments=[]) for m in said]

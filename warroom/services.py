"""The war room's verbs: open a room, invite to it, post to it, and the check of what may be said.

Every surface of the room (the websocket consumer, the API, the web pages, the bot) calls these;
they write to the database and, after commit, broadcast to the room's channel-layer group, which
every connected client of every daphne process has joined. Saying something that may be a
command is `warroom.surfaces.chat.say`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from channels.layers import get_channel_layer
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from core import json_rows, live
from core.text import escape_markdown
from incidents.models import EntryKind, Incident
from incidents.timeline import record
from warroom.attachments import attach, check
from warroom.chat import mirror
from warroom.markdown import MAX_BODY, render
from warroom.models import Attachment, Message, MessageKind, Participant, Room

log = logging.getLogger(__name__)

BOT_NAME = "muster"


class MessageRefused(ValueError):
    """A message that may not be posted; its text says why, to the person who wrote it."""


def body_problem(body: object) -> str | None:
    """Return what is wrong with a message body, or None when it may be posted."""
    if not isinstance(body, str):
        return '"body" must be a string of Markdown.'
    if not body.strip():
        return "The message is empty."
    if len(body) > MAX_BODY:
        return f"The message is {len(body)} characters long; the limit is {MAX_BODY}."
    if "\x00" in body:  # PostgreSQL stores no NUL in text
        return "The message cannot contain NUL characters."
    return None


def room_group(room_id: int) -> str:
    """The channel-layer group of a room's connected clients."""
    return f"room.{room_id}"


def incident_room(incident: Incident, *, absent: bool = False) -> Room:
    """Return the incident's war room, opening it if it has none yet (`absent`: the caller
    found none, just now)."""
    room = None if absent else Room.objects.filter(incident=incident).first()
    if room is not None:
        return room
    try:
        with transaction.atomic():
            return Room.objects.create(
                incident=incident, name=f"#{incident.number} {incident.title}"[:200]
            )
    except IntegrityError:  # opened at the same moment by another transaction
        return Room.objects.get(incident=incident)


def open_room(name: str, *, by: User) -> Room:
    """Open an ad hoc room (no incident), with its opener in it."""
    room = Room.objects.create(name=name[:200], created_by=by)
    invite(room, by.pk, "opened the room")
    return room


def invite(room: Room, user_id: int, reason: str) -> bool:
    """Make the user `user_id` a participant of `room`; return whether they were not one
    already. By id: the bot invites whom a page names, without reading them.

    One INSERT that does nothing for a participant already there: get_or_create's read,
    savepoint and insert cost 0.9 ms of CPU (the bot invites each paged person, every page).
    """
    with connection.cursor() as cursor:
        at = connection.ops.adapt_datetimefield_value(timezone.now())
        cursor.execute(_invite_sql(), [room.pk, user_id, reason[:200], at])
        created = bool(cursor.fetchall())
    if created:
        mirror.person_joined(room, user_id)
    return created


@functools.cache
def _invite_sql() -> str:
    qn = connection.ops.quote_name
    columns = [qn(Participant._meta.get_field(name).column) for name in ("room", "user")]
    return (
        f"INSERT INTO {qn(Participant._meta.db_table)} "  # noqa: S608 (names, not values)
        f"({', '.join(columns)}, {qn('reason')}, {qn('at')}) VALUES (%s, %s, %s, %s) "
        f"ON CONFLICT ({', '.join(columns)}) DO NOTHING RETURNING {qn('id')}"
    )


def post(
    room: Room,
    body: str,
    *,
    author: User | None = None,
    kind: str = MessageKind.CHAT,
    reply_to: Message | None = None,
    data: dict[str, Any] | None = None,
    files: list[UploadedFile] | None = None,
) -> Message:
    """Store a message (its HTML rendered and sanitized now, its files checked) and broadcast
    it after commit. Raises AttachmentRefused for a file that is too big or of a refused type."""
    # Every file is checked before anything is stored, so a refused one leaves nothing behind.
    checked = [(file, check(file)) for file in files or []]
    # The message and its outbox posts (warroom.chat.mirror) are stored together, or neither.
    with transaction.atomic(savepoint=False):
        message = Message(
            room=room,
            author=author,
            kind=kind,
            body=body,
            html=render(body),
            reply_to=reply_to,
            data=data or {},
        )
        json_rows.insert([message])  # as create(), without compiling an INSERT each time
        attachments = [attach(message, file, content_type) for file, content_type in checked]
        mirror.room_message(room, message)
    event = {"type": "message", "message": message_json(message, attachments)}
    transaction.on_commit(lambda: broadcast(room.pk, event))
    return message


RELAYED_TIMELINE_MOST = 2000  # characters of what was said in a chat channel kept on the timeline
_CUT = "… (cut: longer than Muster keeps)"


def relay_chat_message(
    incident: Incident,
    text: str,
    *,
    person: User | None,
    outsider: str,
    source: str,
    data: dict[str, Any],
) -> Message:
    """Copy what someone wrote in the incident's Slack or Mattermost channel into its room and
    onto its timeline (`chat_message`), in one transaction: by `person`, or, for someone Muster
    cannot map, by the bot in their name (`outsider`, e.g. "jane (Slack, not a Muster
    person)"). `data` says where it came from ({"via": "slack", ...}): it is not told back."""
    if person is not None:
        body, kind, name = text, MessageKind.CHAT, person.get_username()
    else:
        body, kind, name = f"**{escape_markdown(outsider)}**: {text}", MessageKind.BOT, outsider
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - len(_CUT)] + _CUT
    with transaction.atomic():
        room = incident_room(incident)
        message = post(room, body, author=person, kind=kind, data=data)
        record(
            incident,
            EntryKind.CHAT_MESSAGE,
            message=text[:RELAYED_TIMELINE_MOST],
            source=source,
            by=person,
            actor_name=name[:200],
            data={**data, "room": room.pk, "message": message.pk},
        )
    return message


def message_json(message: Message, attachments: list[Attachment] | None = None) -> dict[str, Any]:
    """A message as clients and the API see it (`attachments`: given, or read)."""
    if attachments is None:
        attachments = list(message.attachments.all())
    return {
        "id": message.pk,
        "room": message.room_id,
        "author": message.author.get_username() if message.author_id else BOT_NAME,
        "kind": message.kind,
        "body": message.body,
        "html": message.html,
        "created_at": message.created_at.isoformat(),
        "reply_to": message.reply_to_id,
        "attachments": [
            {
                "id": a.pk,
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
                "url": f"/api/v1/attachments/{a.pk}/",
            }
            for a in attachments
        ],
        "data": message.data,
    }


def broadcast(room_id: int, event: dict[str, Any]) -> None:
    """Send an event to every client connected to the room; a failure loses no message
    (clients catch up from the database when they reconnect)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        live.group_send(room_group(room_id), {"type": "room.event", "event": event})
    except Exception:
        log.warning("could not broadcast to room %s", room_id, exc_info=True)

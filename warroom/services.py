"""The war room's verbs: open a room, post to it, say something in it (a command or not).

Every surface of the room (the websocket consumer, the API, the web page) calls these; they
write to the database and, after commit, broadcast to the room's channel-layer group, which
every connected client of every daphne process has joined.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from accounts.models import User
from incidents.models import EntryKind, Incident, Source
from incidents.timeline import record
from warroom import commands, execute
from warroom.attachments import attach, check
from warroom.markdown import render
from warroom.models import Attachment, Message, MessageKind, Participant, Room

log = logging.getLogger(__name__)

BOT_NAME = "muster"


def room_group(room_id: int) -> str:
    """The channel-layer group of a room's connected clients."""
    return f"room.{room_id}"


def incident_room(incident: Incident) -> Room:
    """Return the incident's war room, opening it if it has none yet."""
    room = Room.objects.filter(incident=incident).first()
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
    invite(room, by, "opened the room")
    return room


def invite(room: Room, user: User, reason: str) -> bool:
    """Make `user` a participant of `room`; return whether they were not one already."""
    _, created = Participant.objects.get_or_create(
        room=room, user=user, defaults={"reason": reason}
    )
    return created


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
    message = Message.objects.create(
        room=room,
        author=author,
        kind=kind,
        body=body,
        html=render(body),
        reply_to=reply_to,
        data=data or {},
    )
    attachments = [attach(message, file, content_type) for file, content_type in checked]
    event = {"type": "message", "message": message_json(message, attachments)}
    transaction.on_commit(lambda: broadcast(room.pk, event))
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
        async_to_sync(layer.group_send)(room_group(room_id), {"type": "room.event", "event": event})
    except Exception:
        log.warning("could not broadcast to room %s", room_id, exc_info=True)


def say(room: Room, text: str, *, user: User) -> list[Message]:
    """`user` says `text` in `room`: conversation is posted; a command is posted, run as them,
    answered by the bot, and recorded with its result on the incident's timeline."""
    command_text = commands.addressed_command(text)
    if command_text is None:
        return [post(room, text, author=user)]  # one INSERT: no transaction needed around it
    with transaction.atomic():  # the command, its effect, the reply and the record, or nothing
        return _command(room, text, command_text, user)


def _command(room: Room, text: str, command_text: str, user: User) -> list[Message]:
    said = post(room, text, author=user, kind=MessageKind.COMMAND)
    parsed = commands.parse(command_text, surface="chat")
    if isinstance(parsed, commands.ParseError):
        reply = execute.Reply(parsed.message)
    else:
        reply = execute.run(parsed, user=user, source=Source.CHAT, incident=room.incident)
    answer = post(room, reply.text, kind=MessageKind.REPLY, reply_to=said)
    _record_command(room, user, text, reply, parsed)
    return [said, answer]


def _record_command(
    room: Room,
    user: User,
    text: str,
    reply: execute.Reply,
    parsed: commands.Command | commands.ParseError,
) -> None:
    incident = room.incident
    if reply.incident is not None and (incident is None or incident.number != reply.incident):
        incident = Incident.objects.filter(number=reply.incident).first()
    if incident is None:
        return
    name = parsed.name if isinstance(parsed, commands.Command) else None
    record(
        incident,
        EntryKind.COMMAND,
        message=f"{user.get_username()} in {room.name}: {text.strip()[:300]} → {reply.text[:500]}",
        source=Source.CHAT,
        by=user,
        data={"command": name, "changed": reply.changed, "room": room.pk},
    )

"""Chat in a room (the websocket, the API, the web pages): what someone says is conversation, or a
command that is run as them and answered by the bot.

A command, its effect, the bot's reply and the COMMAND entry on the incident's timeline are
written in one transaction: all of them, or nothing.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from incidents.models import EntryKind, Incident, Source
from incidents.timeline import record
from warroom import execute
from warroom.commands.addressing import addressed_command
from warroom.commands.parser import ParseError, parse
from warroom.commands.specs import Command
from warroom.models import Message, MessageKind, Room
from warroom.replies import Reply
from warroom.services import MessageRefused, body_problem, post

SOURCE = Source.CHAT

# What a room's web form says when its box was sent empty.
NOTHING_TYPED = "Type something to say."


def say(room: Room, text: str, *, user: User) -> list[Message]:
    """`user` says `text` in `room`: conversation is posted; a command is posted, run as them,
    answered by the bot, and recorded with its result on the incident's timeline.

    Raises MessageRefused for a body that may not be posted (`body_problem`).
    """
    problem = body_problem(text)
    if problem is not None:
        raise MessageRefused(problem)
    command_text = addressed_command(text)
    if command_text is None:
        return [post(room, text, author=user)]  # one INSERT: no transaction needed around it
    with transaction.atomic():  # the command, its effect, the reply and the record, or nothing
        return _command(room, text, command_text, user)


def say_typed(room: Room, typed: str, *, user: User) -> str | None:
    """Say what `user` typed in a room's web form (trimmed); return why it was refused, if it
    was."""
    body = typed.strip()
    if not body:
        return NOTHING_TYPED
    try:
        say(room, body, user=user)
    except MessageRefused as exc:
        return str(exc)
    return None


def _command(room: Room, text: str, command_text: str, user: User) -> list[Message]:
    said = post(room, text, author=user, kind=MessageKind.COMMAND)
    parsed = parse(command_text, surface=SOURCE)
    if isinstance(parsed, ParseError):
        reply = Reply(parsed.message)
    else:
        reply = execute.run(parsed, user=user, source=SOURCE, incident=room.incident)
    answer = post(room, reply.text, kind=MessageKind.REPLY, reply_to=said)
    _record_command(room, user, text, reply, parsed)
    return [said, answer]


def _record_command(
    room: Room, user: User, text: str, reply: Reply, parsed: Command | ParseError
) -> None:
    incident = room.incident
    if reply.incident is not None and (incident is None or incident.number != reply.incident):
        incident = Incident.objects.filter(number=reply.incident).first()
    if incident is None:
        return
    name = parsed.name if isinstance(parsed, Command) else None
    record(
        incident,
        EntryKind.COMMAND,
        message=f"{user.get_username()} in {room.name}: {text.strip()[:300]} → {reply.text[:500]}",
        source=SOURCE,
        by=user,
        data={"command": name, "changed": reply.changed, "room": room.pk},
    )

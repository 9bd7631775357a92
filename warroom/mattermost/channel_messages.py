"""What people write in an incident's Mattermost channel (its outgoing webhook's posts): a
command, run as the person who wrote it, or conversation, copied to the incident's Muster room
and timeline. Each post is acted on once (by its post id); Muster's own posts are ignored.

In a channel Muster listens for `/muster …`, `@muster …` (or `@<the bot's username> …`) and
exactly `<verb> incident <N>`; everything else is conversation. An answer that changed the
incident is for the channel: the webhook's HTTP response, which Mattermost posts as a reply in
the message's thread. Everything else (a refusal, help, a list, a mistake) is only for whoever
wrote it: a direct message from the bot (warroom.mattermost.direct), or, when Mattermost will
not take one, the thread reply after all: never no answer.

Conversation by someone who is not a Muster person (or whom Mattermost cannot place just now)
is still copied, as the bot's line naming them: the room should read the whole conversation.
"""

from __future__ import annotations

import logging
import re

from django.db import transaction

from accounts.chat_people import Mapping
from accounts.models import User
from incidents.models import Source
from warroom import links, replay
from warroom.commands.addressing import addressed_command
from warroom.mattermost import direct, people
from warroom.mattermost.answers import link_answer
from warroom.mattermost.client import MattermostUnavailable
from warroom.mattermost.webhook import ChannelPost
from warroom.models import ChatChannel
from warroom.services import body_problem, relay_chat_message
from warroom.surfaces import mattermost as surface

log = logging.getLogger(__name__)

VIA = "mattermost"
NOT_A_PERSON = "(Mattermost, not a Muster person)"
COMMAND_MAX = 4_000
TOO_LONG = f"That is too long for a command ({COMMAND_MAX} characters at most)."
COULD_NOT_CHECK = (
    "Muster could not check who you are with Mattermost just now, so nothing was done. Try again."
)
LINK_BY_SLASH = (
    "Muster could not send you a private message, and a link is only for you: type "
    "`/muster link` instead."
)
_SLASH_MUSTER = re.compile(r"/muster(?![\w.-])\s*", re.IGNORECASE)
_NAME_CHARS = re.compile(r"[^\w.-]")


def receive(message: ChannelPost, channel: ChatChannel) -> dict[str, str]:
    """Act on `message`, written in `channel`; return the webhook's response (empty: say
    nothing)."""
    bot_id, bot_name = people.bot_account()
    if bot_id and message.user_id == bot_id:
        return {}  # Muster's own post: Mattermost fires no webhook for it, but be sure
    command_text = addressed(message.text, bot_name)
    if command_text is not None:
        return _command(message, channel, command_text)
    return _conversation(message, channel)


def addressed(text: str, bot_name: str = "") -> str | None:
    """Return the command in a channel message, or None when it is conversation."""
    stripped = text.strip()
    if stripped.startswith("/"):
        slash = _SLASH_MUSTER.match(stripped)
        return stripped[slash.end() :].strip() if slash else None
    if bot_name and bot_name.lower() != "muster":
        mention = re.match(rf"@{re.escape(bot_name)}(?![\w.-])[\s:,]*", stripped, re.IGNORECASE)
        if mention is not None:
            return stripped[mention.end() :].strip()
    return addressed_command(stripped)


def _command(message: ChannelPost, channel: ChatChannel, text: str) -> dict[str, str]:
    if len(text) > COMMAND_MAX:
        return _privately(message, channel, TOO_LONG)
    if links.is_link(text):
        with transaction.atomic():
            if not replay.first_time(replay.mattermost_post_key(message.post_id)):
                return {}  # one link a message, even if Mattermost sends it twice
        # A one-time link must not reach the channel: only a direct message carries it.
        if direct.tell(message.user_id, link_answer(message.user_id)):
            return {}
        return surface.comment(LINK_BY_SLASH)
    try:
        mapping = people.person_for_user(message.user_id)
    except MattermostUnavailable as exc:
        log.warning("Mattermost user %s not checked: %s", message.user_id[:40], exc)
        return surface.comment(COULD_NOT_CHECK)  # not remembered: sent again, it acts
    with transaction.atomic():  # the post remembered with what it did, or neither
        if not replay.first_time(replay.mattermost_post_key(message.post_id)):
            return {}
        if mapping.person is None:
            answer, changed = f"{mapping.problem} Nothing was done.", False
        else:
            reply = surface.reply_to(text, mapping.person, incident=channel.incident)
            answer, changed = reply.text, reply.changed
    if changed:
        return surface.comment(answer)
    return _privately(message, channel, answer)


def _privately(message: ChannelPost, channel: ChatChannel, answer: str) -> dict[str, str]:
    """Answer only the writer, in a direct message; in the thread when Mattermost takes none."""
    where = f"\n\n_About what you wrote in ~{channel.name}; only you see this._"
    if direct.tell(message.user_id, answer + where):
        return {}
    return surface.comment(answer)


def _conversation(message: ChannelPost, channel: ChatChannel) -> dict[str, str]:
    if not message.text.strip():
        return {}  # a file alone, say: nothing to copy
    person = _person(message.user_id)
    outsider = f"{_display_name(message)} {NOT_A_PERSON}" if person is None else ""
    problem = body_problem(message.text)
    if problem is not None:
        log.info("Mattermost post %s not copied: %s", message.post_id[:40], problem)
        return surface.comment(f"Not copied to Muster: {problem}")
    data = {"via": VIA, "mattermost_user": message.user_id, "post_id": message.post_id}
    with transaction.atomic():  # the post remembered, with the room's message and the entry
        if not replay.first_time(replay.mattermost_post_key(message.post_id)):
            return {}
        relay_chat_message(
            channel.incident,
            message.text,
            person=person,
            outsider=outsider,
            source=Source.MATTERMOST,
            data=data,
        )
    return {}


def _person(user_id: str) -> User | None:
    """The Muster person who wrote a message; None when there is none, or Mattermost cannot
    say just now (the message is copied all the same, by their Mattermost name)."""
    try:
        mapping: Mapping = people.person_for_user(user_id)
    except MattermostUnavailable as exc:
        log.warning("Mattermost user %s not checked: %s", user_id[:40], exc)
        return None
    return mapping.person


def _display_name(message: ChannelPost) -> str:
    return _NAME_CHARS.sub("", message.user_name)[:64] or "someone"

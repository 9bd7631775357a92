"""Mattermost's slash command `/muster …`: the text after the trigger word is a command, run as
the Muster person the Mattermost user is, and answered as a slash-command response.

`warroom.mattermost` receives the request (token, payload, who typed it); this module parses,
runs and renders. Replies are the chat Markdown, which Mattermost renders, with links made
absolute on `PUBLIC_URL` (Mattermost cannot follow Muster's relative ones). What changed an
incident is shown to the channel (`in_channel`), so the team sees who acknowledged; everything
else (help, lists, refusals, mistakes) only to whoever typed it (`ephemeral`).
"""

from __future__ import annotations

import re

from django.conf import settings

from accounts.models import User
from incidents.models import Source
from warroom.commands.parser import ParseError, parse
from warroom.execute import run

SOURCE = Source.MATTERMOST

EPHEMERAL = "ephemeral"
IN_CHANNEL = "in_channel"
# Mattermost refuses posts over 16383 characters.
TEXT_MAX = 16_000
CUT = "\n\n… (cut: see Muster for the rest)"

# A Markdown link or image whose target is a path on Muster: `](/incidents/1042/)`.
_RELATIVE_LINK = re.compile(r"\]\((/(?!/)[^)\s]*)\)")
# `@name`, `@channel`, `@here`, `@all` would notify people when posted to the channel; not an
# email address's or a URL's "@", which follow a word character or "/" and ":".
_MENTION = re.compile(r"(?<![\w/:.])@(?=[\w.-])")


def answer(text: str, person: User) -> dict[str, str]:
    """Return the slash-command response to `person` typing `/muster <text>`."""
    command = parse(text, surface=SOURCE)
    if isinstance(command, ParseError):
        # Its message names the closest command, or lists them all.
        return ephemeral(command.message)
    reply = run(command, user=person, source=SOURCE)
    if reply.changed:
        return {"response_type": IN_CHANNEL, "text": _unmentioned(markdown(reply.text))}
    return ephemeral(reply.text)


def ephemeral(text: str) -> dict[str, str]:
    """Return a response that only whoever typed the command sees."""
    return {"response_type": EPHEMERAL, "text": markdown(text)}


def markdown(text: str) -> str:
    """Return a reply's Markdown for Mattermost: Muster's links absolute, and short enough to
    post."""
    text = _RELATIVE_LINK.sub(lambda m: f"]({settings.PUBLIC_URL}{m.group(1)})", text)
    if len(text) > TEXT_MAX:
        text = text[: TEXT_MAX - len(CUT)] + CUT
    return text


def _unmentioned(text: str) -> str:
    return _MENTION.sub("@\u200b", text)

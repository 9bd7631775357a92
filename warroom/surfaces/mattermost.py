"""Mattermost's slash command `/muster …`, its incident channels and its buttons: the text is a
command, run as the Muster person the Mattermost user is, and answered in Mattermost's shapes.

`warroom.mattermost` receives the request (token, payload, who typed it); this module parses,
runs and renders. Replies are the chat Markdown, which Mattermost renders, with links made
absolute on `PUBLIC_URL` (Mattermost cannot follow Muster's relative ones). What changed an
incident is shown to the channel (`in_channel`), so the team sees who acknowledged; everything
else (help, lists, refusals, mistakes) only to whoever typed it (`ephemeral`).
"""

from __future__ import annotations

from accounts.models import User
from incidents.models import Incident, Source
from warroom.commands.parser import ParseError, parse
from warroom.execute import run
from warroom.mattermost.markdown import markdown, unmentioned
from warroom.replies import Reply

SOURCE = Source.MATTERMOST

EPHEMERAL = "ephemeral"
IN_CHANNEL = "in_channel"
COMMENT = "comment"


def answer(text: str, person: User, *, incident: Incident | None = None) -> dict[str, str]:
    """Return the slash-command response to `person` typing `/muster <text>`; `incident` is
    the one whose channel it was typed in, if any (then its number may be left out)."""
    reply = reply_to(text, person, incident=incident)
    if reply.changed:
        return {"response_type": IN_CHANNEL, "text": unmentioned(markdown(reply.text))}
    return ephemeral(reply.text)


def reply_to(text: str, person: User, *, incident: Incident | None = None) -> Reply:
    """Run `text` as `person` and return the Reply; a mistake's Reply names the closest
    command, or lists them all."""
    command = parse(text, surface=SOURCE)
    if isinstance(command, ParseError):
        return Reply(command.message)
    return run(command, user=person, source=SOURCE, incident=incident)


def ephemeral(text: str) -> dict[str, str]:
    """Return a response that only whoever typed the command sees."""
    return {"response_type": EPHEMERAL, "text": markdown(text)}


def comment(text: str) -> dict[str, str]:
    """Return an outgoing webhook's response: a reply, in the thread of the message that was
    answered, that the whole channel sees (so no @mention in it notifies)."""
    return {"response_type": COMMENT, "text": unmentioned(markdown(text))}


def ephemeral_text(text: str) -> dict[str, str]:
    """Return a button's integration response: a line only whoever clicked sees."""
    return {"ephemeral_text": unmentioned(markdown(text))}

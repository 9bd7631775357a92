"""Mattermost's slash command `/muster …`: the text after the trigger word is a command, run as
the Muster person the Mattermost user is, and answered as a slash-command response.

`warroom.mattermost` receives the request (token, payload, who typed it); this module parses,
runs and renders. Replies are the chat Markdown, which Mattermost renders, with links made
absolute on `PUBLIC_URL` (Mattermost cannot follow Muster's relative ones). What changed an
incident is shown to the channel (`in_channel`), so the team sees who acknowledged; everything
else (help, lists, refusals, mistakes) only to whoever typed it (`ephemeral`).
"""

from __future__ import annotations

from accounts.models import User
from incidents.models import Source
from warroom.commands.parser import ParseError, parse
from warroom.execute import run
from warroom.mattermost.markdown import markdown, unmentioned

SOURCE = Source.MATTERMOST

EPHEMERAL = "ephemeral"
IN_CHANNEL = "in_channel"


def answer(text: str, person: User) -> dict[str, str]:
    """Return the slash-command response to `person` typing `/muster <text>`."""
    command = parse(text, surface=SOURCE)
    if isinstance(command, ParseError):
        # Its message names the closest command, or lists them all.
        return ephemeral(command.message)
    reply = run(command, user=person, source=SOURCE)
    if reply.changed:
        return {"response_type": IN_CHANNEL, "text": unmentioned(markdown(reply.text))}
    return ephemeral(reply.text)


def ephemeral(text: str) -> dict[str, str]:
    """Return a response that only whoever typed the command sees."""
    return {"response_type": EPHEMERAL, "text": markdown(text)}

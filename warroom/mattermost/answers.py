"""Answer a slash command: find the Muster person who typed it, then let the Mattermost
surface run it as them (on the incident whose channel it was typed in, if it was).

The answer is the HTTP response itself: every verb is a short transaction (paging and runbook
actions are queued for workers), and Mattermost waits for it, so no task or `response_url` is
needed. Whatever goes wrong on Mattermost's side is an ephemeral answer, never an error.
"""

from __future__ import annotations

import logging

from warroom import links
from warroom.mattermost import people
from warroom.mattermost.client import MattermostUnavailable
from warroom.mattermost.slash import SlashCommand
from warroom.mattermost.webhook import incident_channel
from warroom.models import ChatPlatform
from warroom.surfaces import mattermost as surface

log = logging.getLogger(__name__)

# Longer than any command anyone types; a longer text is refused before Mattermost is asked.
TEXT_MAX = 4_000
TOO_LONG = f"That is too long for a command ({TEXT_MAX} characters at most). Try `/muster help`."
COULD_NOT_CHECK = (
    "Muster could not check who you are with Mattermost just now{wait}, so nothing was done. "
    "Try again."
)


def link_answer(user_id: str) -> str:
    """The answer to `/muster link`, its one-time link in Markdown. Mattermost's user ids are
    the server's, so the link names no team."""
    return links.link_answer(
        ChatPlatform.MATTERMOST, "", user_id, markup=lambda url, label: f"[{label}]({url})"
    )


def answer(command: SlashCommand) -> dict[str, str]:
    """Return Mattermost's slash-command response to `command`."""
    if len(command.text) > TEXT_MAX:
        return surface.ephemeral(TOO_LONG)
    if links.is_link(command.text):
        return surface.ephemeral(link_answer(command.user_id))
    try:
        mapping = people.person_for_user(command.user_id)
    except MattermostUnavailable as exc:
        log.warning("Mattermost user %s not checked: %s", command.user_id[:40], exc)
        wait = f" (try in {max(1, round(exc.retry_after))} s)" if exc.retry_after else ""
        return surface.ephemeral(COULD_NOT_CHECK.format(wait=wait))
    if mapping.person is None:
        return surface.ephemeral(f"{mapping.problem} Nothing was done.")
    # Typed in an incident's own channel, the command may leave out the incident's number.
    channel = incident_channel(command.channel_id)
    incident = channel.incident if channel is not None else None
    return surface.answer(command.text, mapping.person, incident=incident)

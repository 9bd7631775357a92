"""A click on a button of the bot's opening post (`POST /mattermost/actions/`): the command its
context names, run as the Muster person who clicked, answered with a line only they see.

Mattermost does not sign these requests; a context Muster did not make (warroom.mattermost.
buttons) is refused before anything else. Mattermost shows the clicker only a generic error for
an integration's non-200 answer and drops its body, so every refusal a person should read (who
they are, their role, Mattermost in trouble) is a 200 with `ephemeral_text`.
"""

from __future__ import annotations

import logging

from warroom.mattermost import people
from warroom.mattermost.client import MattermostUnavailable
from warroom.surfaces import mattermost as surface

log = logging.getLogger(__name__)

COULD_NOT_CHECK = (
    "Muster could not check who you are with Mattermost just now, so nothing was done. Try again."
)


def click(user_id: str, command: str) -> dict[str, str]:
    """Return the integration response to Mattermost user `user_id` clicking a button whose
    (authentic) context runs `command`."""
    try:
        mapping = people.person_for_user(user_id)
    except MattermostUnavailable as exc:
        log.warning("Mattermost user %s not checked: %s", user_id[:40], exc)
        return surface.ephemeral_text(COULD_NOT_CHECK)
    if mapping.person is None:
        return surface.ephemeral_text(f"{mapping.problem} Nothing was done.")
    reply = surface.reply_to(command, mapping.person)
    return surface.ephemeral_text(reply.text)

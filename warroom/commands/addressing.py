"""Addressing in chat: which messages in a room are commands and which are conversation."""

from __future__ import annotations

import re

from warroom.commands.specs import SPECS

_BOT_NAME = re.compile(r"@muster(?![\w.-])[\s:,]*", re.IGNORECASE)


def _exact_verb_incident() -> re.Pattern[str]:
    """`<verb> incident <N>` is a command on its own for every verb that needs nothing else."""
    verbs = sorted(
        {
            re.escape(phrase)
            for spec in SPECS
            if "chat" in spec.surfaces
            and any(arg.field == "incident" for arg in spec.args)
            and not any(arg.required for arg in spec.args)
            for phrase in spec.aliases
        },
        key=len,
        reverse=True,
    )
    return re.compile(rf"(?:{'|'.join(verbs)})\s+incident\s+#?\d+[.!]?", re.IGNORECASE)


_VERB_INCIDENT = _exact_verb_incident()


def addressed_command(text: str) -> str | None:
    """Return the command in a chat message, or None when the message is conversation.

    A message is a command when it starts with "/" or "@muster", or is exactly
    "<verb> incident <N>" (so "ack incident 778467" works without a prefix).
    """
    stripped = text.strip()
    if stripped.startswith("/"):
        return stripped[1:].strip()
    bot = _BOT_NAME.match(stripped)
    if bot is not None:
        return stripped[bot.end() :].strip()
    return verb_incident_command(stripped)


def verb_incident_command(text: str) -> str | None:
    """Return `text` trimmed when it is exactly "<verb> incident <N>" (a command without any
    prefix, in a room or in an incident's chat channel), else None."""
    stripped = text.strip()
    return stripped if _VERB_INCIDENT.fullmatch(stripped) else None

"""Muster's Markdown as Mattermost posts it: Muster's links absolute, @mentions defused, and
short enough to post. Pure functions, for answers and for the bot's posts."""

from __future__ import annotations

import re

from django.conf import settings

# Mattermost refuses posts over 16383 characters.
TEXT_MAX = 16_000
CUT = "\n\n… (cut: see Muster for the rest)"

# A Markdown link or image whose target is a path on Muster: `](/incidents/1042/)`.
_RELATIVE_LINK = re.compile(r"\]\((/(?!/)[^)\s]*)\)")
# `@name`, `@channel`, `@here`, `@all` would notify people when posted to the channel, also
# after `.`, `:`, `-` or `_` (Mattermost splits words there); only a whole email address's "@"
# is left as it is.
_MENTION = re.compile(r"@(?=[\w.-])")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")


def markdown(text: str) -> str:
    """Return a reply's Markdown for Mattermost: Muster's links absolute, and short enough to
    post."""
    text = _RELATIVE_LINK.sub(lambda m: f"]({settings.PUBLIC_URL}{m.group(1)})", text)
    if len(text) > TEXT_MAX:
        text = text[: TEXT_MAX - len(CUT)] + CUT
    return text


def unmentioned(text: str) -> str:
    """Return `text` with every "@" that could notify someone broken by a zero-width space."""
    emails = [m.span() for m in _EMAIL.finditer(text)]

    def defuse(match: re.Match[str]) -> str:
        at = match.start()
        return "@" if any(start < at < end for start, end in emails) else "@\u200b"

    return _MENTION.sub(defuse, text)

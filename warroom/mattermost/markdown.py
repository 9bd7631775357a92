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
# `@name`, `@channel`, `@here`, `@all` would notify people when posted to the channel; not an
# email address's or a URL's "@", which follow a word character or "/" and ":".
_MENTION = re.compile(r"(?<![\w/:.])@(?=[\w.-])")


def markdown(text: str) -> str:
    """Return a reply's Markdown for Mattermost: Muster's links absolute, and short enough to
    post."""
    text = _RELATIVE_LINK.sub(lambda m: f"]({settings.PUBLIC_URL}{m.group(1)})", text)
    if len(text) > TEXT_MAX:
        text = text[: TEXT_MAX - len(CUT)] + CUT
    return text


def unmentioned(text: str) -> str:
    return _MENTION.sub("@\u200b", text)

"""Muster's Markdown as Slack's mrkdwn: a pure function, for answers and for the bot's posts."""

from __future__ import annotations

import html
import re

from django.conf import settings

_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(([^)\s]+)\)")
_BACKSLASHED = re.compile(r"\\([!-/:-@\[-`{-~])")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")
_PLACEHOLDER = "\x00{}\x00"
_PLACEHOLDERS = re.compile(r"\x00(\d+)\x00")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` as Slack's mrkdwn asks (and nothing else)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(markdown: str) -> str:
    """Return a reply's Markdown as Slack mrkdwn: `<url|text>` links (made absolute), `*bold*`,
    `&`, `<` and `>` escaped, and tables as one bullet per row."""
    lines = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if _SEPARATOR.match(stripped):
            continue
        if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
            cells = [_inline(cell.strip()) for cell in _CELL_SPLIT.split(stripped[1:-1])]
            lines.append("• " + " · ".join(cells))
        else:
            lines.append(_inline(line))
    return "\n".join(lines)


def _inline(text: str) -> str:
    links: list[str] = []

    def keep(match: re.Match[str]) -> str:
        label = _plain(match.group(1)).replace("|", "¦")
        links.append(f"<{_absolute(match.group(2))}|{label}>")
        return _PLACEHOLDER.format(len(links) - 1)

    text = _LINK.sub(keep, text)
    text = _BOLD.sub(r"*\1*", _plain(text))
    return _PLACEHOLDERS.sub(lambda match: links[int(match.group(1))], text)


def _plain(text: str) -> str:
    """Markdown's backslash escapes and HTML entities undone, then escaped for Slack."""
    return escape(html.unescape(_BACKSLASHED.sub(r"\1", text)))


def _absolute(url: str) -> str:
    if url.startswith("/"):
        url = settings.PUBLIC_URL + url
    return escape(url).replace("|", "%7C")

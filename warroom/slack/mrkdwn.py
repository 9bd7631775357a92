"""Muster's Markdown as Slack's mrkdwn: a pure function, for answers and for the bot's posts."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from django.conf import settings

from core.text import escape_markdown

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
        target = _absolute(match.group(2))
        # Anything but a web link would be one of Slack's own elements: `<!channel|…>` pings
        # the whole channel, `<@U…>` a person. It is shown as its label alone.
        links.append(f"<{target}|{label}>" if target else label)
        return _PLACEHOLDER.format(len(links) - 1)

    text = _LINK.sub(keep, text)
    text = _BOLD.sub(r"*\1*", _plain(text))
    return _PLACEHOLDERS.sub(lambda match: links[int(match.group(1))], text)


def _plain(text: str) -> str:
    """Markdown's backslash escapes and HTML entities undone, then escaped for Slack."""
    return escape(html.unescape(_BACKSLASHED.sub(r"\1", text)))


def _absolute(url: str) -> str:
    """The link's target for Slack: Muster's paths made absolute; "" unless http(s) or mailto."""
    if url.startswith("/") and not url.startswith("//"):
        url = settings.PUBLIC_URL + url
    if not url.lower().startswith(("http://", "https://", "mailto:")):
        return ""
    return escape(url).replace("|", "%7C")


# What people write, as Slack sends it: `<…>` are Slack's own elements (mentions, channels,
# links), `&amp;`, `&lt;` and `&gt;` what they typed.
_ELEMENT = re.compile(r"<([^<>]*)>")
_MENTION_MOST = 5  # mentions looked up in one message; the rest stay as Slack's ids


def from_slack(text: str, name_of: Callable[[str], str]) -> str:
    """Return what someone wrote in Slack as Muster's Markdown, as they wrote it: `<@U…>` as
    `@name` (`name_of(user_id)`, for the first few), `<#C…|name>` as `#name`, `<!here>` as
    `@here`, `<url|text>` as a Markdown link and `<url>` as the URL, then Slack's `&amp;`,
    `&lt;` and `&gt;` undone. Names and link texts from Slack are escaped for Markdown."""
    looked_up: dict[str, str] = {}

    def element(match: re.Match[str]) -> str:
        inner = html.unescape(match.group(1))
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            user = target[1:]
            if label:
                return "@" + escape_markdown(label.lstrip("@"))
            if user not in looked_up and len(looked_up) < _MENTION_MOST:
                looked_up[user] = name_of(user)
            return "@" + escape_markdown(looked_up.get(user) or user)
        if target.startswith("#"):
            return "#" + escape_markdown(label or target[1:])
        if target.startswith("!"):
            special = target[1:].split("^", 1)[0]
            return escape_markdown(label) if label else "@" + escape_markdown(special)
        if not label or label == target or target == f"mailto:{label}":
            return target.removeprefix("mailto:")
        return f"[{escape_markdown(label)}]({target.replace(')', '%29').replace(' ', '%20')})"

    parts = []
    position = 0
    for match in _ELEMENT.finditer(text):
        parts.append(_unescape(text[position : match.start()]))
        parts.append(element(match))
        position = match.end()
    parts.append(_unescape(text[position:]))
    return "".join(parts)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

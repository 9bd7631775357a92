"""Markdown to safe HTML, once, server-side: markdown-it-py renders, nh3 (ammonia) sanitizes.

Raw HTML in a message is not rendered (markdown-it's `html` option is off) and whatever HTML
the renderer produces is cleaned again against an allow-list, so no script, event handler or
`javascript:` URL gets through either way. Code blocks and tables render.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_RENDERER = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True})
    .enable("table")
    .enable("strikethrough")
)

_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "a", "img", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"style"},
    "td": {"style"},
    "code": {"class"},
    "ol": {"start"},
}
MAX_BODY = 20_000  # characters of Markdown in one message


def render(text: str) -> str:
    """Return sanitized HTML for a message's Markdown."""
    html = _RENDERER.render(text[:MAX_BODY])
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )


def escape(text: str) -> str:
    """Escape text for use inside Markdown written by the bot (labels, titles)."""
    out = []
    for char in text:
        if char in "\\`*_{}[]()#+-.!|<>~":
            out.append("\\" + char)
        elif char == "\n":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def code(text: str) -> str:
    """Return `text` as inline code, whatever backticks it holds (CommonMark: a run of
    backticks longer than any inside, padded by a space when the text starts or ends with one)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{tick}{pad}{text}{pad}{tick}"

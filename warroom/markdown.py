"""Markdown to safe HTML, once, server-side: markdown-it-py renders, nh3 (ammonia) sanitizes.

Raw HTML in a message is not rendered (markdown-it's `html` option is off) and whatever HTML
the renderer produces is cleaned again against an allow-list, so no script, event handler or
`javascript:` URL gets through either way. Code blocks and tables render; a table's column
alignment is a class (`md-align-left`...), not a `style` attribute, so the pages' Content-Security-
Policy needs no inline style. An image is embedded only from a host an admin allowed
(`MUSTER_IMAGE_HOSTS`); any other image becomes a link, so no message makes every reader's
browser fetch an outside address. Untrusted text written *into* Markdown is escaped with
`core.text.escape_markdown`.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import nh3
from django.conf import settings
from django.utils.html import format_html
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

_ALIGNMENTS = ("left", "center", "right")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def embeddable_image(url: str) -> bool:
    """Return whether an image at `url` may be shown inline: an http(s) URL on one of the
    hosts in `settings.IMAGE_HOSTS`. As in the Content-Security-Policy's `img-src`, which lists
    the same entries, "grafana.example.com" allows its default port and "host:3000" that port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return False
    # An entry written as a URL ("https://grafana.example.com/") counts by its host.
    allowed = {h.strip().lower().split("://")[-1].rstrip("/") for h in settings.IMAGE_HOSTS}
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return host in allowed or f"{host}:{_DEFAULT_PORTS[scheme]}" in allowed
    return f"{host}:{port}" in allowed


def _image(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: MutableMapping[str, Any],
) -> str:
    """An allowed image as `<img>`; any other as a link to it, named by its alt text."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    if embeddable_image(src):
        return RendererHTML.image(renderer, tokens, idx, options, env)
    text = renderer.renderInlineAsText(token.children or [], options, env) or src
    return f'<a href="{escapeHtml(src)}">🖼 {escapeHtml(text)}</a>'


def _cell_open(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: MutableMapping[str, Any],
) -> str:
    """A table cell whose alignment is a class rather than a `style` attribute."""
    token = tokens[idx]
    style = str(token.attrGet("style") or "")
    if style:
        token.attrs.pop("style", None)
        align = style.removeprefix("text-align:").strip()
        if align in _ALIGNMENTS:
            token.attrSet("class", f"md-align-{align}")
    return renderer.renderToken(tokens, idx, options, env)


_RENDERER = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True})
    .enable("table")
    .enable("strikethrough")
)
_RENDERER.add_render_rule("image", _image)
_RENDERER.add_render_rule("th_open", _cell_open)
_RENDERER.add_render_rule("td_open", _cell_open)

_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "a", "img", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "th": set(),
    "td": set(),
    "ol": {"start"},
}
_CLASSES = {
    "th": {f"md-align-{a}" for a in _ALIGNMENTS},
    "td": {f"md-align-{a}" for a in _ALIGNMENTS},
}
MAX_BODY = 20_000  # characters of Markdown in one message


def render(text: str, *, limit: int = MAX_BODY, whole_at: str = "") -> str:
    """Return sanitized HTML for a message's (or a runbook's) Markdown.

    Text longer than `limit` is cut there, and the cut says so: how many characters are left
    out, and a link to `whole_at` (where the whole text is) when given.
    """
    html = nh3.clean(
        _RENDERER.render(text[:limit]),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    if len(text) <= limit:
        return html
    more = len(text) - limit
    if whole_at:
        notice = format_html(
            '<p class="truncated">… truncated; {} more characters: <a href="{}">open the '
            "runbook</a></p>",
            f"{more:,}",
            whole_at,
        )
    else:
        notice = format_html(
            '<p class="truncated">… truncated; {} more characters.</p>', f"{more:,}"
        )
    return html + notice


def code(text: str) -> str:
    """Return `text` as inline code, whatever backticks it holds (CommonMark: a run of
    backticks longer than any inside, padded by a space when the text starts or ends with one)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{tick}{pad}{text}{pad}{tick}"

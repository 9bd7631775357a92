"""Text that must stay on one line (incident titles, mail headers), and untrusted text written
into Markdown (alert labels, annotations and titles in the bot's posts and the postmortem
export)."""

from __future__ import annotations

import re

# Every line break and control character (C0, DEL, C1), and Unicode's own line and paragraph
# separators, with the spaces around them.
_BREAKS = re.compile(r"\s*[\x00-\x1f\x7f-\x9f\u2028\u2029]+\s*")

# What may not reach Markdown as itself: CommonMark's line ends (\n, \r) and every other C0
# control, DEL, the C1 controls (U+0085 NEL among them), Unicode's line and paragraph separators,
# and the bidirectional controls that make text read in another order than it is stored.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
# HTML's own characters become entities (so no tag, autolink or entity); the punctuation that
# can start a heading, list, link, image, emphasis, strikethrough, table cell or code span is
# backslash-escaped. The rest (":", "@", "%"...) stays as it is, readable in the raw file.
_MARKDOWN_ESCAPES = {
    **{char: "\\" + char for char in "\\`*_{}[]()#+-.!|~"},
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
}
_MARKDOWN_TABLE = str.maketrans(_MARKDOWN_ESCAPES)


def one_line(text: str) -> str:
    """Return `text` on one line: each run of line breaks and control characters becomes one
    space, and the ends are trimmed."""
    return _BREAKS.sub(" ", text).strip()


def escape_markdown(text: str) -> str:
    """Return untrusted `text` as Markdown that a CommonMark renderer shows as that very text,
    on one line, and of which it makes no element, heading, list, link or table cell.

    Each run of control characters and line separators becomes one space; `&`, `<` and `>`
    become HTML entities; Markdown's own punctuation is backslash-escaped.
    """
    return _CONTROLS.sub(" ", text).translate(_MARKDOWN_TABLE)

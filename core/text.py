"""Text that must stay on one line: incident titles, mail headers."""

from __future__ import annotations

import re

# Every line break and control character (C0, DEL, C1), and Unicode's own line and paragraph
# separators, with the spaces around them.
_BREAKS = re.compile(r"\s*[\x00-\x1f\x7f-\x9f\u2028\u2029]+\s*")


def one_line(text: str) -> str:
    """Return `text` on one line: each run of line breaks and control characters becomes one
    space, and the ends are trimmed."""
    return _BREAKS.sub(" ", text).strip()

"""Names of incident channels: `inc-1042-disk-full-on-db-1`, as Slack and Mattermost take them."""

from __future__ import annotations

import re
import unicodedata

_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def channel_name(prefix: str, number: int, title: str, *, most: int, attempt: int = 0) -> str:
    """Return the channel name for incident `number`: `prefix`, the number and the title's
    words in lowercase ASCII joined by hyphens, at most `most` characters; `attempt` > 0 adds
    `-2`, `-3`… for a name that was taken."""
    prefix = _NOT_ALLOWED.sub("-", prefix.lower()).lstrip("-") or "inc-"
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = _NOT_ALLOWED.sub("-", ascii_title.lower()).strip("-")
    suffix = f"-{attempt + 1}" if attempt else ""
    head = f"{prefix}{number}"
    room = most - len(head) - len(suffix) - 1
    name = f"{head}-{words[:room].rstrip('-')}" if words and room > 0 else head
    return (name.rstrip("-") + suffix)[:most]

"""What a command answers, and the helpers every handler shares to find its incident and write it.

A handler returns a `Reply`: Markdown in chat, with links to incidents and tables for lists; one
short line of plain text by SMS and voice (`fit` cuts it to one SMS segment). This module imports no
handler and no room service, so handlers, the dispatcher and the surfaces can all use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.urls import reverse

from accounts.models import User
from core.text import escape_markdown
from incidents.models import OPEN_STATUSES, Incident
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from oncall import messages
from oncall.models import Page
from warroom.commands.specs import PHONE_SURFACES, Command, spec_for

# One SMS segment; a title longer than what is left is cut.
REPLY_MAX = 160
# A chat table longer than this is a wall; the web UI lists the rest.
TABLE_ROWS = 50

# How a reply (and the voice surface) says that a verb was done.
PAST_TENSE = {"acknowledge": "acknowledged", "resolve": "resolved", "escalate": "escalated"}


@dataclass(frozen=True)
class Reply:
    """What to answer: `text`, whether anything `changed`, and the incident acted on if one."""

    text: str
    changed: bool = False
    incident: int | None = None


# A command's handler: (command, who typed it, the source its actions record, the incident in
# context if any) -> the Reply.
Handler = Callable[[Command, User, str, Incident | None], Reply]


def is_phone(source: str) -> bool:
    """Whether replies to `source` must be short plain text (SMS and voice)."""
    return source in PHONE_SURFACES


def incident_link(number: int, source: str) -> str:
    """An incident as a reply names it: a Markdown link to its web page in chat, `#N` by phone."""
    if is_phone(source):
        return f"#{number}"
    return f"[#{number}]({reverse('web-incident', args=[number])})"


def fit(head: str, tail: str) -> str:
    """Return `head + tail`, `tail` cut so that the whole fits one SMS segment (70 characters
    when the text needs UCS-2, as an SMS would send it)."""
    return messages.fit(head, tail, most_segments=1)


def table_cell(text: str) -> str:
    """Return `text` for a Markdown table cell (escaping "|" too, so it cannot break the row)."""
    return escape_markdown(text)


def utc_time(moment: datetime | None) -> str:
    """Return a moment as replies write it (`Mon 02 Mar 14:05 UTC`), or "-" for none."""
    return f"{moment.astimezone(UTC):%a %d %b %H:%M} UTC" if moment else "-"


# --- which incident --------------------------------------------------------------------------


def target_number(
    command: Command, user: User, source: str, context: Incident | None
) -> int | None:
    """Return the incident meant: named, else in context, else (by phone) the latest page's."""
    if command.incident is not None:
        return command.incident
    if context is not None:
        return context.number
    if is_phone(source):
        return (
            Page.objects.filter(person=user, incident__status__in=OPEN_STATUSES)
            .order_by("-created_at", "-id")
            .values_list("incident__number", flat=True)
            .first()
        )
    return None


def which_incident(command: Command) -> Reply:
    """Ask for the incident's number, with the command's example showing where it goes."""
    spec = spec_for(command.name)
    example = spec.example
    if not any(part.isdigit() and len(part) >= 4 for part in example.split()):
        example = f"{spec.word} #1042{example[len(spec.word) :]}"
    return Reply(f"Which incident? Add its number, e.g. {example}")


def incident_for(
    command: Command, user: User, source: str, context: Incident | None, *, role: str
) -> Incident | Reply:
    """Return the incident the command means, if `user` holds `role`; else the Reply saying why
    not (no number, no such incident, not allowed)."""
    number = target_number(command, user, source, context)
    if number is None:
        return which_incident(command)
    try:
        return access_incident(user, number, role=role)
    except (NotAllowed, IncidentNotFound) as exc:
        return Reply(str(exc), incident=number)

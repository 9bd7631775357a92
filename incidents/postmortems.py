"""Postmortems: starting one and changing its text fields, and what its parts share.

The services change a postmortem and record each change on the audit log. Its action items are
incidents.action_items', its curated timeline incidents.curation's, and the report every export
reads incidents.postmortem_report's. Roles are checked by the callers
(`access_incident(user, number, role=...)`): reading needs observer, editing responder.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.urls import reverse

from accounts.audit import CREATED, UPDATED, diff, record_change, snapshot
from accounts.models import User
from incidents.models import Incident, Postmortem
from incidents.services import IncidentError

FIELDS = ("summary", "impact", "root_cause", "contributing_factors")
FIELD_LABELS = {
    "summary": "Summary",
    "impact": "Impact",
    "root_cause": "Root cause",
    "contributing_factors": "Contributing factors",
}
TEXT_MAX = 50_000  # characters per field: a long postmortem, not a database dump


def urls_of(number: int) -> dict[str, str]:
    """Return where an incident's postmortem lives: its web page and its exports."""
    return {
        name: reverse(route, kwargs={"number": number})
        for name, route in (
            ("web", "web-postmortem"),
            ("markdown", "web-postmortem-md"),
            ("json", "web-postmortem-json"),
            ("print", "web-postmortem-print"),
            ("api_export", "postmortem-export"),
        )
    }


class PostmortemError(IncidentError):
    """A change that cannot be made; the message says why, for the person who tried."""


@transaction.atomic
def get_or_start_postmortem(incident: Incident, by: User | None) -> Postmortem:
    """Return the incident's postmortem, starting an empty one (audited) if it has none."""
    postmortem, created = Postmortem.objects.get_or_create(
        incident=incident, defaults={"created_by": by, "updated_by": by}
    )
    if created:
        record_change(by, CREATED, postmortem, snapshot(postmortem))
    return postmortem


def check_text(value: Any, name: str, limit: int) -> str:
    """Return `value` as a postmortem keeps text (named `name` in errors), at most `limit` long."""
    if not isinstance(value, str):
        raise PostmortemError(f"{name} must be text.")
    # Browsers send \r\n from textareas; keep one kind of line end so diffs stay clean.
    value = value.replace("\r\n", "\n")
    if len(value) > limit:
        raise PostmortemError(f"{name} is too long: at most {limit:,} characters.")
    return value


@transaction.atomic
def update_postmortem(postmortem: Postmortem, by: User | None, **fields: str) -> Postmortem:
    """Change the postmortem's text fields (summary, impact, root_cause, contributing_factors)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise PostmortemError(f"Unknown fields: {', '.join(unknown)}.")
    before = snapshot(postmortem)
    for name, value in fields.items():
        setattr(postmortem, name, check_text(value, FIELD_LABELS[name], TEXT_MAX))
    postmortem.updated_by = by
    postmortem.save()
    changes = {k: v for k, v in diff(before, snapshot(postmortem)).items() if k in FIELDS}
    record_change(by, UPDATED, postmortem, changes)
    return postmortem

"""A postmortem's curated timeline: the incident's entries pinned, hidden or annotated.

The raw timeline is append-only; curation is a row beside each entry it touches. Unless hidden,
the curated timeline shows the key entries (`KEY_KINDS`) and the pinned ones.
"""

from __future__ import annotations

from django.db import transaction

from accounts.audit import CREATED, UPDATED, diff, record_change, snapshot
from accounts.models import User
from incidents.models import EntryKind, Postmortem, TimelineCuration, TimelineEntry
from incidents.postmortems import PostmortemError, check_text

ANNOTATION_MAX = 2_000
# Entries the curated timeline shows unless hidden; alert repeats and attachments are noise.
KEY_KINDS = frozenset(
    {
        EntryKind.OPENED,
        EntryKind.TRIGGERED,
        EntryKind.ACKNOWLEDGED,
        EntryKind.UNACKNOWLEDGED,
        EntryKind.RESOLVED,
        EntryKind.SNOOZED,
        EntryKind.REASSIGNED,
        EntryKind.ESCALATED,
        EntryKind.NOTE,
        EntryKind.SEVERITY_CHANGED,
        EntryKind.MERGED,
        EntryKind.PAGE,
        EntryKind.UNPAGED,
        EntryKind.COMMAND,
        EntryKind.STATUS_UPDATE,
        EntryKind.ACTION,
    }
)


@transaction.atomic
def curate_entry(
    postmortem: Postmortem,
    entry: TimelineEntry,
    *,
    by: User | None,
    pinned: bool | None = None,
    hidden: bool | None = None,
    annotation: str | None = None,
) -> TimelineCuration:
    """Pin, hide or annotate one of the incident's timeline entries (None: leave as it is).

    The entry itself never changes: the raw timeline is append-only.
    """
    if entry.incident_id != postmortem.incident_id:
        raise PostmortemError(
            f"Timeline entry {entry.pk} belongs to another incident, not #"
            f"{postmortem.incident.number}."
        )
    curation, created = TimelineCuration.objects.select_for_update().get_or_create(
        postmortem=postmortem, entry=entry, defaults={"updated_by": by}
    )
    before = {} if created else snapshot(curation)
    if pinned is not None:
        curation.pinned = bool(pinned)
    if hidden is not None:
        curation.hidden = bool(hidden)
    if annotation is not None:
        curation.annotation = check_text(annotation, "The annotation", ANNOTATION_MAX).strip()
    curation.updated_by = by
    curation.save()
    after = snapshot(curation)
    record_change(
        by, CREATED if created else UPDATED, curation, after if created else diff(before, after)
    )
    return curation


def pin_entry(
    postmortem: Postmortem, entry: TimelineEntry, *, by: User | None, pinned: bool = True
) -> TimelineCuration:
    """Pin an entry into the curated timeline (or unpin it)."""
    return curate_entry(postmortem, entry, by=by, pinned=pinned)


def hide_entry(
    postmortem: Postmortem, entry: TimelineEntry, *, by: User | None, hidden: bool = True
) -> TimelineCuration:
    """Leave an entry out of the curated timeline (or bring it back); it is never deleted."""
    return curate_entry(postmortem, entry, by=by, hidden=hidden)


def annotate_entry(
    postmortem: Postmortem, entry: TimelineEntry, *, by: User | None, annotation: str
) -> TimelineCuration:
    """Attach a note for the postmortem to an entry ("" removes it)."""
    return curate_entry(postmortem, entry, by=by, annotation=annotation)

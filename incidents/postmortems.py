"""Postmortems: their fields, action items and curated timeline, and the report they export.

The services change a postmortem and record each change on the audit log; `postmortem_report`
reads everything an export needs in a fixed number of queries. Roles are checked by the callers
(`access_incident(user, number, role=...)`): reading needs observer, editing responder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction

from accounts.audit import CREATED, DELETED, UPDATED, diff, record_change, snapshot
from accounts.models import User
from incidents.models import (
    ActionItem,
    EntryKind,
    Incident,
    Postmortem,
    TimelineCuration,
    TimelineEntry,
    source_label,
)
from incidents.services import IncidentError

FIELDS = ("summary", "impact", "root_cause", "contributing_factors")
FIELD_LABELS = {
    "summary": "Summary",
    "impact": "Impact",
    "root_cause": "Root cause",
    "contributing_factors": "Contributing factors",
}
TEXT_MAX = 50_000  # characters per field: a long postmortem, not a database dump
ANNOTATION_MAX = 2_000
DESCRIPTION_MAX = 1_000
# The most timeline entries one report loads; an export past it says that it was cut.
ENTRY_CAP = 2_000
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


def urls_of(number: int) -> dict[str, str]:
    """Return where an incident's postmortem lives: its web page and its exports."""
    page = f"/incidents/{number}/postmortem/"
    return {
        "web": page,
        "markdown": f"{page}export.md",
        "json": f"{page}export.json",
        "print": f"{page}print/",
        "api_export": f"/api/v1/incidents/{number}/postmortem/export/",
    }


class PostmortemError(IncidentError):
    """A change that cannot be made; the message says why, for the person who tried."""


# --- the postmortem --------------------------------------------------------------------------


@transaction.atomic
def get_or_start_postmortem(incident: Incident, by: User | None) -> Postmortem:
    """Return the incident's postmortem, starting an empty one (audited) if it has none."""
    postmortem, created = Postmortem.objects.get_or_create(
        incident=incident, defaults={"created_by": by, "updated_by": by}
    )
    if created:
        record_change(by, CREATED, postmortem, snapshot(postmortem))
    return postmortem


def _text(value: Any, name: str, limit: int) -> str:
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
        setattr(postmortem, name, _text(value, FIELD_LABELS[name], TEXT_MAX))
    postmortem.updated_by = by
    postmortem.save()
    changes = {k: v for k, v in diff(before, snapshot(postmortem)).items() if k in FIELDS}
    record_change(by, UPDATED, postmortem, changes)
    return postmortem


# --- action items ----------------------------------------------------------------------------


def _item_values(description: Any, owner: User | None, due: date | None) -> str:
    text = _text(description, "The description", DESCRIPTION_MAX).strip()
    if not text:
        raise PostmortemError("An action item needs a description.")
    if owner is not None and not owner.is_active:
        raise PostmortemError(f"{owner.get_username()} is deactivated.")
    if due is not None and not isinstance(due, date):
        raise PostmortemError("The due date must be a date.")
    return text


@transaction.atomic
def add_action_item(
    postmortem: Postmortem,
    *,
    description: str,
    owner: User | None = None,
    due: date | None = None,
    by: User | None,
) -> ActionItem:
    """Add an action item at the end of the postmortem's list."""
    text = _item_values(description, owner, due)
    last = postmortem.action_items.order_by("-order").values_list("order", flat=True).first()
    item = ActionItem.objects.create(
        postmortem=postmortem,
        description=text,
        owner=owner,
        due=due,
        order=(last or 0) + 1,
    )
    record_change(by, CREATED, item, snapshot(item))
    return item


_UNSET: Any = object()


@transaction.atomic
def update_action_item(
    item: ActionItem,
    *,
    by: User | None,
    description: str = _UNSET,
    owner: User | None = _UNSET,
    due: date | None = _UNSET,
    done: bool = _UNSET,
    order: int = _UNSET,
) -> ActionItem:
    """Change an action item; fields not given stay as they are."""
    before = snapshot(item)
    text = _item_values(
        item.description if description is _UNSET else description,
        item.owner if owner is _UNSET else owner,
        item.due if due is _UNSET else due,
    )
    item.description = text
    if owner is not _UNSET:
        item.owner = owner
    if due is not _UNSET:
        item.due = due
    if done is not _UNSET:
        item.done = bool(done)
    if order is not _UNSET:
        item.order = int(order)
    item.save()
    record_change(by, UPDATED, item, diff(before, snapshot(item)))
    return item


@transaction.atomic
def delete_action_item(item: ActionItem, *, by: User | None) -> None:
    """Delete an action item (the audit log keeps what it said)."""
    before, pk = snapshot(item), item.pk
    item.delete()
    record_change(by, DELETED, item, before, object_id=pk)


# --- the curated timeline --------------------------------------------------------------------


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
        curation.annotation = _text(annotation, "The annotation", ANNOTATION_MAX).strip()
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


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEntry:
    """A timeline entry as the postmortem sees it."""

    id: int
    at: datetime
    kind: str
    actor: str
    source: str
    message: str
    data: dict
    pinned: bool = False
    hidden: bool = False
    annotation: str = ""

    @property
    def key(self) -> bool:
        return self.kind in KEY_KINDS

    @property
    def shown(self) -> bool:
        """Whether the curated timeline shows it: a key entry or pinned, and not hidden."""
        return (self.key or self.pinned) and not self.hidden


@dataclass(frozen=True)
class PageReport:
    """One page: when it went out, to whom, how, what became of it and when it was answered."""

    page: int
    person: str
    channel: str
    sent_at: datetime
    status: str  # the last status the timeline recorded: sent, delivered, answered, failed, …
    delivered_at: datetime | None
    answered_at: datetime | None
    answered_how: str  # "answered the call", "acknowledged via SMS", or ""

    @property
    def delivered_after(self) -> timedelta | None:
        return self.delivered_at - self.sent_at if self.delivered_at else None

    @property
    def answered_after(self) -> timedelta | None:
        return self.answered_at - self.sent_at if self.answered_at else None


@dataclass(frozen=True)
class ActionItemReport:
    id: int
    description: str
    owner: str | None
    due: date | None
    done: bool


@dataclass(frozen=True)
class Report:
    """Everything a postmortem export shows, read once."""

    number: int
    title: str
    service: str
    severity: int
    status: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_via: str | None  # a Source value: web, chat, sms, voice, api, …
    resolved_at: datetime | None
    resolved_by: str | None
    started: bool  # whether anyone has started the postmortem
    summary: str
    impact: str
    root_cause: str
    contributing_factors: str
    updated_at: datetime | None
    updated_by: str | None
    action_items: tuple[ActionItemReport, ...]
    entries: tuple[ReportEntry, ...]  # the raw timeline, oldest first (at most ENTRY_CAP)
    pages: tuple[PageReport, ...]
    total_entries: int  # on the incident's timeline
    loaded_entries: int  # of them, the oldest loaded (pinned ones past these come too)

    @property
    def truncated(self) -> bool:
        return self.total_entries > self.loaded_entries

    @property
    def curated(self) -> tuple[ReportEntry, ...]:
        """The curated timeline: key entries and pinned ones, minus hidden ones."""
        return tuple(e for e in self.entries if e.shown)

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return self.acknowledged_at - self.opened_at if self.acknowledged_at else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self.resolved_at - self.opened_at if self.resolved_at else None

    def field(self, name: str) -> str:
        return getattr(self, name)


def postmortem_report(incident: Incident, *, cap: int = ENTRY_CAP) -> Report:
    """Return the postmortem report of `incident` in at most seven queries.

    The curated timeline (`Report.curated`) is, by default, the key entries (opened,
    re-triggered, acknowledged, unacknowledged, resolved, snoozed, reassigned, escalated, notes,
    severity changes, merges, pages, nobody paged, chat commands, status updates and runbook
    actions: everything but alerts attaching, repeating and resolving), plus the entries pinned,
    minus those hidden, each with its annotation. At most `cap` entries are loaded, oldest
    first (pinned ones past the cap are added); `Report.truncated` says when that cut any.

    Durations run from when the incident opened to its first acknowledgement and to its
    resolution; a page is answered when its call was answered with a key or when the person
    paged acknowledged the incident.
    """
    postmortem = Postmortem.objects.select_related("updated_by").filter(incident=incident).first()
    raw = list(incident.timeline.order_by("at", "id")[: cap + 1])
    total = loaded = len(raw)
    if total > cap:
        raw = raw[:cap]
        loaded, total = cap, incident.timeline.count()
    curations: dict[int, TimelineCuration] = {}
    items: list[ActionItem] = []
    if postmortem is not None:
        curations = {
            c.entry_id: c for c in postmortem.curations.select_related("entry").order_by("id")
        }
        items = list(postmortem.action_items.select_related("owner"))
        in_raw = {e.pk for e in raw}
        beyond = [c.entry for c in curations.values() if c.entry_id not in in_raw and c.pinned]
        raw = sorted([*raw, *beyond], key=lambda e: (e.at, e.pk))
    entries = tuple(_entry(e, curations.get(e.pk)) for e in raw)
    opened = next((e for e in entries if e.kind == EntryKind.OPENED), None)
    ack = next((e for e in entries if e.kind == EntryKind.ACKNOWLEDGED), None)
    resolved = next((e for e in reversed(entries) if e.kind == EntryKind.RESOLVED), None)
    acknowledged_at = ack.at if ack else incident.acknowledged_at
    return Report(
        number=incident.number,
        title=incident.title,
        service=incident.service.name,
        severity=incident.severity,
        status=incident.status,
        opened_at=opened.at if opened else incident.created_at,
        acknowledged_at=acknowledged_at,
        acknowledged_by=ack.actor if ack else None,
        acknowledged_via=ack.source if ack else None,
        resolved_at=incident.resolved_at or (resolved.at if resolved else None),
        resolved_by=resolved.actor if resolved else None,
        started=postmortem is not None,
        summary=postmortem.summary if postmortem else "",
        impact=postmortem.impact if postmortem else "",
        root_cause=postmortem.root_cause if postmortem else "",
        contributing_factors=postmortem.contributing_factors if postmortem else "",
        updated_at=postmortem.updated_at if postmortem else None,
        updated_by=postmortem.updated_by.get_username()
        if postmortem and postmortem.updated_by
        else None,
        action_items=tuple(
            ActionItemReport(
                id=i.pk,
                description=i.description,
                owner=i.owner.get_username() if i.owner else None,
                due=i.due,
                done=i.done,
            )
            for i in items
        ),
        entries=entries,
        pages=_pages(raw, entries),
        total_entries=total,
        loaded_entries=loaded,
    )


def _entry(entry: TimelineEntry, curation: TimelineCuration | None) -> ReportEntry:
    return ReportEntry(
        id=entry.pk,
        at=entry.at,
        kind=entry.kind,
        actor=entry.actor_name,
        source=entry.source,
        message=entry.message,
        data=entry.data if isinstance(entry.data, dict) else {},
        pinned=bool(curation and curation.pinned),
        hidden=bool(curation and curation.hidden),
        annotation=curation.annotation if curation else "",
    )


def _pages(raw: list[TimelineEntry], entries: tuple[ReportEntry, ...]) -> tuple[PageReport, ...]:
    """Follow each page through its timeline entries (oncall records them as kind `page`, with
    data {"page", "person", "channel", "status"}); one query for the names of those paged."""
    seen: dict[int, dict[str, Any]] = {}
    for entry in entries:
        data = entry.data
        if entry.kind != EntryKind.PAGE or not isinstance(data.get("page"), int):
            continue
        page = seen.setdefault(
            data["page"], {"sent_at": entry.at, "person": None, "channel": "", "status": ""}
        )
        if data.get("person") is not None:
            page["person"] = data["person"]
        page["channel"] = data.get("channel") or page["channel"]
        status = str(data.get("status", ""))
        if status == "sent" and "sent" not in page:
            page["sent"] = True
            page["sent_at"] = entry.at  # the first attempt may have failed and been retried
        if status:
            page["status"] = status
        if status in ("delivered", "completed", "answered") and "delivered_at" not in page:
            page["delivered_at"] = entry.at
        if status == "answered" and "answered_at" not in page:
            page["answered_at"], page["answered_how"] = entry.at, "answered the call"
    people = {p["person"] for p in seen.values() if p["person"] is not None}
    names = dict(User.objects.filter(pk__in=people).values_list("pk", "username")) if people else {}
    actor_ids = {e.pk: e.actor_id for e in raw}
    acks = [e for e in entries if e.kind == EntryKind.ACKNOWLEDGED and actor_ids.get(e.id)]
    reports = []
    for page_id, page in seen.items():
        answered_at, how = page.get("answered_at"), page.get("answered_how", "")
        for ack in acks:
            if actor_ids[ack.id] == page["person"] and ack.at >= page["sent_at"]:
                if answered_at is None or ack.at < answered_at:
                    answered_at, how = ack.at, f"acknowledged via {source_label(ack.source)}"
                break
        reports.append(
            PageReport(
                page=page_id,
                person=names.get(page["person"], f"user {page['person']}")
                if page["person"] is not None
                else "",
                channel=page["channel"],
                sent_at=page["sent_at"],
                status=page["status"],
                delivered_at=page.get("delivered_at"),
                answered_at=answered_at,
                answered_how=how,
            )
        )
    return tuple(sorted(reports, key=lambda p: (p.sent_at, p.page)))

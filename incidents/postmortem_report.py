"""The postmortem report: everything an export shows (fields, action items, the raw and curated
timeline, each page's fate, durations), read in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from accounts.models import User
from incidents.curation import KEY_KINDS
from incidents.models import (
    ActionItem,
    EntryKind,
    Incident,
    Postmortem,
    TimelineCuration,
    TimelineEntry,
    source_label,
)

# The most timeline entries one report loads; an export past it says that it was cut.
ENTRY_CAP = 2_000


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
    data {"page", "person", "channel", "status"}, and "level" for an escalation's); one query
    for the names of those paged."""
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

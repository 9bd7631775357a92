"""Postmortem exports: pure functions from a `Report` to Markdown, JSON and printable HTML.

Times are UTC throughout: "2025-03-01 02:04:30 UTC" in Markdown and HTML, ISO 8601 with "Z"
in JSON. Markdown is ready to paste into a wiki; JSON carries the whole loaded timeline (hidden
entries too, flagged) for machines.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.template.loader import render_to_string

from core.text import escape_markdown
from incidents.models import source_label
from incidents.postmortem_report import ENTRY_CAP, PageReport, Report
from incidents.postmortems import FIELD_LABELS, FIELDS

FORMATS = ("markdown", "json", "html")
CONTENT_TYPES = {
    "markdown": "text/markdown; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}
EXTENSIONS = {"markdown": "md", "json": "json", "html": "html"}
NOT_WRITTEN = "_Not written yet._"


def filename(report: Report, fmt: str) -> str:
    """Return the file name a download of `report` in `fmt` gets."""
    return f"postmortem-{report.number}.{EXTENSIONS[fmt]}"


# --- shared wording --------------------------------------------------------------------------


def utc(moment: datetime | None) -> str:
    """Return `moment` as "2025-03-01 02:04:30 UTC" ("" for None)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime | None) -> str | None:
    """Return `moment` as ISO 8601 UTC with a "Z" (None for None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def human(span: timedelta | None) -> str:
    """Return a duration as people say it: "4m 30s", "1h 2m 0s", "2d 3h 0m" ("" for None)."""
    if span is None:
        return ""
    seconds = max(0, round(span.total_seconds()))
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def via(source: str | None) -> str:
    """Return a source as the timeline names it ("SMS", "chat", "API")."""
    if not source:
        return ""
    return source_label(source)


def _seconds(span: timedelta | None) -> float | None:
    return span.total_seconds() if span is not None else None


def acknowledged_line(report: Report, name: Callable[[str], str] = str) -> str:
    """Return "2025-03-01 02:04:30 UTC by bob via SMS" (or "not acknowledged"); `name` writes
    the person's name (the Markdown export escapes it)."""
    if report.acknowledged_at is None:
        return "not acknowledged"
    who = f" by {name(report.acknowledged_by)}" if report.acknowledged_by else ""
    how = f" via {via(report.acknowledged_via)}" if report.acknowledged_via else ""
    return f"{utc(report.acknowledged_at)}{who}{how}"


def resolved_line(report: Report, name: Callable[[str], str] = str) -> str:
    if report.resolved_at is None:
        return "not resolved"
    who = f" by {name(report.resolved_by)}" if report.resolved_by else ""
    return f"{utc(report.resolved_at)}{who}"


def page_outcome(page: PageReport) -> str:
    """Return how a page was answered: "acknowledged via SMS after 4m 30s", or "no answer"."""
    if page.answered_at is None:
        return "no answer"
    return f"{page.answered_how} after {human(page.answered_after)}"


def truncation_note(report: Report) -> str:
    return (
        f"The timeline has {report.total_entries:,} entries; this export holds the first "
        f"{report.loaded_entries:,} (and any pinned later ones). The API's timeline has them all."
    )


# --- Markdown --------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """Return text that came from outside (alert titles, names, timeline messages) as Markdown
    that shows just that text, on one line: fit for a heading, a table cell or a list item."""
    return escape_markdown(" ".join(str(text).split()))


def to_markdown(report: Report) -> str:
    """Return the postmortem as Markdown, ready to paste into a wiki. Only the postmortem's
    free-text fields are Markdown; every other value is escaped (`_cell`)."""
    out = [f"# Postmortem: #{report.number} {_cell(report.title)}", ""]
    out += [
        f"| Incident | #{report.number} |",
        "| --- | --- |",
        f"| Title | {_cell(report.title)} |",
        f"| Service | {_cell(report.service)} |",
        f"| Severity | {_cell(report.severity)} |",
        f"| Status | {_cell(report.status)} |",
        f"| Opened | {utc(report.opened_at)} |",
        f"| Acknowledged | {acknowledged_line(report, _cell)} |",
        f"| Resolved | {resolved_line(report, _cell)} |",
        "",
        "## Key durations",
        "",
        f"- Time to acknowledge: {human(report.time_to_acknowledge) or 'not acknowledged'}",
        f"- Time to resolve: {human(report.time_to_resolve) or 'not resolved'}",
        "",
    ]
    if report.pages:
        out += [
            "### Pages",
            "",
            "| Sent (UTC) | To | Channel | Final status | Delivered after | Answered |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {utc(p.sent_at)} | {_cell(p.person)} | {_cell(p.channel)} | {_cell(p.status)} | "
            f"{human(p.delivered_after) or '—'} | {page_outcome(p)} |"
            for p in report.pages
        ]
        out.append("")
    for name in FIELDS:
        text = report.field(name).strip()
        out += [f"## {FIELD_LABELS[name]}", "", text or NOT_WRITTEN, ""]
    out += ["## Action items", ""]
    if report.action_items:
        for item in report.action_items:
            details = [f"owner: {_cell(item.owner)}" if item.owner else "no owner"]
            if item.due:
                details.append(f"due {item.due.isoformat()}")
            text = _cell(item.description)
            out.append(f"- [{'x' if item.done else ' '}] {text} ({', '.join(details)})")
    else:
        out.append("_None yet._")
    out += [
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Actor | Source | What happened | Annotation |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {utc(e.at)} | {_cell(e.actor)} | {_cell(via(e.source))} | "
        f"{'📌 ' if e.pinned else ''}{_cell(e.message)} | {_cell(e.annotation)} |"
        for e in report.curated
    ]
    if report.truncated:
        out += ["", f"_{truncation_note(report)}_"]
    return "\n".join(out) + "\n"


# --- JSON ------------------------------------------------------------------------------------


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def to_json(report: Report) -> dict[str, Any]:
    """Return the postmortem as JSON values: its fields, action items, durations in seconds,
    pages, and the whole loaded timeline (hidden entries too), each entry flagged."""
    return {
        "incident": {
            "number": report.number,
            "title": report.title,
            "service": report.service,
            "severity": report.severity,
            "status": report.status,
            "opened_at": iso(report.opened_at),
            "acknowledged_at": iso(report.acknowledged_at),
            "acknowledged_by": report.acknowledged_by,
            "acknowledged_via": report.acknowledged_via,
            "resolved_at": iso(report.resolved_at),
            "resolved_by": report.resolved_by,
        },
        "postmortem": {
            "started": report.started,
            **{name: report.field(name) for name in FIELDS},
            "updated_at": iso(report.updated_at),
            "updated_by": report.updated_by,
        },
        "durations": {
            "time_to_acknowledge_seconds": _seconds(report.time_to_acknowledge),
            "time_to_resolve_seconds": _seconds(report.time_to_resolve),
        },
        "pages": [
            {
                "page": p.page,
                "person": p.person,
                "channel": p.channel,
                "sent_at": iso(p.sent_at),
                "status": p.status,
                "delivered_at": iso(p.delivered_at),
                "delivered_after_seconds": _seconds(p.delivered_after),
                "answered_at": iso(p.answered_at),
                "answered_after_seconds": _seconds(p.answered_after),
                "answered_how": p.answered_how or None,
            }
            for p in report.pages
        ],
        "action_items": [
            {
                "id": i.id,
                "description": i.description,
                "owner": i.owner,
                "due": _day(i.due),
                "done": i.done,
            }
            for i in report.action_items
        ],
        "timeline": [
            {
                "id": e.id,
                "at": iso(e.at),
                "kind": e.kind,
                "actor": e.actor,
                "source": e.source,
                "message": e.message,
                "data": e.data,
                "key": e.key,
                "pinned": e.pinned,
                "hidden": e.hidden,
                "annotation": e.annotation,
            }
            for e in report.entries
        ],
        "timeline_total": report.total_entries,
        "timeline_truncated": report.truncated,
        "timeline_cap": ENTRY_CAP,
    }


# --- printable HTML --------------------------------------------------------------------------


def facts(report: Report) -> dict[str, str]:
    """Return the incident's key moments and durations as the pages show them."""
    return {
        "opened": utc(report.opened_at),
        "acknowledged": acknowledged_line(report),
        "resolved": resolved_line(report),
        "tta": human(report.time_to_acknowledge) or "not acknowledged",
        "ttr": human(report.time_to_resolve) or "not resolved",
    }


def page_rows(report: Report) -> list[dict[str, Any]]:
    """Return each page with its times and outcome as the pages show them."""
    return [
        {
            "page": p,
            "sent": utc(p.sent_at),
            "delivered": human(p.delivered_after) or "—",
            "answered": page_outcome(p),
        }
        for p in report.pages
    ]


def to_html(report: Report) -> str:
    """Return the postmortem as a standalone printable HTML page."""
    return render_to_string(
        "incidents/postmortem_print.html",
        {
            "report": report,
            "fields": [(FIELD_LABELS[n], report.field(n).strip()) for n in FIELDS],
            "facts": facts(report),
            "pages": page_rows(report),
            "items": [{"item": i, "due": _day(i.due) or ""} for i in report.action_items],
            "timeline": [
                {"entry": e, "at": utc(e.at), "source": via(e.source)} for e in report.curated
            ],
            "truncation": truncation_note(report) if report.truncated else "",
        },
    )

"""What the war-room bot says: Markdown for the opening post and for each timeline entry.

Pure functions of plain values (no database), so every line the bot can post is tested on its
own; `warroom.receivers` gathers the values and posts. Everything that came from outside (alert
labels, titles, usernames, notes) is escaped, every link must be http(s), and long values are
cut, so an alert cannot break the room's layout or smuggle in a script or a `javascript:` link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from core.text import escape_markdown
from incidents.models import EntryKind
from warroom.markdown import embeddable_image

MAX_LABELS = 25
MAX_LABEL_KEY = 60
MAX_LABEL_VALUE = 200
MAX_ANNOTATION = 500
MAX_LINKS = 10
MAX_IMAGES = 2
MAX_LINK_TEXT = 80
MAX_URL = 2048
MAX_LINE = 500  # one timeline entry's text
RUNBOOK_LINES = 3
LISTED_ALERTS = 5  # alert summaries listed in one post; the rest are counted

# Annotations shown under the labels, in this order, when they say something new.
SHOWN_ANNOTATIONS = ("summary", "description", "message")
# Labels first in the table; the others follow in name order.
FIRST_LABELS = ("alertname", "severity", "service", "instance", "job")

LINK_NAMES = {
    "generator": "Source graph",
    "graph": "Graph",
    "dashboard": "Dashboard",
    "panel": "Panel",
    "runbook": "Runbook",
    "silence": "Silence",
    "image": "Image",
    "source": "Source",
    "link": "Link",
}

# Timeline entries that change the incident's state: the room's header follows them.
STATE_KINDS = frozenset(
    {
        EntryKind.ACKNOWLEDGED,
        EntryKind.UNACKNOWLEDGED,
        EntryKind.RESOLVED,
        EntryKind.TRIGGERED,
        EntryKind.SNOOZED,
        EntryKind.SEVERITY_CHANGED,
        EntryKind.REASSIGNED,
        EntryKind.ESCALATED,
        EntryKind.MERGED,
    }
)

_KIND_ICONS = {
    EntryKind.ALERT_ATTACHED: "🔔",
    EntryKind.ALERT_REPEATED: "🔁",
    EntryKind.ALERT_RESOLVED: "✅",
    EntryKind.TRIGGERED: "🚨",
    EntryKind.ACKNOWLEDGED: "👍",
    EntryKind.UNACKNOWLEDGED: "↩️",
    EntryKind.RESOLVED: "✅",
    EntryKind.SNOOZED: "😴",
    EntryKind.REASSIGNED: "👤",
    EntryKind.ESCALATED: "⏫",
    EntryKind.NOTE: "📝",
    EntryKind.SEVERITY_CHANGED: "🌡️",
    EntryKind.MERGED: "🔀",
    EntryKind.PAGE: "📟",
    EntryKind.UNPAGED: "⚠️",
    EntryKind.STATUS_UPDATE: "📣",
    EntryKind.ACTION: "⚙️",
}

_PAGE_ICONS = {
    "sent": "📟",
    "delivered": "📬",
    "answered": "📞",
    "completed": "📞",
    "retry": "🔁",
    "held": "⏳",
    "failed": "❌",
    "unknown": "❓",
}


# --- values the receiver gathers -------------------------------------------------------------


@dataclass(frozen=True)
class AlertView:
    """The parts of an alert the opening post shows."""

    summary: str
    severity: int
    source: str = ""  # the integration's name
    labels: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)
    links: Sequence[Any] = ()  # as stored: [{"kind", "url", "text"}]


@dataclass(frozen=True)
class RunbookView:
    """The runbook matched to the incident: its title, where to read it, its first lines."""

    title: str
    url: str = ""
    body: str = ""


@dataclass(frozen=True)
class Opening:
    """Everything the opening post says about a new incident."""

    number: int
    title: str
    service: str
    severity: int
    urgency: str
    status: str
    opened_by: str  # "prometheus-prod via alert"
    alert: AlertView | None = None
    other_alerts: Sequence[str] = ()  # summaries of further alerts, the first few
    other_alert_count: int = 0  # how many further alerts in all
    runbook: RunbookView | None = None
    on_call: Sequence[str] | None = ()  # usernames; None: could not be found out


# --- small helpers ---------------------------------------------------------------------------


def cut(text: Any, limit: int) -> str:
    """Return `text` as a string of at most `limit` characters, marking a cut with "…"."""
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def plain(text: Any, limit: int = MAX_LINE) -> str:
    """Return untrusted text cut and escaped for the bot's Markdown."""
    return escape_markdown(cut(text, limit))


def safe_url(url: Any) -> str | None:
    """Return `url` ready for a Markdown link if it is an absolute http(s) URL, else None.

    Characters that would end the link early or break out of it are percent-encoded.
    """
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def markdown_link(text: str, url: str) -> str:
    """Return a Markdown link; `url` must have come through `safe_url`."""
    return f"[{plain(text, MAX_LINK_TEXT)}]({url})"


def safe_links(links: Iterable[Any]) -> list[dict[str, str]]:
    """Return the stored links worth showing: http(s) only, each URL once, at most MAX_LINKS."""
    kept: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in links or ():
        if not isinstance(item, Mapping):
            continue
        url = safe_url(item.get("url"))
        if url is None or url in seen:
            continue
        seen.add(url)
        kind = item.get("kind") if item.get("kind") in LINK_NAMES else "link"
        text = item.get("text") if isinstance(item.get("text"), str) else ""
        kept.append({"kind": kind, "url": url, "text": text.strip()})
        if len(kept) == MAX_LINKS:
            break
    return kept


# --- the opening post ------------------------------------------------------------------------


def labels_table(labels: Mapping[str, Any]) -> str:
    """Return the labels as a two-column Markdown table (empty string for no labels)."""
    if not labels:
        return ""
    keys = [k for k in FIRST_LABELS if k in labels]
    keys += sorted((k for k in labels if k not in FIRST_LABELS), key=str)
    rows = ["| label | value |", "| --- | --- |"]
    for key in keys[:MAX_LABELS]:
        rows.append(
            f"| {plain(key, MAX_LABEL_KEY)} | {plain(labels[key], MAX_LABEL_VALUE) or ' '} |"
        )
    text = "\n".join(rows)
    if len(keys) > MAX_LABELS:
        text += f"\n\n…and {len(keys) - MAX_LABELS} more labels."
    return text


def annotations_section(annotations: Mapping[str, Any], *, already: Iterable[str] = ()) -> str:
    """Return the annotations worth showing (description and the like) as quotes."""
    said = {s.strip() for s in already if s}
    quotes = []
    for key in SHOWN_ANNOTATIONS:
        value = annotations.get(key) if annotations else None
        if not isinstance(value, str) or not value.strip() or value.strip() in said:
            continue
        said.add(value.strip())
        quotes.append(f"> {plain(value.strip(), MAX_ANNOTATION)}")
    return "\n>\n".join(quotes)


def links_section(links: Iterable[Any]) -> str:
    """Return the alert's graphs, dashboards and other links, with previews of its images that
    are on a host an admin allowed (`MUSTER_IMAGE_HOSTS`); the others stay links."""
    kept = safe_links(links)
    if not kept:
        return ""
    parts = []
    images = []
    for item in kept:
        parts.append(markdown_link(item["text"] or LINK_NAMES[item["kind"]], item["url"]))
        if item["kind"] == "image" and len(images) < MAX_IMAGES and embeddable_image(item["url"]):
            images.append(f"![{plain(item['text'] or 'graph', MAX_LINK_TEXT)}]({item['url']})")
    text = "🔗 **Links:** " + " · ".join(parts)
    if images:
        text += "\n\n" + "\n".join(images)
    return text


def runbook_section(runbook: RunbookView | None) -> str:
    """Return the matched runbook: its title as a link, and its first lines."""
    if runbook is None:
        return ""
    url = safe_url(runbook.url) if runbook.url else None
    named = runbook.title or "Runbook"
    title = markdown_link(named, url) if url else f"**{plain(runbook.title, 200)}**"
    lines = []
    for line in (runbook.body or "").splitlines():
        line = line.strip().lstrip("#").strip()  # a heading reads as a plain line here
        if line and line != runbook.title.strip():
            lines.append(f"> {plain(line, 200)}")
        if len(lines) == RUNBOOK_LINES:
            break
    text = "\n".join([f"📖 **Runbook:** {title}", *lines])
    return text + "\n\nType `runbook` to read all of it."


def more_alerts(count: int, summaries: Sequence[str], *, verb: str = "new") -> str:
    """Return a list of the first few alerts' summaries and how many more there are."""
    noun = "alert" if count == 1 else "alerts"
    lines = [f"- {plain(s, 200)}" for s in summaries[:LISTED_ALERTS]]
    rest = count - len(lines)
    if rest > 0:
        lines.append(f"- +{rest} more {'alert' if rest == 1 else 'alerts'}")
    return "\n".join([f"**{count} {verb} {noun}** in the group:", *lines])


def on_call_line(service: str, people: Sequence[str] | None, *, paging: bool) -> str:
    """Return who is on call for the service, and that they are being paged."""
    if people is None:
        return ""
    if not people:
        return f"👥 Nobody is on call for **{plain(service, 200)}**."
    names = ", ".join(f"**{plain(p, 150)}**" for p in people)
    return f"👥 **On call** for {plain(service, 200)}: {names}" + (
        " — paging now." if paging else "."
    )


def opening_message(opening: Opening) -> str:
    """Return the bot's first post in an incident's room."""
    head = (
        f"🚨 **Incident #{opening.number} opened** on **{plain(opening.service, 200)}** — "
        f"SEV{opening.severity}, {plain(opening.urgency, 20)} urgency, "
        f"{plain(opening.status, 20)}\n"
        f"**{plain(opening.title, 300)}**\n"
        f"Opened by {plain(opening.opened_by, 200)}."
    )
    blocks = [head]
    alert = opening.alert
    if alert is not None:
        if alert.summary.strip() and alert.summary.strip() != opening.title.strip():
            blocks.append(f"🔔 {plain(alert.summary, 300)}")
        blocks.append(labels_table(alert.labels))
        blocks.append(annotations_section(alert.annotations, already=[alert.summary]))
        blocks.append(links_section(alert.links))
    blocks.append(runbook_section(opening.runbook))
    if opening.other_alert_count:
        blocks.append(
            "📥 " + more_alerts(opening.other_alert_count, opening.other_alerts, verb="more")
        )
    blocks.append(
        on_call_line(opening.service, opening.on_call, paging=opening.status == "triggered")
    )
    return "\n\n".join(b for b in blocks if b)


# --- afterwards: one line per timeline entry -------------------------------------------------


def alert_summary(kind: str, message: str, actor_name: str, data: Mapping[str, Any]) -> str:
    """Return the alert's summary from an alert entry's message (which adds who sent it)."""
    prefixes = {
        EntryKind.ALERT_ATTACHED: f"Alert from {actor_name}: ",
        EntryKind.ALERT_RESOLVED: f"Alert resolved at {actor_name}: ",
        EntryKind.ALERT_REPEATED: f"Alert repeated {data.get('occurrences')} times: ",
    }
    prefix = prefixes.get(kind, "")
    return message[len(prefix) :] if prefix and message.startswith(prefix) else message


def alerts_line(
    kind: str, summary: str, source: str = "", data: Mapping[str, Any] | None = None
) -> str:
    """Return the line for one alert entry (attached, resolved, repeated)."""
    data = data or {}
    where = f" ({plain(source, 100)})" if source else ""
    if kind == EntryKind.ALERT_ATTACHED:
        return f"🔔 New alert in the group: **{plain(summary, 300)}**{where}"
    if kind == EntryKind.ALERT_RESOLVED:
        return f"✅ Alert resolved: {plain(summary, 300)}{where}"
    occurrences = data.get("occurrences")
    times = f"{occurrences} times" if isinstance(occurrences, int) else "again"
    return f"🔁 Alert repeated {times}: {plain(summary, 300)}"


def alerts_burst(kind: str, count: int, summaries: Sequence[str]) -> str:
    """Return one post for many alert entries of one kind that came together."""
    if kind == EntryKind.ALERT_RESOLVED:
        return "✅ " + more_alerts(count, summaries, verb="resolved")
    if kind == EntryKind.ALERT_REPEATED:  # a re-sent group reached a milestone together
        return "🔁 " + more_alerts(count, summaries, verb="repeated")
    return "📥 " + more_alerts(count, summaries)


def held_alerts(kind: str, count: int, latest: str) -> str:
    """Return the post for alerts held back while they arrived too fast to post one by one."""
    noun = "alert" if count == 1 else "alerts"
    what = {EntryKind.ALERT_RESOLVED: "resolved", EntryKind.ALERT_REPEATED: "repeated"}.get(
        kind, "in the group"
    )
    text = f"📥 **+{count} more {noun}** {what}"
    return text + (f" (latest: {plain(latest, 300)})" if latest else "") + "."


def page_line(message: str, data: Mapping[str, Any], *, step: int | None = None) -> str:
    """Return the line for a PAGE entry: a step firing, a page sent, delivered, failed, …"""
    status = data.get("status")
    icon = _PAGE_ICONS.get(status, "📟")
    text = plain(message)
    if status == "sent" and step is not None:
        text += f" (level {step + 1})"
    return f"{icon} {text}"


def entry_line(kind: str, message: str, actor_name: str, data: Mapping[str, Any]) -> str | None:
    """Return the bot's line for a timeline entry, or None for one the bot does not echo.

    Alert and page entries have their own functions (they need more than the entry).
    """
    if kind in (
        EntryKind.COMMAND,
        EntryKind.CHAT_MESSAGE,
        EntryKind.OPENED,
        EntryKind.STATUS_UPDATE,
    ):
        # The command and its reply are in the room; the opening has its post; a status update
        # is posted by its delivery (warroom.status_updates), with the subscribers it reached.
        return None
    icon = _KIND_ICONS.get(kind, "•")
    if kind == EntryKind.NOTE:
        return f"{icon} **{plain(actor_name, 150)}** noted: {plain(message)}"
    if kind == EntryKind.UNPAGED:
        return f"{icon} **{plain(message)}**"
    if kind in (EntryKind.RESOLVED, EntryKind.ACKNOWLEDGED, EntryKind.TRIGGERED):
        return f"{icon} **{plain(message)}**"
    return f"{icon} {plain(message)}"


def incident_event(
    *, number: int, status: str, severity: int, title: str, assignee: str | None
) -> dict[str, Any]:
    """Return the room event that tells clients the incident's state changed."""
    return {
        "type": "incident",
        "incident": {
            "number": number,
            "status": status,
            "severity": severity,
            "title": title,
            "assignee": assignee,
        },
    }

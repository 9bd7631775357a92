"""The postmortem exports against one fixed timeline: exact Markdown, exact JSON, and HTML."""

from __future__ import annotations

from datetime import UTC, date, datetime

from incidents.postmortem_export import filename, human, to_html, to_json, to_markdown
from incidents.postmortem_report import ActionItemReport, PageReport, Report, ReportEntry


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2025, 3, 1, hour, minute, second, tzinfo=UTC)


ENTRIES = (
    ReportEntry(
        1,
        at(2, 0),
        "opened",
        "prometheus",
        "alert",
        "Incident #1042 opened: Disk full on db-1",
        {"severity": 1, "urgency": "high"},
    ),
    ReportEntry(
        2,
        at(2, 0, 5),
        "page",
        "Muster",
        "system",
        "Escalation level 1: paging bob",
        {"escalation": 7, "step": 0, "cycle": 0},
    ),
    ReportEntry(
        3,
        at(2, 0, 6),
        "page",
        "Muster",
        "system",
        "Paged bob by SMS",
        {"page": 31, "person": 2, "channel": "sms", "status": "sent"},
    ),
    ReportEntry(
        4,
        at(2, 0, 9),
        "page",
        "Muster",
        "system",
        "SMS to bob delivered",
        {"page": 31, "person": 2, "channel": "sms", "status": "delivered"},
    ),
    ReportEntry(5, at(2, 1), "alert_repeated", "prometheus", "alert", "Alert repeated", {}),
    ReportEntry(
        6,
        at(2, 4, 36),
        "acknowledged",
        "bob",
        "sms",
        "Acknowledged by bob via SMS",
        {},
        pinned=True,
        annotation="Woken at home",
    ),
    ReportEntry(7, at(2, 10), "note", "bob", "chat", "db-1 disk | 99% full", {}),
    ReportEntry(8, at(2, 12), "note", "carol", "chat", "lunch order?", {}, hidden=True),
    ReportEntry(
        9,
        at(2, 15),
        "alert_attached",
        "prometheus",
        "alert",
        "Alert attached: WAL archive failing",
        {},
        pinned=True,
    ),
    ReportEntry(
        10,
        at(2, 40),
        "resolved",
        "bob",
        "chat",
        "Resolved by bob via chat: cleared old WAL",
        {"note": "cleared old WAL"},
    ),
)

REPORT = Report(
    number=1042,
    title="Disk full on db-1",
    service="checkout",
    severity=1,
    status="resolved",
    opened_at=at(2, 0),
    acknowledged_at=at(2, 4, 36),
    acknowledged_by="bob",
    acknowledged_via="sms",
    resolved_at=at(2, 40),
    resolved_by="bob",
    started=True,
    summary="The checkout database ran out of disk.\n\nOrders failed for 40 minutes.",
    impact="About 1,200 failed checkouts.",
    root_cause="WAL archiving failed silently.",
    contributing_factors="",
    updated_at=at(9, 30),
    updated_by="alice",
    action_items=(
        ActionItemReport(1, "Alert on WAL archive failures", "bob", date(2025, 3, 8), False),
        ActionItemReport(2, "Grow db-1's disk", None, None, True),
    ),
    entries=ENTRIES,
    pages=(
        PageReport(
            31,
            "bob",
            "sms",
            at(2, 0, 6),
            "delivered",
            at(2, 0, 9),
            at(2, 4, 36),
            "acknowledged via SMS",
        ),
    ),
    total_entries=10,
    loaded_entries=10,
)

MARKDOWN = """\
# Postmortem: #1042 Disk full on db\\-1

| Incident | #1042 |
| --- | --- |
| Title | Disk full on db\\-1 |
| Service | checkout |
| Severity | 1 |
| Status | resolved |
| Opened | 2025-03-01 02:00:00 UTC |
| Acknowledged | 2025-03-01 02:04:36 UTC by bob via SMS |
| Resolved | 2025-03-01 02:40:00 UTC by bob |

## Key durations

- Time to acknowledge: 4m 36s
- Time to resolve: 40m 0s

### Pages

| Sent (UTC) | To | Channel | Final status | Delivered after | Answered |
| --- | --- | --- | --- | --- | --- |
| 2025-03-01 02:00:06 UTC | bob | sms | delivered | 3s | acknowledged via SMS after 4m 30s |

## Summary

The checkout database ran out of disk.

Orders failed for 40 minutes.

## Impact

About 1,200 failed checkouts.

## Root cause

WAL archiving failed silently.

## Contributing factors

_Not written yet._

## Action items

- [ ] Alert on WAL archive failures (owner: bob, due 2025-03-08)
- [x] Grow db\\-1's disk (no owner)

## Timeline

| Time (UTC) | Actor | Source | What happened | Annotation |
| --- | --- | --- | --- | --- |
| 2025-03-01 02:00:00 UTC | prometheus | alert | Incident \\#1042 opened: Disk full on db\\-1 |  |
| 2025-03-01 02:00:05 UTC | Muster | Muster | Escalation level 1: paging bob |  |
| 2025-03-01 02:00:06 UTC | Muster | Muster | Paged bob by SMS |  |
| 2025-03-01 02:00:09 UTC | Muster | Muster | SMS to bob delivered |  |
| 2025-03-01 02:04:36 UTC | bob | SMS | 📌 Acknowledged by bob via SMS | Woken at home |
| 2025-03-01 02:10:00 UTC | bob | chat | db\\-1 disk \\| 99% full |  |
| 2025-03-01 02:15:00 UTC | prometheus | alert | 📌 Alert attached: WAL archive failing |  |
| 2025-03-01 02:40:00 UTC | bob | chat | Resolved by bob via chat: cleared old WAL |  |
"""


def test_markdown_export_of_a_fixed_timeline_is_exactly_the_wiki_page():
    assert to_markdown(REPORT) == MARKDOWN


def test_markdown_says_when_the_timeline_was_cut():
    cut = Report(**{**REPORT.__dict__, "total_entries": 2500, "loaded_entries": 2000})
    assert to_markdown(cut).endswith(
        "\n\n_The timeline has 2,500 entries; this export holds the first 2,000 (and any pinned "
        "later ones). The API's timeline has them all._\n"
    )
    assert "2,500 entries" not in MARKDOWN


def test_markdown_of_an_unstarted_postmortem_of_an_open_incident():
    fresh = Report(
        **{
            **REPORT.__dict__,
            "status": "triggered",
            "acknowledged_at": None,
            "acknowledged_by": None,
            "acknowledged_via": None,
            "resolved_at": None,
            "resolved_by": None,
            "started": False,
            "summary": "",
            "impact": "",
            "root_cause": "",
            "updated_at": None,
            "updated_by": None,
            "action_items": (),
            "pages": (),
            "entries": ENTRIES[:1],
            "total_entries": 1,
            "loaded_entries": 1,
        }
    )
    text = to_markdown(fresh)
    assert "| Acknowledged | not acknowledged |" in text
    assert "- Time to acknowledge: not acknowledged\n- Time to resolve: not resolved\n" in text
    assert "### Pages" not in text
    assert text.count("_Not written yet._") == 4
    assert "## Action items\n\n_None yet._\n" in text


def _entry(id, hour, minute, second, kind, actor, source, message, data, key, **flags):
    return {
        "id": id,
        "at": f"2025-03-01T{hour:02d}:{minute:02d}:{second:02d}Z",
        "kind": kind,
        "actor": actor,
        "source": source,
        "message": message,
        "data": data,
        "key": key,
        "pinned": flags.get("pinned", False),
        "hidden": flags.get("hidden", False),
        "annotation": flags.get("annotation", ""),
    }


def test_json_export_of_a_fixed_timeline_is_the_full_machine_readable_record():
    assert to_json(REPORT) == {
        "incident": {
            "number": 1042,
            "title": "Disk full on db-1",
            "service": "checkout",
            "severity": 1,
            "status": "resolved",
            "opened_at": "2025-03-01T02:00:00Z",
            "acknowledged_at": "2025-03-01T02:04:36Z",
            "acknowledged_by": "bob",
            "acknowledged_via": "sms",
            "resolved_at": "2025-03-01T02:40:00Z",
            "resolved_by": "bob",
        },
        "postmortem": {
            "started": True,
            "summary": "The checkout database ran out of disk.\n\nOrders failed for 40 minutes.",
            "impact": "About 1,200 failed checkouts.",
            "root_cause": "WAL archiving failed silently.",
            "contributing_factors": "",
            "updated_at": "2025-03-01T09:30:00Z",
            "updated_by": "alice",
        },
        "durations": {"time_to_acknowledge_seconds": 276.0, "time_to_resolve_seconds": 2400.0},
        "pages": [
            {
                "page": 31,
                "person": "bob",
                "channel": "sms",
                "sent_at": "2025-03-01T02:00:06Z",
                "status": "delivered",
                "delivered_at": "2025-03-01T02:00:09Z",
                "delivered_after_seconds": 3.0,
                "answered_at": "2025-03-01T02:04:36Z",
                "answered_after_seconds": 270.0,
                "answered_how": "acknowledged via SMS",
            }
        ],
        "action_items": [
            {
                "id": 1,
                "description": "Alert on WAL archive failures",
                "owner": "bob",
                "due": "2025-03-08",
                "done": False,
            },
            {"id": 2, "description": "Grow db-1's disk", "owner": None, "due": None, "done": True},
        ],
        "timeline": [
            _entry(
                1,
                2,
                0,
                0,
                "opened",
                "prometheus",
                "alert",
                "Incident #1042 opened: Disk full on db-1",
                {"severity": 1, "urgency": "high"},
                True,
            ),
            _entry(
                2,
                2,
                0,
                5,
                "page",
                "Muster",
                "system",
                "Escalation level 1: paging bob",
                {"escalation": 7, "step": 0, "cycle": 0},
                True,
            ),
            _entry(
                3,
                2,
                0,
                6,
                "page",
                "Muster",
                "system",
                "Paged bob by SMS",
                {"page": 31, "person": 2, "channel": "sms", "status": "sent"},
                True,
            ),
            _entry(
                4,
                2,
                0,
                9,
                "page",
                "Muster",
                "system",
                "SMS to bob delivered",
                {"page": 31, "person": 2, "channel": "sms", "status": "delivered"},
                True,
            ),
            _entry(
                5, 2, 1, 0, "alert_repeated", "prometheus", "alert", "Alert repeated", {}, False
            ),
            _entry(
                6,
                2,
                4,
                36,
                "acknowledged",
                "bob",
                "sms",
                "Acknowledged by bob via SMS",
                {},
                True,
                pinned=True,
                annotation="Woken at home",
            ),
            _entry(7, 2, 10, 0, "note", "bob", "chat", "db-1 disk | 99% full", {}, True),
            _entry(8, 2, 12, 0, "note", "carol", "chat", "lunch order?", {}, True, hidden=True),
            _entry(
                9,
                2,
                15,
                0,
                "alert_attached",
                "prometheus",
                "alert",
                "Alert attached: WAL archive failing",
                {},
                False,
                pinned=True,
            ),
            _entry(
                10,
                2,
                40,
                0,
                "resolved",
                "bob",
                "chat",
                "Resolved by bob via chat: cleared old WAL",
                {"note": "cleared old WAL"},
                True,
            ),
        ],
        "timeline_total": 10,
        "timeline_truncated": False,
        "timeline_cap": 2000,
    }


def test_html_export_is_a_standalone_printable_page_with_the_curated_timeline():
    html = to_html(REPORT)
    assert html.startswith("<!doctype html>")
    assert "@media print" in html
    assert "<title>Postmortem #1042: Disk full on db-1</title>" in html
    assert "<li>Time to acknowledge: 4m 36s</li>" in html
    assert "<li>Time to resolve: 40m 0s</li>" in html
    assert "<td>acknowledged via SMS after 4m 30s</td>" in html
    assert (
        "<p>The checkout database ran out of disk.</p>\n\n<p>Orders failed for 40 minutes.</p>"
    ) in html
    assert '<td class="annotation">Woken at home</td>' in html
    assert "Alert on WAL archive failures" in html and "due 2025-03-08" in html
    assert "lunch order?" not in html  # hidden
    assert "Alert repeated" not in html  # not a key entry, not pinned
    assert html.count("<tr><td>2025-03-01") == 9  # 8 timeline rows and 1 page


def test_html_export_escapes_what_people_wrote():
    evil = Report(**{**REPORT.__dict__, "summary": "<script>alert(1)</script>"})
    html = to_html(evil)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_durations_read_as_people_say_them_and_files_are_named_by_incident():
    from datetime import timedelta

    assert human(timedelta(seconds=59.6)) == "1m 0s"
    assert human(timedelta(hours=1, seconds=5)) == "1h 0m 5s"
    assert human(timedelta(days=2, hours=3, minutes=4)) == "2d 3h 4m"
    assert human(None) == ""
    assert filename(REPORT, "markdown") == "postmortem-1042.md"
    assert filename(REPORT, "json") == "postmortem-1042.json"

"""What the war-room bot says, as pure functions: escaping, links, runbooks, cuts, lines."""

from __future__ import annotations

import pytest

from incidents.models import EntryKind
from warroom import bot
from warroom.markdown import render


def opening(**fields) -> bot.Opening:
    values = {
        "number": 1042,
        "title": "Disk full on db-1",
        "service": "checkout",
        "severity": 1,
        "urgency": "high",
        "status": "triggered",
        "opened_by": "prometheus-prod via alert",
        "alert": bot.AlertView(
            summary="Disk full on db-1",
            severity=1,
            source="prometheus-prod",
            labels={"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"},
            annotations={"description": "Only 1% left on /var"},
            links=[{"kind": "generator", "url": "http://prometheus:9090/graph?g0.expr=x"}],
        ),
        "on_call": ["bob"],
    }
    values.update(fields)
    return bot.Opening(**values)


# --- labels table ------------------------------------------------------------------------------


def test_labels_table_escapes_markdown_and_keeps_pipes_inside_their_cell():
    table = bot.labels_table(
        {"alertname": "Disk|Full", "path": "/var/*log*", "note": "two\nlines", "x": "[a](b)"}
    )
    html = render(table)
    assert html.count("<tr>") == 5  # header and four labels: no pipe split a row
    assert "<td>Disk|Full</td>" in html
    assert "<td>/var/*log*</td>" in html and "<em>" not in html
    assert "<td>two lines</td>" in html
    assert "<td>[a](b)</td>" in html and "<a " not in html


def test_labels_table_puts_alertname_first_and_the_rest_in_order():
    table = bot.labels_table({"zone": "b", "alertname": "A", "env": "prod", "severity": "high"})
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == ["alertname", "severity", "env", "zone"]


def test_labels_table_of_no_labels_is_empty():
    assert bot.labels_table({}) == ""


def test_long_label_values_are_cut_and_many_labels_are_counted():
    labels = {f"label{i:02d}": "v" * 5000 for i in range(40)}
    table = bot.labels_table(labels)
    assert "v" * bot.MAX_LABEL_VALUE not in table
    assert "v" * (bot.MAX_LABEL_VALUE - 1) + "…" in table
    assert table.count("\n| label") == bot.MAX_LABELS
    assert table.endswith(f"…and {40 - bot.MAX_LABELS} more labels.")


def test_cut_marks_what_it_cut():
    assert bot.cut("short", 10) == "short"
    assert bot.cut("0123456789abc", 10) == "012345678…"
    assert bot.cut(None, 10) == ""


# --- links -------------------------------------------------------------------------------------


def test_only_http_and_https_links_survive():
    links = [
        {"kind": "generator", "url": "http://prometheus:9090/graph?g0.expr=up"},
        {"kind": "dashboard", "url": "https://grafana.example.com/d/abc"},
        {"kind": "link", "url": "javascript:alert(1)"},
        {"kind": "link", "url": "data:text/html,<script>alert(1)</script>"},
        {"kind": "link", "url": "ftp://files.example.com/x"},
        {"kind": "link", "url": "/relative/path"},
        {"kind": "link", "url": "https://evil.example.com/\nline"},
        {"kind": "link", "url": 42},
        "https://not-a-dict.example.com/",
        {"kind": "dashboard", "url": "https://grafana.example.com/d/abc"},  # again
    ]
    kept = bot.safe_links(links)
    assert [k["url"] for k in kept] == [
        "http://prometheus:9090/graph?g0.expr=up",
        "https://grafana.example.com/d/abc",
    ]


def test_a_link_cannot_break_out_of_its_markdown():
    section = bot.links_section(
        [
            {
                "kind": "panel",
                "url": "https://g.example.com/x) [evil](javascript:alert(1)",
                "text": "]",
            }
        ]
    )
    html = render(section)
    # One link, to the https URL as sent (its parentheses and brackets encoded): the rest of it
    # stayed in its path instead of starting a second, javascript: link.
    assert html.count("<a ") == 1
    assert 'href="https://g.example.com/x%29%20%5Bevil%5D%28javascript:alert%281%29"' in html
    assert ">]</a>" in html


def test_links_are_named_by_kind_or_text_and_images_get_a_preview(settings):
    settings.IMAGE_HOSTS = ["grafana.example.com"]
    section = bot.links_section(
        [
            {"kind": "generator", "url": "http://prometheus:9090/graph"},
            {"kind": "dashboard", "url": "https://grafana.example.com/d/abc", "text": "Node"},
            {"kind": "image", "url": "https://grafana.example.com/render/1.png", "text": "CPU"},
            {"kind": "weird", "url": "https://example.com/other"},
        ]
    )
    html = render(section)
    assert ">Source graph</a>" in html and ">Node</a>" in html and ">Link</a>" in html
    assert '<img src="https://grafana.example.com/render/1.png" alt="CPU">' in html


def test_no_links_no_section():
    assert bot.links_section([{"kind": "link", "url": "javascript:x"}]) == ""


def test_links_are_capped():
    links = [{"kind": "link", "url": f"https://example.com/{i}"} for i in range(30)]
    assert len(bot.safe_links(links)) == bot.MAX_LINKS


# --- runbook -----------------------------------------------------------------------------------


def test_runbook_section_links_the_runbook_and_quotes_its_first_lines():
    runbook = bot.RunbookView(
        title="Disk full",
        url="https://muster.example.com/api/v1/runbooks/3/",
        body="# Disk full\n\n1. Check `df -h`\n2. Rotate *logs*\n3. Page the DBA\n4. Never shown",
    )
    section = bot.runbook_section(runbook)
    html = render(section)
    assert '<a href="https://muster.example.com/api/v1/runbooks/3/"' in html
    assert ">Disk full</a>" in html
    assert "Check `df -h`" in html and "Rotate *logs*" in html and "Page the DBA" in html
    assert "Never shown" not in html
    assert "Type <code>runbook</code>" in html


def test_runbook_with_an_unsafe_url_shows_its_title_without_a_link():
    section = bot.runbook_section(bot.RunbookView(title="Disk", url="javascript:alert(1)"))
    assert "javascript" not in render(section)
    assert "**Disk**" in section


def test_the_opening_post_has_a_runbook_section_only_when_one_matched():
    without = bot.opening_message(opening())
    with_one = bot.opening_message(
        opening(runbook=bot.RunbookView("Disk full", "https://rb.example.com/1", "Free space."))
    )
    assert "Runbook:" not in without
    assert "📖 **Runbook:** [Disk full](https://rb.example.com/1)" in with_one
    assert "> Free space\\." in with_one


# --- the opening post --------------------------------------------------------------------------


def test_the_opening_post_tells_the_whole_story():
    text = bot.opening_message(
        opening(other_alerts=["Disk full on db-2", "Disk full on db-3"], other_alert_count=7)
    )
    html = render(text)
    assert "Incident #1042 opened" in html and "checkout" in html and "SEV1" in html
    assert "<td>alertname</td>" in html and "<td>DiskFull</td>" in html
    assert "Only 1% left on /var" in html
    assert 'href="http://prometheus:9090/graph?g0.expr=x"' in html
    assert "<strong>7 more alerts</strong>" in html and "<li>Disk full on db-2</li>" in html
    assert "<li>+5 more alerts</li>" in html
    assert "<strong>On call</strong> for checkout: <strong>bob</strong> — paging now." in html


def test_the_opening_post_escapes_a_hostile_title_and_labels():
    text = bot.opening_message(
        opening(
            title="<script>alert(1)</script> **bold** [x](javascript:alert(1))",
            alert=bot.AlertView(
                summary="<img src=x onerror=alert(1)>",
                severity=1,
                labels={"<b>": "<script>alert(2)</script>"},
            ),
        )
    )
    html = render(text)
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "javascript:" not in html.replace("[x](javascript:alert(1))", "")
    assert "**bold**" in html  # shown as typed, not as bold


def test_the_opening_post_without_an_alert_or_anyone_on_call():
    text = bot.opening_message(opening(alert=None, on_call=[]))
    assert "| label |" not in text
    assert "👥 Nobody is on call for **checkout**." in text


def test_the_opening_post_leaves_out_on_call_when_it_is_unknown():
    assert "On call" not in bot.opening_message(opening(on_call=None))


def test_an_annotation_repeating_the_summary_is_not_shown_twice():
    alert = bot.AlertView(
        summary="Disk full",
        severity=3,
        annotations={"summary": "Disk full", "description": "Only 1% left", "message": "x" * 900},
    )
    text = bot.annotations_section(alert.annotations, already=[alert.summary])
    assert text.count("Disk full") == 0 and "Only 1% left" in text
    assert "x" * (bot.MAX_ANNOTATION - 1) + "…" in text


# --- one line per entry ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [EntryKind.COMMAND, EntryKind.OPENED])
def test_commands_and_openings_get_no_line(kind):
    assert bot.entry_line(kind, "anything", "bob", {}) is None


def test_state_changes_and_notes_read_as_one_line():
    ack = bot.entry_line(EntryKind.ACKNOWLEDGED, "Acknowledged by bob via SMS", "bob", {})
    assert ack == "👍 **Acknowledged by bob via SMS**"
    note = bot.entry_line(EntryKind.NOTE, "restarted *db-1*\nsee logs", "bob_smith", {})
    assert note == "📝 **bob\\_smith** noted: restarted \\*db\\-1\\* see logs"
    unpaged = bot.entry_line(EntryKind.UNPAGED, "Nobody could be paged: no policy", "Muster", {})
    assert unpaged.startswith("⚠️ **Nobody could be paged")


def test_a_long_entry_is_cut():
    line = bot.entry_line(EntryKind.NOTE, "y" * 5000, "bob", {})
    assert len(line) < bot.MAX_LINE + 50 and line.endswith("…")


@pytest.mark.parametrize(
    ("message", "data", "step", "line"),
    [
        ("Paged bob by SMS", {"status": "sent"}, 0, "📟 Paged bob by SMS (level 1)"),
        ("Paged bob by SMS", {"status": "sent"}, None, "📟 Paged bob by SMS"),
        ("SMS to bob delivered", {"status": "delivered"}, None, "📬 SMS to bob delivered"),
        ("bob answered the call", {"status": "answered"}, None, "📞 bob answered the call"),
        (
            "Page to bob by SMS failed: x",
            {"status": "failed"},
            1,
            "❌ Page to bob by SMS failed: x",
        ),
        ("Escalation level 2: paging bob", {"step": 1}, None, "📟 Escalation level 2: paging bob"),
    ],
)
def test_page_lines(message, data, step, line):
    assert bot.page_line(message, data, step=step) == line


def test_alert_lines_drop_the_sender_prefix_and_name_the_source():
    summary = bot.alert_summary(
        EntryKind.ALERT_ATTACHED, "Alert from prom: CPU high", "prom", {"alert": 1}
    )
    assert summary == "CPU high"
    assert bot.alerts_line(EntryKind.ALERT_ATTACHED, summary, "prom") == (
        "🔔 New alert in the group: **CPU high** (prom)"
    )
    repeated = bot.alert_summary(
        EntryKind.ALERT_REPEATED, "Alert repeated 100 times: CPU high", "prom", {"occurrences": 100}
    )
    assert bot.alerts_line(EntryKind.ALERT_REPEATED, repeated, data={"occurrences": 100}) == (
        "🔁 Alert repeated 100 times: CPU high"
    )


def test_a_burst_of_alerts_is_one_post_listing_a_few():
    text = bot.alerts_burst(EntryKind.ALERT_ATTACHED, 37, [f"alert {i}" for i in range(37)])
    html = render(text)
    assert "<strong>37 new alerts</strong>" in html
    assert html.count("<li>") == bot.LISTED_ALERTS + 1
    assert "<li>+32 more alerts</li>" in html
    held = bot.held_alerts(EntryKind.ALERT_ATTACHED, 3, "disk *full*")
    assert held == "📥 **+3 more alerts** in the group (latest: disk \\*full\\*)."


def test_incident_event_has_the_fixed_shape():
    assert bot.incident_event(
        number=1042, status="acknowledged", severity=2, title="Disk", assignee="bob"
    ) == {
        "type": "incident",
        "incident": {
            "number": 1042,
            "status": "acknowledged",
            "severity": 2,
            "title": "Disk",
            "assignee": "bob",
        },
    }

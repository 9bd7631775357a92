"""The postmortem exports against the hostile corpus: in the Markdown export every value that
came from outside shows as its text, and a CommonMark renderer makes no element, heading, link or
line of it; the JSON keeps it as it was; the HTML export escapes it."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from incidents.postmortem_export import to_html, to_json, to_markdown
from incidents.postmortem_report import ActionItemReport, PageReport, Report, ReportEntry
from tests.helpers.hostile import CORPUS

AT = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
TITLE = " / ".join(CORPUS)
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The headings the export writes itself.
OWN_HEADINGS = {
    "Key durations",
    "Pages",
    "Summary",
    "Impact",
    "Root cause",
    "Contributing factors",
    "Action items",
    "Timeline",
}


def shown(text: str) -> str:
    """What a reader should see of `text`: one line, its runs of whitespace one space."""
    return " ".join(CONTROLS.sub(" ", text).split())


REPORT = Report(
    number=1042,
    title=TITLE,
    service=CORPUS[2],
    severity=1,
    status="resolved",
    opened_at=AT,
    acknowledged_at=AT,
    acknowledged_by=CORPUS[6],
    acknowledged_via="sms",
    resolved_at=AT,
    resolved_by=CORPUS[9],
    started=True,
    summary="Written by people.",
    impact="Written by people.",
    root_cause="Written by people.",
    contributing_factors="Written by people.",
    updated_at=AT,
    updated_by=CORPUS[0],
    action_items=tuple(
        ActionItemReport(i, text, CORPUS[-1 - i], date(2025, 3, 8), i % 2 == 0)
        for i, text in enumerate(CORPUS)
    ),
    entries=tuple(
        ReportEntry(i, AT, "note", text, "chat", text, {}, annotation=CORPUS[-1 - i])
        for i, text in enumerate(CORPUS)
    ),
    pages=(PageReport(1, CORPUS[1], CORPUS[3], AT, CORPUS[4], AT, AT, "acknowledged via SMS"),),
    total_entries=len(CORPUS),
    loaded_entries=len(CORPUS),
)


def test_markdown_export_makes_no_element_heading_or_link_of_alert_text():
    markdown = to_markdown(REPORT)
    tokens = MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(markdown)

    headings = []
    for index, token in enumerate(tokens):
        assert token.type not in ("html_block", "html_inline", "code_block", "fence"), token
        assert token.type != "blockquote_open" and token.type != "ordered_list_open", token
        if token.type == "heading_open":
            headings.append(tokens[index + 1].content)
        if token.type == "inline":
            kinds = {child.type for child in token.children or []}
            # Text only: no link, image, emphasis, code span, raw HTML or line break.
            assert kinds <= {"text"}, (token.content, kinds)
    assert set(headings[1:]) <= OWN_HEADINGS, headings
    assert "".join(c.content for c in tokens[1].children or []) == (
        f"Postmortem: #1042 {shown(TITLE)}"
    )

    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<img" not in html and "<a " not in html and "<script" not in html
    for text in CORPUS:  # each payload is shown, as text, where it was put
        cell = shown(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert cell.replace('"', "&quot;") in html, text


def test_markdown_export_keeps_the_free_text_fields_markdown():
    report = dataclasses.replace(REPORT, summary="**bold** and [a link](https://example.com)")
    html = MarkdownIt("commonmark").render(to_markdown(report))
    assert "<strong>bold</strong>" in html and '<a href="https://example.com">' in html


def test_json_export_keeps_the_text_as_it_was():
    data = json.loads(json.dumps(to_json(REPORT)))
    assert data["incident"]["title"] == TITLE
    assert [e["message"] for e in data["timeline"]] == list(CORPUS)
    assert [i["description"] for i in data["action_items"]] == list(CORPUS)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]


def test_html_export_escapes_everything_from_outside():
    parser = _Elements()
    parser.feed(to_html(REPORT))
    assert not {"script", "img", "svg", "iframe", "b"} & set(parser.tags), parser.tags
    assert parser.tags.count("style") == 1  # its own
    assert not [a for a in parser.attributes if a.startswith("on")], parser.attributes

"""Replies rendered for Slack: mrkdwn links, bold, escaping, tables as one line per row."""

from __future__ import annotations

import pytest

from core.text import escape_markdown
from warroom.replies import Reply
from warroom.surfaces.registry import SURFACES

slack = SURFACES["slack"]


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.PUBLIC_URL = "https://muster.example.com"


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        (
            "[#1042](/incidents/1042/) acked",
            "<https://muster.example.com/incidents/1042/|#1042> acked",
        ),
        ("**Disk** full", "*Disk* full"),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        (escape_markdown("<@U1> & *x* [y](z)"), "&lt;@U1&gt; &amp; *x* [y](z)"),
        ("[a|b](https://x.test/?q=1&r=2)", "<https://x.test/?q=1&amp;r=2|a¦b>"),
    ],
)
def test_inline(markdown, expected):
    assert slack.mrkdwn(markdown) == expected


def test_a_table_is_one_line_per_row():
    table = "\n".join(
        [
            "Open incidents:",
            "| # | Title |",
            "| --- | --- |",
            f"| [#7](/incidents/7/) | {escape_markdown('a | b <c>')} |",
        ]
    )
    assert slack.mrkdwn(table).splitlines() == [
        "Open incidents:",
        "• # · Title",
        "• <https://muster.example.com/incidents/7/|#7> · a | b &lt;c&gt;",
    ]


def test_changes_go_to_the_channel_the_rest_to_its_author():
    assert slack.rendered(Reply("Acknowledged", changed=True, incident=7)).in_channel
    assert not slack.rendered(Reply("Which incident?")).in_channel

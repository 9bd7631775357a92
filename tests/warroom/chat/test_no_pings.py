"""What Muster posts to Slack or Mattermost never pings a channel, a group or a person, whatever
an alert or someone's message says."""

from __future__ import annotations

import pytest

from warroom.mattermost.markdown import unmentioned
from warroom.slack.mrkdwn import mrkdwn


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[hi](!channel) look", "hi look"),
        ("[x](!here)", "x"),
        ("[x](@U123)", "x"),
        ("[x](!subteam^S1)", "x"),
        ("[x](//evil.example/)", "x"),
        ("<!channel> <@U1>", "&lt;!channel&gt; &lt;@U1&gt;"),
        ("[ok](https://a.test/x)", "<https://a.test/x|ok>"),
        ("[mail](mailto:ops@example.com)", "<mailto:ops@example.com|mail>"),
    ],
)
def test_slack_links_are_web_links_or_plain_text(settings, markdown, expected):
    settings.PUBLIC_URL = "https://muster.example.com"
    assert mrkdwn(markdown) == expected


@pytest.mark.parametrize(
    "text", ["@channel", "@here now", "a.@channel", "_@all", "x:@here", "-@bob", "(@all)"]
)
def test_mattermost_mentions_are_broken_wherever_they_stand(text):
    assert "@\u200b" in unmentioned(text)
    assert unmentioned(text).replace("\u200b", "") == text


def test_mattermost_email_addresses_are_left_alone():
    assert unmentioned("write to oncall@example.com") == "write to oncall@example.com"

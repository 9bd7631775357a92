"""Slack: `/muster <command>` or `@muster <command>`, run as the Muster person the Slack user
is, answered in Slack's mrkdwn.

The Slack app's views and client (warroom/slack/) verify the request, find the person and
deliver the answer; this module only runs the text and renders the `Reply`. An answer is
posted for the channel to see (`in_channel`) when it changed something, as PagerDuty's Slack app
announces an acknowledgement; help, lists, refusals and mistakes are only for the person who
typed them (ephemeral).
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from incidents.models import Incident, Source
from warroom.commands.parser import ParseError, parse
from warroom.execute import run
from warroom.replies import Reply
from warroom.slack.mrkdwn import mrkdwn

SOURCE = Source.SLACK


@dataclass(frozen=True)
class Answer:
    """What to post back: mrkdwn `text`, for the channel (`in_channel`) or only its author."""

    text: str
    in_channel: bool = False
    changed: bool = False


def answer(text: str, *, user: User, incident: Incident | None = None) -> Answer:
    """Run `text` (what followed `/muster` or `@muster`) as `user` and render the answer;
    `incident` is the one whose channel it was typed in, meant when the text names none."""
    parsed = parse(text, surface=SOURCE)
    if isinstance(parsed, ParseError):
        return Answer(mrkdwn(parsed.message))  # the closest command's help, or the list
    reply = run(parsed, user=user, source=SOURCE, incident=incident)
    return rendered(reply)


def rendered(reply: Reply) -> Answer:
    """Return `reply` for Slack: in the channel when it changed something."""
    return Answer(mrkdwn(reply.text), in_channel=reply.changed, changed=reply.changed)

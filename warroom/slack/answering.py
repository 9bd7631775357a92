"""Run what a Slack user asks Muster as the person they are, and answer them: in a message's
thread (an `@muster` mention, or `ack incident 1042` in an incident channel), or through a
`response_url` (a slash command, a button click).

An answer that changed something is for the channel; everything else (help, lists, refusals,
mistakes, and why a Slack user is not a Muster person) only for whoever asked. A Slack user
Muster cannot map is told why, and nothing changes.
"""

from __future__ import annotations

import logging

from django.db import transaction

from incidents.models import Incident
from warroom.slack import client
from warroom.slack.people import person_for_slack_user
from warroom.surfaces.registry import SURFACES

log = logging.getLogger(__name__)


def in_thread(
    *, team: str, channel: str, user: str, thread: str | None, text: str, incident: Incident | None
) -> None:
    """Run `text` as Slack user `user` and answer in `channel`'s `thread`: for everyone with
    `chat.postMessage` when it changed something, else with `chat.postEphemeral`."""
    try:
        mapping = person_for_slack_user(team, user)
        if mapping.person is None:
            client.post_ephemeral(channel, user, mapping.problem, thread_ts=thread)
            return
        with transaction.atomic():
            answer = SURFACES["slack"].answer(text, user=mapping.person, incident=incident)
        if answer.in_channel:
            client.post_message(channel, answer.text, thread_ts=thread)
        else:
            client.post_ephemeral(channel, user, answer.text, thread_ts=thread)
    except (client.SlackUnavailable, client.SlackRefused) as exc:
        log.warning("Slack did not take an answer in a thread: %s", exc)


def through_response_url(
    *,
    team: str,
    user: str,
    response_url: str,
    text: str,
    incident: Incident | None,
    replace_original: bool | None = None,
) -> None:
    """Run `text` as Slack user `user` and answer through `response_url`."""
    mapping = person_for_slack_user(team, user)
    if mapping.person is None:
        respond(response_url, mapping.problem, in_channel=False, replace_original=replace_original)
        return
    with transaction.atomic():
        answer = SURFACES["slack"].answer(text, user=mapping.person, incident=incident)
    respond(
        response_url, answer.text, in_channel=answer.in_channel, replace_original=replace_original
    )


def respond(
    response_url: str, text: str, *, in_channel: bool, replace_original: bool | None = None
) -> None:
    """Post `text` to `response_url`; Slack being down is logged (what was done is done)."""
    try:
        client.respond(response_url, text, in_channel=in_channel, replace_original=replace_original)
    except client.SlackUnavailable as exc:
        log.warning("Slack did not take an answer through response_url: %s", exc)

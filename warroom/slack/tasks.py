"""What a Slack request asks, done by a worker once the view has answered Slack (3 seconds).

A slash command runs as the person the Slack user is and is answered through its
`response_url`; an `@muster` mention is answered in its thread with `chat.postMessage` (or only
to its author, `chat.postEphemeral`, when nothing changed). A Slack user Muster cannot map gets
a private answer saying why, and nothing changes. `link` is answered privately with a one-time
link (warroom.slack.links).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from celery import shared_task
from django.db import transaction

from warroom.slack import client, links
from warroom.slack.people import person_for_slack_user
from warroom.surfaces.registry import SURFACES

log = logging.getLogger(__name__)

COMMAND_TASK = "warroom.slack_command"
MENTION_TASK = "warroom.slack_mention"

# "<@U0BOT> ack 1042": the mention Slack writes for @muster, and what may follow it.
_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")


def command_text(text: str) -> str:
    """Return what a command's or mention's text asks: without the leading `<@U…>` mention,
    and with the `&amp;`, `&lt;` and `&gt;` Slack escapes in what people type undone."""
    text = _MENTION.sub("", text, count=1).strip()
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@shared_task(name=COMMAND_TASK, ignore_result=True)
def slash_command(form: dict[str, str]) -> None:
    """Run a `/muster …` command Slack posted (its form fields) and answer its response_url."""
    if links.is_link(form.get("text", "")):
        answer = links.link_answer(form.get("team_id", ""), form.get("user_id", ""))
        _respond(form["response_url"], answer, in_channel=False)
        return
    mapping = person_for_slack_user(form.get("team_id", ""), form.get("user_id", ""))
    if mapping.person is None:
        _respond(form["response_url"], mapping.problem, in_channel=False)
        return
    with transaction.atomic():
        answer = SURFACES["slack"].answer(command_text(form.get("text", "")), user=mapping.person)
    _respond(form["response_url"], answer.text, in_channel=answer.in_channel)


@shared_task(name=MENTION_TASK, ignore_result=True)
def app_mention(event: dict[str, Any]) -> None:
    """Run what an `app_mention` event asks and answer in its thread."""
    channel, user = str(event.get("channel", "")), str(event.get("user", ""))
    thread = str(event.get("thread_ts") or event.get("ts") or "") or None
    try:
        if user == client.our_bot().user_id:
            return  # Muster's own post: nothing echoes
    except (client.SlackUnavailable, client.SlackRefused):
        log.warning("Slack auth.test failed; the mention's bot_id was checked already")
    team, text = str(event.get("team", "")), command_text(str(event.get("text", "")))
    try:
        if links.is_link(text):
            client.post_ephemeral(channel, user, links.link_answer(team, user), thread_ts=thread)
            return
        mapping = person_for_slack_user(team, user)
        if mapping.person is None:
            client.post_ephemeral(channel, user, mapping.problem, thread_ts=thread)
            return
        with transaction.atomic():
            answer = SURFACES["slack"].answer(text, user=mapping.person)
        if answer.in_channel:
            client.post_message(channel, answer.text, thread_ts=thread)
        else:
            client.post_ephemeral(channel, user, answer.text, thread_ts=thread)
    except (client.SlackUnavailable, client.SlackRefused) as exc:
        log.warning("Slack did not take the answer to a mention: %s", exc)


def _respond(response_url: str, text: str, *, in_channel: bool) -> None:
    try:
        client.respond(response_url, text, in_channel=in_channel)
    except client.SlackUnavailable as exc:
        log.warning("Slack did not take a slash command's answer: %s", exc)

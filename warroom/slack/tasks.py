"""What a Slack request asks, done by a worker once the view has answered Slack (3 seconds).

A slash command runs as the person the Slack user is and is answered through its
`response_url`; an `@muster` mention is answered in its thread with `chat.postMessage` (or only
to its author, `chat.postEphemeral`, when nothing changed); a button click on the bot's post is
answered through the click's `response_url`; a message in an incident channel is a command or
conversation (warroom.slack.channel_messages). Typed in an incident's own channel, a command
that names no incident means that one, as in a Muster room. A Slack user Muster cannot map gets
a private answer saying why, and nothing changes. `link` is answered privately with a one-time
link (warroom.links).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from celery import shared_task

from warroom import links
from warroom.models import ChatPlatform
from warroom.slack import answering, client
from warroom.slack.channel_messages import heard, incident_in

log = logging.getLogger(__name__)

COMMAND_TASK = "warroom.slack_command"
MENTION_TASK = "warroom.slack_mention"
MESSAGE_TASK = "warroom.slack_message"
BUTTON_TASK = "warroom.slack_button"

# "<@U0BOT> ack 1042": the mention Slack writes for @muster, and what may follow it.
_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")


def command_text(text: str) -> str:
    """Return what a command's or mention's text asks: without the leading `<@U…>` mention,
    and with the `&amp;`, `&lt;` and `&gt;` Slack escapes in what people type undone."""
    text = _MENTION.sub("", text, count=1).strip()
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def link_answer(team_id: str, user_id: str) -> str:
    """The answer to `/muster link`, its one-time link in mrkdwn."""
    return links.link_answer(
        ChatPlatform.SLACK, team_id, user_id, markup=lambda url, label: f"<{url}|{label}>"
    )


@shared_task(name=COMMAND_TASK, ignore_result=True)
def slash_command(form: dict[str, str]) -> None:
    """Run a `/muster …` command Slack posted (its form fields) and answer its response_url."""
    if links.is_link(form.get("text", "")):
        answer = link_answer(form.get("team_id", ""), form.get("user_id", ""))
        answering.respond(form["response_url"], answer, in_channel=False)
        return
    answering.through_response_url(
        team=form.get("team_id", ""),
        user=form.get("user_id", ""),
        response_url=form["response_url"],
        text=command_text(form.get("text", "")),
        incident=incident_in(form.get("channel_id", "")),
    )


@shared_task(name=BUTTON_TASK, ignore_result=True)
def button_click(click: dict[str, str]) -> None:
    """Run the command of a button on the bot's post and answer through the click's
    response_url, leaving the post as it is."""
    answering.through_response_url(
        team=click.get("team", ""),
        user=click.get("user", ""),
        response_url=click["response_url"],
        text=click.get("command", ""),
        incident=incident_in(click.get("channel", "")),
        replace_original=False,
    )


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
    if links.is_link(text):
        try:
            client.post_ephemeral(channel, user, link_answer(team, user), thread_ts=thread)
        except (client.SlackUnavailable, client.SlackRefused) as exc:
            log.warning("Slack did not take the answer to a mention: %s", exc)
        return
    answering.in_thread(
        team=team,
        channel=channel,
        user=user,
        thread=thread,
        text=text,
        incident=incident_in(channel),
    )


@shared_task(name=MESSAGE_TASK, ignore_result=True)
def channel_message(event: dict[str, str]) -> None:
    """Act on a message someone wrote in an incident's Slack channel."""
    heard(event)

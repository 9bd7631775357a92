"""What people write in an incident's own Slack channel (`message` events).

In an incident channel Muster is addressed with `/muster …` (a slash command), `@muster …` (an
`app_mention`, answered by its own task) or a message that is exactly `<verb> incident <N>`
(`ack incident 1042`), which runs as the person the Slack user is and is answered in the
message's thread. Everything else is conversation: it is posted to the incident's Muster room,
by the person, and written on the timeline (`chat_message`, source `slack`); it is not told
back to Slack.

A Slack user who is not a Muster person (unmapped, deactivated) is still heard: the bot posts
their words in the room under their Slack name, "(Slack, not a Muster person)", and the
timeline names them the same way. What they ask is refused privately, as everywhere.
"""

from __future__ import annotations

import re

from django.core.cache import cache

from core.text import escape_markdown
from incidents.models import Incident, Source
from warroom.commands.addressing import verb_incident_command
from warroom.models import ChatChannel, ChatChannelState
from warroom.services import BOT_NAME, relay_chat_message
from warroom.slack import answering, client
from warroom.slack.mrkdwn import from_slack
from warroom.slack.people import COULD_NOT_CHECK, PLATFORM_KEY, person_for_slack_user

# `message` subtypes that are someone writing: a reply also sent to the channel, and a file
# shared with a comment. Edits, deletions, joins and bots' posts are not conversation.
SPOKEN_SUBTYPES = frozenset({"", "thread_broadcast", "file_share"})
NOT_A_PERSON = "(Slack, not a Muster person)"
NOT_CHECKED = "(Slack; Muster could not check who this is)"  # Slack down or rate-limiting
SHARED_FILES = "shared on Slack: {names}"
NAME_CACHE_SECONDS = 5 * 60
TIMELINE_MOST = 2000  # characters of what was said kept on the timeline
_TOO_LONG = "… (cut: longer than Muster keeps)"


def incident_in(channel_id: str) -> Incident | None:
    """Return the incident whose own, ready Slack channel `channel_id` is, if it is one."""
    if not channel_id:
        return None
    channel = (
        ChatChannel.objects.filter(
            platform=PLATFORM_KEY, channel_id=channel_id, state=ChatChannelState.READY
        )
        .select_related("incident")
        .first()
    )
    return channel.incident if channel is not None else None


def heard(event: dict[str, str]) -> None:
    """Act on a `message` someone wrote in an incident channel (the view checked that it is
    one, and that it is no bot's): a command is run and answered, conversation is mirrored."""
    channel, user = event.get("channel", ""), event.get("user", "")
    incident = incident_in(channel)
    if incident is None or not user:
        return  # archived (or no longer Muster's) since the event came
    bot = _our_bot_user()
    raw = event.get("text", "")
    if bot and (user == bot or re.match(rf"\s*<@{re.escape(bot)}(?:\|[^>]*)?>", raw)):
        return  # Muster's own post, or an @muster mention: its app_mention is answered
    team = event.get("team", "")
    text = from_slack(raw, lambda mentioned: _name(team, mentioned, bot))
    command = verb_incident_command(text)
    if command is not None:
        thread = event.get("thread_ts") or event.get("ts") or None
        answering.in_thread(
            team=team, channel=channel, user=user, thread=thread, text=command, incident=incident
        )
        return
    if event.get("files"):
        shared = SHARED_FILES.format(names=escape_markdown(event["files"]))
        text = f"{text}\n\n_{shared}_" if text.strip() else f"_{shared}_"
    text = text.replace("\x00", "")
    if text.strip():
        _mirror(incident, event, text)


def _mirror(incident: Incident, event: dict[str, str], text: str) -> None:
    """Post `text` to the incident's room by the person the Slack user is (or, for someone
    Muster cannot map, by the bot in their name) and write it on the timeline."""
    team, user = event.get("team", ""), event.get("user", "")
    mapping = person_for_slack_user(team, user)
    person = mapping.person
    data = {"via": "slack", "slack_user": user, "ts": event.get("ts", "")}
    if event.get("thread_ts"):
        data["thread_ts"] = event["thread_ts"]
    outsider = ""
    if person is None:
        why = NOT_CHECKED if mapping.problem == COULD_NOT_CHECK else NOT_A_PERSON
        outsider = f"{_name(team, user, '') or user} {why}"
    relay_chat_message(
        incident, text, person=person, outsider=outsider, source=Source.SLACK, data=data
    )


def _our_bot_user() -> str:
    try:
        return client.our_bot().user_id
    except (client.SlackUnavailable, client.SlackRefused):
        return ""  # the view dropped events with a bot_id already


def _name(team: str, user: str, bot: str) -> str:
    """Who Slack user `user` is, to show: the Muster person's username, else their Slack
    name; "" when Slack cannot say."""
    if user == bot:
        return BOT_NAME
    key = f"slack:name:{team[:40]}:{user[:40]}"
    cached = cache.get(key)
    if isinstance(cached, str):
        return cached
    person = person_for_slack_user(team, user).person
    if person is not None:
        name = person.get_username()
    else:
        try:
            name = client.user_profile(user).name
        except (client.SlackUnavailable, client.SlackRefused):
            return ""
    cache.set(key, name, NAME_CACHE_SECONDS)
    return name

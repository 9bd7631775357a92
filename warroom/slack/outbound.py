"""Slack as a platform of the chat outbox (warroom.chat.platform): posts as Block Kit (mrkdwn
sections, and an opening post's buttons), channels made, invited to and archived through the
Web API. Failures become ChatUnavailable (try again; `maybe_sent` when Slack may have acted)
or ChatRefused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from warroom.chat.platform import (
    ChatRefused,
    ChatUnavailable,
    NameTaken,
    NewChannel,
    Outgoing,
    said_where,
)
from warroom.slack import client
from warroom.slack.buttons import actions_block
from warroom.slack.mrkdwn import escape, mrkdwn

name = "slack"
label = "Slack"
NAME_MOST = 80  # Slack's channel names: at most 80 characters
MAX_BLOCKS = 50  # blocks in one message
SECTION_MOST = 3000  # characters in one section's text
FALLBACK_MOST = 3000  # the notification text


def configured() -> bool:
    return bool(settings.SLACK_BOT_TOKEN)


def can_make_channels() -> bool:
    return configured()


def channel_prefix() -> str:
    return settings.SLACK_CHANNEL_PREFIX


def text_of(out: Outgoing) -> str:
    """A post's mrkdwn: a person's words from Muster's room say whose they are."""
    if out.kind == "chat":
        author = escape(str(out.data.get("author", "someone")))
        return f"*{author}* {said_where(out)}: {mrkdwn(out.body)}"
    return mrkdwn(out.body)


def blocks_of(out: Outgoing) -> list[dict[str, Any]]:
    text = text_of(out)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[i : i + SECTION_MOST]}}
        for i in range(0, max(len(text), 1), SECTION_MOST)
    ]
    if out.kind == "opening" and isinstance(out.data.get("number"), int):
        blocks.append(actions_block(out.data["number"]))
    return blocks


def _blocks(batch: Sequence[Outgoing]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for out in batch:
        if blocks:
            blocks.append({"type": "divider"})
        blocks.extend(blocks_of(out))
    return blocks


def fits(batch: Sequence[Outgoing]) -> bool:
    return len(_blocks(batch)) <= MAX_BLOCKS


def post(channel_id: str, batch: Sequence[Outgoing]) -> str:
    fallback = text_of(batch[0])[:FALLBACK_MOST]
    if len(batch) > 1:
        fallback += f" (and {len(batch) - 1} more)"
    data = _call(
        "chat.postMessage",
        channel=channel_id,
        text=fallback,
        blocks=_blocks(batch),
        unfurl_links=False,
        unfurl_media=False,
    )
    return str(data.get("ts", ""))


def create_channel(channel_name: str, title: str) -> NewChannel:
    data = _call("conversations.create", name=channel_name, is_private=False)
    channel = data.get("channel") or {}
    return NewChannel(str(channel.get("id", "")), private=bool(channel.get("is_private")))


def invite(channel_id: str, emails: Sequence[str]) -> list[str]:
    users, missing = [], []
    for email in emails:
        try:
            found = _call("users.lookupByEmail", email=email)
        except ChatRefused:  # users_not_found: not in this workspace
            missing.append(email)
            continue
        user_id = (found.get("user") or {}).get("id")
        if user_id:
            users.append(str(user_id))
    if users:
        try:
            _call("conversations.invite", channel=channel_id, users=",".join(users))
        except ChatRefused as exc:
            if str(exc) != "already_in_channel":
                raise
    return missing


def archive(channel: NewChannel) -> None:
    try:
        _call("conversations.archive", channel=channel.channel_id)
    except ChatRefused as exc:
        if str(exc) != "already_archived":
            raise


def _call(method: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return client.call(method, retries=False, **kwargs)
    except client.SlackUnavailable as exc:
        raise ChatUnavailable(
            str(exc), retry_after=exc.retry_after, maybe_sent=exc.maybe_sent
        ) from exc
    except client.SlackRefused as exc:
        if exc.error == "name_taken":
            raise NameTaken(exc.error) from exc
        raise ChatRefused(exc.error) from exc


def channel_url(channel: Any) -> str:
    """A link that opens the channel in Slack."""
    return f"https://slack.com/app_redirect?channel={channel.channel_id}"

"""Mattermost as a platform of the chat outbox (warroom.chat.platform): posts in Markdown (an
opening post's buttons as an attachment), channels made in MATTERMOST_TEAM with an outgoing
webhook that mirrors them into the room, invitations and archiving, through API v4. Failures
become ChatUnavailable (try again; `maybe_sent` when Mattermost may have acted) or ChatRefused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache

from warroom.chat.platform import (
    ChatRefused,
    ChatUnavailable,
    NameTaken,
    NewChannel,
    Outgoing,
    said_where,
)
from warroom.mattermost import client
from warroom.mattermost.buttons import actions
from warroom.mattermost.markdown import TEXT_MAX, markdown, unmentioned

log = logging.getLogger(__name__)

name = "mattermost"
label = "Mattermost"
NAME_MOST = 64  # Mattermost's channel names and display names: at most 64 characters
SEPARATOR = "\n\n---\n\n"
TEAM_CACHE_SECONDS = 60 * 60


def configured() -> bool:
    return bool(settings.MATTERMOST_URL and settings.MATTERMOST_BOT_TOKEN)


def can_make_channels() -> bool:
    return configured() and bool(settings.MATTERMOST_TEAM)


def channel_prefix() -> str:
    return settings.MATTERMOST_CHANNEL_PREFIX


def text_of(out: Outgoing) -> str:
    """A post's Markdown, with Muster's links absolute and no @mention that would notify."""
    body = markdown(out.body)
    if out.kind == "chat":
        author = str(out.data.get("author", "someone")).replace("*", "")
        body = f"**{author}** {said_where(out)}: {body}"
    return unmentioned(body)


def fits(batch: Sequence[Outgoing]) -> bool:
    return sum(len(text_of(out)) + len(SEPARATOR) for out in batch) <= TEXT_MAX


def post(channel_id: str, batch: Sequence[Outgoing]) -> str:
    attachments = [
        {
            "fallback": f"Incident #{out.data['number']}",
            "title": f"#{out.data['number']} {out.data.get('title', '')}"[:200],
            "title_link": f"{settings.PUBLIC_URL}/incidents/{out.data['number']}/",
            "actions": actions(out.data["number"], channel_id),
        }
        for out in batch
        if out.kind == "opening" and isinstance(out.data.get("number"), int)
    ]
    payload: dict[str, Any] = {
        "channel_id": channel_id,
        "message": SEPARATOR.join(text_of(out) for out in batch)[:TEXT_MAX],
    }
    if attachments:
        payload["props"] = {"attachments": attachments}
    created = _api("POST", "/posts", payload)
    return str(created.get("id", "")) if isinstance(created, dict) else ""


def create_channel(channel_name: str, title: str) -> NewChannel:
    team_id = _team_id()
    created = _api(
        "POST",
        "/channels",
        {
            "team_id": team_id,
            "name": channel_name,
            "display_name": title[:NAME_MOST] or channel_name,
            "type": "O",
            "purpose": "An incident's war room, mirrored with Muster.",
        },
    )
    channel_id = str(created.get("id", "")) if isinstance(created, dict) else ""
    return NewChannel(channel_id, private=False, **_mirror_hook(team_id, channel_id, channel_name))


def _mirror_hook(team_id: str, channel_id: str, channel_name: str) -> dict[str, str]:
    """Make the outgoing webhook that sends what is written in the channel to Muster; a channel
    Mattermost will not give one (webhooks off, no permission) is not mirrored."""
    try:
        hook = _api(
            "POST",
            "/hooks/outgoing",
            {
                "team_id": team_id,
                "channel_id": channel_id,
                "display_name": f"Muster: {channel_name}"[:64],
                "description": "Mirrors the channel into its Muster war room.",
                "trigger_when": 0,
                "callback_urls": [f"{settings.PUBLIC_URL}/mattermost/events/"],
                "content_type": "application/json",
            },
        )
    except (ChatRefused, ChatUnavailable) as exc:
        log.warning("Mattermost gave %s no outgoing webhook: %s", channel_name, exc)
        return {}
    if not isinstance(hook, dict) or not hook.get("id") or not hook.get("token"):
        return {}
    return {"hook_id": str(hook["id"]), "hook_token": str(hook["token"])}


def invite(channel_id: str, emails: Sequence[str]) -> list[str]:
    missing = []
    for email in emails:
        try:
            user = _api("GET", f"/users/email/{quote(email, safe='@')}")
        except ChatRefused:
            missing.append(email)
            continue
        user_id = user.get("id") if isinstance(user, dict) else None
        if user_id:
            _api("POST", f"/channels/{channel_id}/members", {"user_id": str(user_id)})
    return missing


def archive(channel: NewChannel) -> None:
    if channel.hook_id:
        try:
            _api("DELETE", f"/hooks/outgoing/{channel.hook_id}")
        except ChatRefused:
            log.info("the outgoing webhook %s was gone already", channel.hook_id)
    _api("DELETE", f"/channels/{channel.channel_id}")


def _team_id() -> str:
    key = f"mattermost:team:{settings.MATTERMOST_URL}:{settings.MATTERMOST_TEAM}"
    team_id = cache.get(key)
    if not team_id:
        team = _api("GET", f"/teams/name/{settings.MATTERMOST_TEAM}")
        team_id = str(team.get("id", "")) if isinstance(team, dict) else ""
        if not team_id:
            raise ChatRefused(f"Mattermost has no team {settings.MATTERMOST_TEAM!r}")
        cache.set(key, team_id, TEAM_CACHE_SECONDS)
    return team_id


def _api(method: str, path: str, json: Any = None) -> Any:
    try:
        return client.api(method, path, json=json)
    except client.MattermostUnavailable as exc:
        raise ChatUnavailable(
            str(exc), retry_after=exc.retry_after, maybe_sent=exc.maybe_sent
        ) from exc
    except client.MattermostRefused as exc:
        if exc.status == 400 and "exists" in exc.error_id:
            raise NameTaken(str(exc)) from exc
        raise ChatRefused(str(exc)) from exc


def channel_url(channel: Any) -> str:
    """A link that opens the channel in Mattermost."""
    return f"{settings.MATTERMOST_URL}/{settings.MATTERMOST_TEAM}/channels/{channel.name}"

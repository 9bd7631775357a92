"""Tell one Mattermost user something only they see: a direct message from Muster's bot.

Mattermost's private (ephemeral) posts need `POST /api/v4/posts/ephemeral`, which only a System
Admin may call, and an outgoing webhook's answer is a reply the whole channel sees. So what
Muster answers privately to a message written in an incident channel (a refusal, help, a list)
goes to the writer's direct channel with the bot (`POST /api/v4/channels/direct`, which returns
the pair's one channel, made the first time), then `POST /api/v4/posts`.
"""

from __future__ import annotations

import logging

from warroom.mattermost import client, people
from warroom.mattermost.markdown import markdown, unmentioned

log = logging.getLogger(__name__)


def tell(user_id: str, text: str) -> bool:
    """Post `text` to `user_id` in their direct channel with the bot; whether it was posted
    (False when Mattermost cannot or will not: the caller answers another way)."""
    bot_id, _ = people.bot_account()
    if not bot_id or not client.is_user_id(user_id) or user_id == bot_id:
        return False
    try:
        channel = client.api("POST", "/channels/direct", json=[bot_id, user_id])
        channel_id = str(channel.get("id", "")) if isinstance(channel, dict) else ""
        if not channel_id:
            return False
        client.api(
            "POST",
            "/posts",
            json={"channel_id": channel_id, "message": unmentioned(markdown(text))},
        )
    except client.MattermostError as exc:
        log.warning("Mattermost took no direct message to %s: %s", user_id[:40], exc)
        return False
    return True

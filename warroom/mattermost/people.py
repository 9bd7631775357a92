"""Which Muster person a Mattermost user is: the one they linked with `/muster link`
(`ChatAccount`), else their profile's email (`GET /api/v4/users/{id}`), by the one rule of
`accounts.chat_people`.

What Mattermost says of a user is cached for `PROFILE_SECONDS`; the rule is applied afresh each
time, so a person deactivated, or whose role or email changed in Muster, counts at once.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache

from accounts.chat_people import Mapping, person_for_email
from warroom.mattermost import client
from warroom.models import ChatAccount, ChatPlatform

log = logging.getLogger(__name__)

PLATFORM = "Mattermost"
PROFILE_SECONDS = 5 * 60
BOT_SECONDS = 60 * 60
UNKNOWN_USER = "Mattermost does not know the user who typed this command."
DELETED_USER = "Your Mattermost account is deactivated."


def person_for_user(user_id: str) -> Mapping:
    """Return the Muster person Mattermost user `user_id` is, or why there is none.

    Raises client.MattermostUnavailable when Mattermost cannot say who they are.
    """
    if not client.is_user_id(user_id):
        return Mapping(None, UNKNOWN_USER)
    linked = (
        ChatAccount.objects.filter(
            platform=ChatPlatform.MATTERMOST, team_id="", user_id=user_id, person__is_active=True
        )
        .select_related("person")
        .first()
    )
    if linked is not None:
        return Mapping(linked.person)
    try:
        profile = _profile(user_id)
    except client.UnknownUser:
        return Mapping(None, UNKNOWN_USER)
    if profile["deleted"]:
        return Mapping(None, DELETED_USER)
    return person_for_email(PLATFORM, profile["email"], confirmed=profile["verified"])


def _profile(user_id: str) -> dict[str, Any]:
    key = f"mattermost:user:{user_id}"
    profile = cache.get(key)
    if profile is None:
        user = client.get_user(user_id)
        email = user.get("email")
        profile = {
            "email": email if isinstance(email, str) else "",
            # Mattermost shows verified addresses; a user object saying otherwise is believed.
            "verified": user.get("email_verified") is not False,
            "deleted": bool(user.get("delete_at")),
        }
        cache.set(key, profile, PROFILE_SECONDS)
    return profile


def bot_account() -> tuple[str, str]:
    """Return Muster's own bot account, (user id, username), as `GET /api/v4/users/me` says
    with the bot's token; cached. ("", "") when Mattermost cannot say just now."""
    key = f"mattermost:me:{settings.MATTERMOST_URL}:{_fingerprint(settings.MATTERMOST_BOT_TOKEN)}"
    me = cache.get(key)
    if me is None:
        try:
            user = client.api("GET", "/users/me")
        except client.MattermostError as exc:
            log.warning("Mattermost did not say who Muster's bot is: %s", exc)
            return ("", "")
        if not isinstance(user, dict) or not client.is_user_id(str(user.get("id", ""))):
            log.warning("Mattermost's /users/me is not a user")
            return ("", "")
        me = (str(user["id"]), str(user.get("username", "")))
        cache.set(key, me, BOT_SECONDS)
    return tuple(me)  # type: ignore[return-value]


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]

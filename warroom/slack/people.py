"""Which Muster person a Slack user is: the one they linked with `/muster link`
(`ChatAccount`), else Slack's `users.info` profile email, by the one rule of
`accounts.chat_people` (confirmed, unique, case-insensitive).

The answer, a person or why there is none, is cached for a few minutes, so a burst of commands
asks Slack once. When Slack cannot be asked (down, 429), nobody is mapped and nothing is cached:
the person is told to try again.
"""

from __future__ import annotations

from django.core.cache import cache

from accounts.chat_people import Mapping, person_for_email
from accounts.models import User
from warroom.models import ChatAccount
from warroom.slack.client import SlackRefused, SlackUnavailable, user_profile

PLATFORM = "Slack"
PLATFORM_KEY = "slack"  # ChatAccount.platform
CACHE_SECONDS = 5 * 60
COULD_NOT_CHECK = "Muster could not check who you are with Slack just now; try again in a minute."
NOT_A_PERSON = "Slack could not tell Muster who you are ({error})."
DEACTIVATED = "Your Slack account is deactivated."


def _key(team_id: str, user_id: str) -> str:
    return f"slack:person:{team_id[:40]}:{user_id[:40]}"


def forget(team_id: str, user_id: str) -> None:
    """Forget who the Slack user is (after a link), so the next command looks again."""
    cache.delete(_key(team_id, user_id))


def person_for_slack_user(team_id: str, user_id: str) -> Mapping:
    """Return the active Muster person the Slack user `user_id` of `team_id` is, or why not."""
    key = _key(team_id, user_id)
    cached = cache.get(key)
    if isinstance(cached, int):
        person = User.objects.filter(pk=cached, is_active=True).first()
        if person is not None:
            return Mapping(person)
    elif isinstance(cached, str):
        return Mapping(None, cached)
    linked = (
        ChatAccount.objects.filter(
            platform=PLATFORM_KEY, team_id=team_id, user_id=user_id, person__is_active=True
        )
        .select_related("person")
        .first()
    )
    if linked is not None:
        cache.set(key, linked.person.pk, CACHE_SECONDS)
        return Mapping(linked.person)
    try:
        profile = user_profile(user_id)
    except SlackUnavailable:
        return Mapping(None, COULD_NOT_CHECK)
    except SlackRefused as exc:  # user_not_found, invalid_auth, missing_scope, ...
        return Mapping(None, NOT_A_PERSON.format(error=exc.error))
    if profile.deleted:
        cache.set(key, DEACTIVATED, CACHE_SECONDS)
        return Mapping(None, DEACTIVATED)
    mapping = person_for_email(PLATFORM, profile.email, confirmed=profile.email_confirmed)
    cache.set(key, mapping.person.pk if mapping.person else mapping.problem, CACHE_SECONDS)
    return mapping

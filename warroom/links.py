"""`/muster link`: a chat user (Slack, Mattermost) whose email differs from their Muster
account's links the two.

The platform answers `/muster link` with a one-time link (only its author sees it) to a Muster
page that, once the signed-in person confirms, records a `ChatAccount`: that chat user is then
that person, whatever their email. The link names the platform, the user (and Slack's
workspace), signed with Muster's SECRET_KEY, is good for LINK_MINUTES and for one use.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from accounts.audit import CREATED, DELETED, record_change, snapshot
from accounts.models import User
from warroom import replay
from warroom.models import ChatAccount, ChatPlatform
from warroom.slack.people import forget as forget_slack_user

LINK_MINUTES = 10
_SALT = "muster.slack.link"  # the first links were Slack's; one salt keeps them all valid
WORD = "link"
ANSWER = (
    "Open this link within {minutes} minutes, signed in to Muster as yourself, to make this "
    "{platform} account act as you in Muster: {link}. It works once; do not share it."
)
EXPIRED = (
    "This link has expired or is not valid. Type /muster link in Slack or Mattermost for a new one."
)
USED = "This link was already used. Type /muster link in Slack or Mattermost for a new one."
# What a platform remembers of who its users are, forgotten once one is linked or unlinked.
_FORGET: dict[str, Callable[[str, str], None]] = {ChatPlatform.SLACK: forget_slack_user}


@dataclass(frozen=True)
class LinkRequest:
    """Who asked, and where: the platform, its workspace (Slack's team; "" on Mattermost,
    whose users are the server's), the user, and the link's one-time nonce."""

    team_id: str
    user_id: str
    nonce: str
    platform: str = ChatPlatform.SLACK

    @property
    def platform_label(self) -> str:
        return ChatPlatform(self.platform).label


def is_link(text: str) -> bool:
    """Whether `text` (after /muster or @muster) asks for a link."""
    return text.strip().lower() == WORD


def link_answer(
    platform: str, team_id: str, user_id: str, *, markup: Callable[[str, str], str]
) -> str:
    """The private answer to `/muster link`: the one-time link, written by `markup(url,
    label)` in the platform's own link syntax."""
    token = signing.dumps(
        {"p": platform, "t": team_id, "u": user_id, "n": secrets.token_urlsafe(12)},
        salt=_SALT,
        compress=True,
    )
    url = settings.PUBLIC_URL + reverse("web-profile-chat-link", args=[token])
    label = ChatPlatform(platform).label
    return ANSWER.format(
        minutes=LINK_MINUTES, platform=label, link=markup(url, f"link my {label} account")
    )


def read_link(token: str) -> LinkRequest | None:
    """Return who asked for the link `token`, or None if it is forged or expired."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=LINK_MINUTES * 60)
    except signing.BadSignature:  # SignatureExpired too
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "tun"):
        return None
    platform = data.get("p", ChatPlatform.SLACK)  # a link made before Mattermost had them
    if platform not in ChatPlatform.values:
        return None
    return LinkRequest(data["t"], data["u"], data["n"], platform)


def link(request: LinkRequest, person: User) -> str | None:
    """Make the chat user of `request` act as `person`; return why not (used before), if so."""
    with transaction.atomic():
        if not replay.first_time(replay.chat_link_key(request.nonce)):
            return USED
        account, _ = ChatAccount.objects.update_or_create(
            platform=request.platform,
            team_id=request.team_id,
            user_id=request.user_id,
            defaults={"person": person},
        )
        record_change(
            person,
            CREATED,
            account,
            snapshot(account),
            summary=(
                f"{person.get_username()} linked the {request.platform_label} user "
                f"{request.user_id}"
            ),
        )
    _forget(account)
    return None


def linked_accounts(person: User) -> list[ChatAccount]:
    """Return the chat accounts linked to `person`, newest first (My profile lists them)."""
    return list(ChatAccount.objects.filter(person=person).order_by("-created_at", "-id"))


def unlink(account_id: int, person: User) -> bool:
    """Unlink `person`'s linked chat account `account_id`; False if they have no such link.
    That chat user is then mapped by the email rule again, from its next command."""
    with transaction.atomic():
        account = (
            ChatAccount.objects.select_for_update().filter(pk=account_id, person=person).first()
        )
        if account is None:
            return False
        before = snapshot(account)
        account.delete()
        record_change(
            person,
            DELETED,
            account,
            before,
            object_id=account_id,
            summary=(
                f"{person.get_username()} unlinked the {account.platform_label} user "
                f"{account.user_id}"
            ),
        )
    _forget(account)
    return True


def _forget(account: ChatAccount) -> None:
    forget = _FORGET.get(account.platform)
    if forget is not None:
        forget(account.team_id, account.user_id)

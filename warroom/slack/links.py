"""`/muster link`: a Slack user whose email differs from their Muster account's links the two.

Slack answers `/muster link` with a one-time link (only its author sees it) to a Muster page
that, once the signed-in person confirms, records a `ChatAccount`: that Slack user is then that
person, whatever their email. The link names the Slack user and workspace, signed with Muster's
SECRET_KEY, is good for LINK_MINUTES and for one use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from accounts.audit import CREATED, DELETED, record_change, snapshot
from accounts.models import User
from warroom import replay
from warroom.models import ChatAccount
from warroom.slack.people import PLATFORM_KEY, forget

LINK_MINUTES = 10
_SALT = "muster.slack.link"
WORD = "link"
ANSWER = (
    "Open this link within {minutes} minutes, signed in to Muster as yourself, to make this "
    "Slack account act as you in Muster: <{url}|link my Slack account>. "
    "It works once; do not share it."
)
EXPIRED = "This link has expired or is not valid. Type /muster link in Slack for a new one."
USED = "This link was already used. Type /muster link in Slack for a new one."


@dataclass(frozen=True)
class LinkRequest:
    """Who asked, in Slack: the workspace, the user, and the link's one-time nonce."""

    team_id: str
    user_id: str
    nonce: str


def is_link(text: str) -> bool:
    """Whether `text` (after /muster or @muster) asks for a link."""
    return text.strip().lower() == WORD


def link_answer(team_id: str, user_id: str) -> str:
    """The ephemeral answer to `/muster link`: the one-time link (mrkdwn)."""
    token = signing.dumps(
        {"t": team_id, "u": user_id, "n": secrets.token_urlsafe(12)}, salt=_SALT, compress=True
    )
    url = settings.PUBLIC_URL + reverse("web-profile-slack-link", args=[token])
    return ANSWER.format(minutes=LINK_MINUTES, url=url)


def read_link(token: str) -> LinkRequest | None:
    """Return who asked for the link `token`, or None if it is forged or expired."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=LINK_MINUTES * 60)
    except signing.BadSignature:  # SignatureExpired too
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "tun"):
        return None
    return LinkRequest(data["t"], data["u"], data["n"])


def link(request: LinkRequest, person: User) -> str | None:
    """Make the Slack user of `request` act as `person`; return why not (used before), if so."""
    with transaction.atomic():
        if not replay.first_time(replay.slack_link_key(request.nonce)):
            return USED
        account, _ = ChatAccount.objects.update_or_create(
            platform=PLATFORM_KEY,
            team_id=request.team_id,
            user_id=request.user_id,
            defaults={"person": person},
        )
        record_change(
            person,
            CREATED,
            account,
            snapshot(account),
            summary=f"{person.get_username()} linked the Slack user {request.user_id}",
        )
    forget(request.team_id, request.user_id)
    return None


def linked_accounts(person: User) -> list[ChatAccount]:
    """Return the Slack accounts linked to `person`, newest first (My profile lists them)."""
    return list(ChatAccount.objects.filter(person=person).order_by("-created_at", "-id"))


def unlink(account_id: int, person: User) -> bool:
    """Unlink `person`'s linked Slack account `account_id`; False if they have no such link.
    That Slack user is then mapped by the email rule again, from its next command."""
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
            summary=f"{person.get_username()} unlinked the Slack user {account.user_id}",
        )
    forget(account.team_id, account.user_id)
    return True

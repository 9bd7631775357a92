"""Writes for people and tokens."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import ApiToken, User, hash_token, new_token_secret
from accounts.sockets import UNAUTHENTICATED, close_sockets


def create_api_token(user: User, *, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it with its secret, which is shown only this once."""
    secret = new_token_secret()
    token = ApiToken.objects.create(
        user=user, name=name, token_hash=hash_token(secret), prefix=secret[:10]
    )
    return token, secret


def revoke_api_token(token: ApiToken) -> None:
    """Revoke `token`; requests bearing it are refused from now on, and the websockets it
    opened are closed (after commit) with 4401."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    close_sockets(token_id=token.pk, code=UNAUTHENTICATED)


def token_for(secret: str) -> ApiToken | None:
    """Return the usable token (not revoked, its person active) of a bearer secret, with its
    person, or None. Records its use at most once a minute, so a busy token does not write on
    every request."""
    token = (
        ApiToken.objects.usable().select_related("user").filter(token_hash=hash_token(secret))
    ).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def user_for_token(secret: str) -> User | None:
    """Return the active user a bearer token belongs to, or None."""
    token = token_for(secret)
    return token.user if token is not None else None

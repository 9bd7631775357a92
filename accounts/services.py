"""Writes for people and tokens."""

from __future__ import annotations

from django.utils import timezone

from accounts.models import ApiToken, User, hash_token, new_token_secret


def create_api_token(user: User, *, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it with its secret, which is shown only this once."""
    secret = new_token_secret()
    token = ApiToken.objects.create(
        user=user, name=name, token_hash=hash_token(secret), prefix=secret[:10]
    )
    return token, secret


def revoke_api_token(token: ApiToken) -> None:
    """Revoke `token`; requests bearing it are refused from now on."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def user_for_token(secret: str) -> User | None:
    """Return the active user a bearer token belongs to, or None."""
    token = (
        ApiToken.objects.usable().select_related("user").filter(token_hash=hash_token(secret))
    ).first()
    if token is None:
        return None
    now = timezone.now()
    # Record use at most once a minute, so a busy token does not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user

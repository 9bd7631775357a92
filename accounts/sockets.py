"""Websockets keep only the rights their person still has.

A websocket signs in once, at connect, with an API token or a browser session. Afterwards its
consumer re-checks that credential (`lost_rights`) on every frame the client sends, and at
least every minute while it only receives. And whatever ends a credential closes the sockets it
opened at once (`close_sockets`), through channel-layer groups that every socket joins:

- `socket-token-<id>`: revoking the token (accounts.services.revoke_api_token);
- `socket-session-<sha256 of the session key>`: signing out (accounts.receivers);
- `socket-person-<id>`: deactivating the person (accounts.receivers).

A group name holds no secret: a session key is hashed, never put in a name (names travel to
Redis and its logs).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from importlib import import_module

from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.db import transaction
from django.utils.crypto import constant_time_compare

from accounts.models import ApiToken, Role, User
from core import live

log = logging.getLogger(__name__)

# Close codes, in the 4000s that the websocket protocol leaves to applications.
UNAUTHENTICATED = 4401  # no credential, or one that ended: a revoked token, a signed-out session
FORBIDDEN = 4403  # the person is deactivated, or may no longer use what the socket shows

# The channel-layer message that closes a socket: {"type": DISCONNECT, "code": <close code>}.
DISCONNECT = "socket.disconnect"


@dataclass(frozen=True)
class Credential:
    """What a websocket signed in with: a token (its id), else a session (its key)."""

    user_id: int
    token_id: int | None = None
    session_key: str | None = field(default=None, repr=False)  # a secret: kept out of logs


def token_group(token_id: int) -> str:
    return f"socket-token-{token_id}"


def session_group(session_key: str) -> str:
    return "socket-session-" + hashlib.sha256(session_key.encode()).hexdigest()


def person_group(user_id: int) -> str:
    return f"socket-person-{user_id}"


def groups(credential: Credential) -> list[str]:
    """The groups a socket signed in with `credential` joins."""
    names = [person_group(credential.user_id)]
    if credential.token_id is not None:
        names.append(token_group(credential.token_id))
    elif credential.session_key:
        names.append(session_group(credential.session_key))
    return names


def close_sockets(
    *,
    code: int,
    token_id: int | None = None,
    session_key: str | None = None,
    person_id: int | None = None,
) -> None:
    """Close, after commit, every socket opened with the token, with the session, or by the
    person, with close code `code`. Never raises: a socket the message misses finds out on its
    next re-check (within a minute)."""
    names = []
    if token_id is not None:
        names.append(token_group(token_id))
    if session_key:
        names.append(session_group(session_key))
    if person_id is not None:
        names.append(person_group(person_id))
    if names:
        transaction.on_commit(lambda: _send(names, code))


def _send(names: list[str], code: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for name in names:
        try:
            live.group_send(name, {"type": DISCONNECT, "code": code})
        except Exception:
            log.warning("could not close the sockets of %s", name, exc_info=True)


def lost_rights(credential: Credential, needed: Role = Role.OBSERVER) -> int | None:
    """Return the close code for a socket whose credential no longer holds (UNAUTHENTICATED:
    the token is revoked or gone, the session ended; FORBIDDEN: the person is deactivated or
    below `needed`), or None while it does. One or two small queries."""
    if credential.token_id is not None:
        token = ApiToken.objects.select_related("user").filter(pk=credential.token_id).first()
        if token is None or token.revoked_at is not None or token.user_id != credential.user_id:
            return UNAUTHENTICATED
        user = token.user
    else:
        session_user = _session_user(credential)
        if session_user is None:
            return UNAUTHENTICATED
        user = session_user
    if not user.has_role(needed):
        return FORBIDDEN
    return None


def _session_user(credential: Credential) -> User | None:
    """The person of the socket's session while the session still signs them in (it exists, is
    not expired, and was not ended by a password change, as django.contrib.auth.get_user
    verifies); else None. Reads the session without changing it."""
    if not credential.session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(credential.session_key)
    data = store.load()
    if data.get(SESSION_KEY) != str(credential.user_id):
        return None
    user = User.objects.filter(pk=credential.user_id).first()
    if user is None:
        return None
    session_hash = data.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not session_hash or not any(constant_time_compare(session_hash, h) for h in hashes):
        return None
    return user

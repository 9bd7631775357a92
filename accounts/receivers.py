"""Signing out and deactivation end a person's websockets at once (accounts.sockets).

Both hook Django's own signals, so every way of doing it counts: the web UI's and the admin's
sign-out (`user_logged_out`), and deactivation from the admin, a shell or any code that saves
the person (`post_save`). A bulk `update()` sends no signal; its sockets still close at their
next re-check, within a minute.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User
from accounts.sockets import FORBIDDEN, UNAUTHENTICATED, close_sockets


@receiver(user_logged_out, dispatch_uid="accounts.sockets.signed_out")
def close_signed_out_sockets(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """Close the websockets of the session being signed out (sent before Django flushes it)."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        close_sockets(session_key=session.session_key, code=UNAUTHENTICATED)


@receiver(post_save, sender=User, dispatch_uid="accounts.sockets.deactivated")
def close_deactivated_sockets(
    sender: type[User], instance: User, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    """Close every websocket of a person saved as inactive. Idempotent: saving someone who was
    inactive already finds no socket to close."""
    if instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    close_sockets(person_id=instance.pk, code=FORBIDDEN)

"""The runbooks' API routes for tests/api/test_roles.py, and the objects they act on."""

from __future__ import annotations

from accounts.models import User

ROUTES: list = []


def runbooks_world(user: User, world: dict) -> dict:
    """Objects the routes name (obj="..."); `user` is the role under test."""
    return {}

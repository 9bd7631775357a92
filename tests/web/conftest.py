"""The web UI's tests: Django's test client, signed in as one of the cast."""

from __future__ import annotations

import pytest
from django.test import Client


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def web_alice(alice) -> Client:
    """Signed in as alice, the admin."""
    return _signed_in(alice)


@pytest.fixture
def web_bob(bob) -> Client:
    """Signed in as bob, the responder."""
    return _signed_in(bob)


@pytest.fixture
def web_charlie(charlie) -> Client:
    """Signed in as charlie, the observer."""
    return _signed_in(charlie)

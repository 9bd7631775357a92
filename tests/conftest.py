"""The shared cast: alice the admin, bob the responder, charlie the observer; helpers are in
tests/helpers/."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, User
from accounts.services import create_api_token
from alerts.models import Integration, Kind
from alerts.processor import process_pending
from incidents.models import Service


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # The default hasher is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_root_in_tmp(settings, tmp_path):
    # Attachments tests store land in the test's own directory, never in the working tree.
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _kick_every_request(settings):
    # Without the kick memo, process_pending needs no grace before its last look (40 ms a
    # call, thousands of calls), nor a gather after a small batch; tests/alerts/
    # test_ingest_pending.py tests both.
    settings.INGEST_KICK_MEMO_SECONDS = 0
    settings.INGEST_GATHER_SECONDS = 0


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", "alice@example.com", "pw-alice", role=Role.ADMIN)


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", "pw-bob", role=Role.RESPONDER)


@pytest.fixture
def charlie(db) -> User:
    return User.objects.create_user(
        "charlie", "charlie@example.com", "pw-charlie", role=Role.OBSERVER
    )


def _client_for(user: User) -> APIClient:
    _, secret = create_api_token(user, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def as_alice(alice) -> APIClient:
    return _client_for(alice)


@pytest.fixture
def as_bob(bob) -> APIClient:
    return _client_for(bob)


@pytest.fixture
def as_charlie(charlie) -> APIClient:
    return _client_for(charlie)


@pytest.fixture
def service(db) -> Service:
    return Service.objects.create(name="checkout")


@pytest.fixture
def make_integration(db, service) -> Callable[..., Integration]:
    def make(kind: str = Kind.ALERTMANAGER, **fields) -> Integration:
        fields.setdefault("name", f"{kind}-{Integration.objects.count() + 1}")
        fields.setdefault("service", service)
        return Integration.objects.create(kind=kind, **fields)

    return make


@pytest.fixture
def post_json(client):
    """POST a JSON value (or raw bytes) to a path, process what it stored; return the response."""

    def post(path: str, payload, **headers):
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        headers.setdefault("content_type", "application/json")
        response = client.post(path, body, **headers)
        process_pending()  # what the worker kicked by the ingest view does just after
        return response

    return post

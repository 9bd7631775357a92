"""Sign-in throttling (review M5): wrong passwords lock a (username, client address) pair, and an
address that fails for many usernames, for a cool-off that ends by itself; a username alone is
never locked; the client address comes from X-Forwarded-For only through a trusted proxy."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
import time_machine
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from django.db import connections
from django.test import AsyncClient, Client, RequestFactory
from django.utils import timezone

from accounts.models import User
from accounts.signin import client_ip

pytestmark = pytest.mark.django_db

PROXY = "127.0.0.1"  # nginx on the same host: production's default trusted proxy


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_IP_FAILURE_LIMIT = 20
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)


def sign_in(username: str, password: str, *, address: str, path: str = "/login/"):
    """POST the sign-in form through nginx (a trusted proxy) from `address`."""
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"203.0.113.66, {address}")
    return client.post(path, {"username": username, "password": password})


def test_wrong_passwords_lock_the_pair_with_a_429_page_that_says_when(alice):
    for _ in range(4):
        assert sign_in("alice", "nope", address="198.51.100.1").status_code == 200
    # Four wrong, then right: still in.
    assert sign_in("alice", "pw-alice", address="198.51.100.1").status_code == 302
    locked = sign_in("alice", "nope", address="198.51.100.1")  # the fifth failure
    assert locked.status_code == 429
    # Even the right password waits now, and the page says until when.
    again = sign_in("alice", "pw-alice", address="198.51.100.1")
    assert again.status_code == 429
    page = again.content.decode()
    until = re.search(r"Try again after (\d\d:\d\d) UTC \(in (\d+) minutes\)", page)
    assert until, page
    assert until.group(2) == "15"
    assert 14 * 60 < int(again["Retry-After"]) <= 15 * 60
    assert "Too many sign-in attempts" in page
    # What is kept of the attempts never holds the password.
    [attempt] = AccessAttempt.objects.all()
    assert (attempt.username, attempt.ip_address) == ("alice", "198.51.100.1")
    assert "nope" not in attempt.post_data and "password=****" in attempt.post_data


def test_a_username_is_never_locked_for_every_address(alice):
    for _ in range(5):
        sign_in("alice", "nope", address="198.51.100.1")
    assert sign_in("alice", "pw-alice", address="198.51.100.1").status_code == 429
    # The on-call person, from anywhere else, still signs in.
    assert sign_in("alice", "pw-alice", address="192.0.2.7").status_code == 302


def test_an_address_failing_for_many_usernames_is_locked_for_everyone_on_it(bob):
    for n in range(20):
        response = sign_in(f"guess{n}", "password1", address="198.51.100.9")
    assert response.status_code == 429
    assert sign_in("bob", "pw-bob", address="198.51.100.9").status_code == 429
    assert sign_in("bob", "pw-bob", address="198.51.100.10").status_code == 302


def test_the_lock_ends_by_itself_after_the_cool_off(alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            sign_in("alice", "nope", address="198.51.100.1")
        assert sign_in("alice", "pw-alice", address="198.51.100.1").status_code == 429
    with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
        # Trying while locked out does not push the end further away.
        assert sign_in("alice", "pw-alice", address="198.51.100.1").status_code == 429
    with time_machine.travel(start + dt.timedelta(minutes=15, seconds=1), tick=False):
        assert sign_in("alice", "pw-alice", address="198.51.100.1").status_code == 302


def test_the_admin_sign_in_is_throttled_too(db):
    User.objects.create_superuser("root", "root@example.com", "pw-root")
    for _ in range(5):
        last = sign_in("root", "nope", address="198.51.100.1", path="/admin/login/")
    assert last.status_code == 429
    response = sign_in("root", "pw-root", address="198.51.100.1", path="/admin/login/")
    assert response.status_code == 429


def test_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(alice):
    # Straight to the app, not through the proxy: each request claims another address.
    for n in range(5):
        client = Client(REMOTE_ADDR="198.51.100.77", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        client.post("/login/", {"username": "alice", "password": "nope"})
    client = Client(REMOTE_ADDR="198.51.100.77", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert client.post("/login/", {"username": "alice", "password": "pw-alice"}).status_code == 429


def test_api_tokens_are_not_throttled(alice, as_alice):
    for _ in range(5):
        Client().post("/login/", {"username": "alice", "password": "nope"})
    assert Client().post("/login/", {"username": "alice", "password": "pw-alice"}).status_code == (
        429
    )
    # The same address (the test client's 127.0.0.1), by API token: unaffected.
    assert as_alice.get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ([], "127.0.0.1", "192.0.2.1", "127.0.0.1"),  # embedded: no proxy is trusted
        (["127.0.0.1"], "198.51.100.5", "192.0.2.1", "198.51.100.5"),  # not from the proxy
        (["127.0.0.1"], "127.0.0.1", "10.6.6.6, 192.0.2.1", "192.0.2.1"),  # the proxy's hop
        (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "192.0.2.1, 10.1.2.3", "192.0.2.1"),
        (["127.0.0.1"], "127.0.0.1", "not-an-ip, 192.0.2.1", "192.0.2.1"),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "junk, 10.1.2.3", "10.1.2.3"),
        (["::1"], "::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address(settings, trusted, peer, forwarded, expected):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


@pytest.mark.django_db(transaction=True)
def test_the_locked_out_page_under_asgi_too(alice):
    # daphne runs the middleware asynchronously, where django-axes hands the lock-out callable
    # its arguments shifted by one; the page must still say when.
    async def attempts():
        client = AsyncClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1")
        for _ in range(5):
            await client.post("/login/", {"username": "alice", "password": "nope"})
        try:
            return await client.post("/login/", {"username": "alice", "password": "pw-alice"})
        finally:
            await sync_to_async(connections.close_all)()  # the request threads' connections

    response = asyncio.run(attempts())
    assert response.status_code == 429
    assert b"Try again after" in response.content

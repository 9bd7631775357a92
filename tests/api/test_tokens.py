"""Personal API tokens: shown once, stored hashed, revocable, yours only."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import create_api_token
from tests.helpers.api import API, assert_error

TOKENS = API + "tokens/"


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_creating_a_token_returns_its_secret_once_and_never_again(as_bob):
    created = as_bob.post(TOKENS, {"name": "laptop"}, format="json")
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("mst_") and len(secret) > 40
    assert created.json()["prefix"] == secret[:10]

    listed = as_bob.get(TOKENS)
    assert listed.status_code == 200
    assert secret not in listed.content.decode()
    assert all("token" not in row for row in listed.json()["results"])
    assert {row["name"] for row in listed.json()["results"]} == {"tests", "laptop"}
    assert bearer(secret).get(API + "me/").json()["username"] == "bob"


def test_only_the_sha256_of_a_token_is_stored(as_bob):
    secret = as_bob.post(TOKENS, {"name": "laptop"}, format="json").json()["token"]
    token = ApiToken.objects.get(name="laptop")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table} WHERE id = %s", [token.pk])  # noqa: S608
        row = cursor.fetchone()
    assert row is not None
    assert not any(secret in str(value) for value in row)
    assert not any(secret[4:] in str(value) for value in row)  # not even without the prefix


def test_deleting_a_token_revokes_it_and_it_stops_working_at_once(as_bob):
    created = as_bob.post(TOKENS, {"name": "laptop"}, format="json").json()
    client = bearer(created["token"])
    assert client.get(API + "incidents/").status_code == 200

    assert as_bob.delete(f"{TOKENS}{created['id']}/").status_code == 204

    assert_error(client.get(API + "incidents/"), 401, "Unknown or revoked API token.")
    token = ApiToken.objects.get(pk=created["id"])
    assert token.revoked_at is not None  # kept, for the record
    listed = {row["id"]: row for row in as_bob.get(TOKENS).json()["results"]}
    assert listed[created["id"]]["revoked_at"] is not None


def test_a_token_can_revoke_itself(db, bob):
    token, secret = create_api_token(bob, name="self")
    client = bearer(secret)
    assert client.delete(f"{TOKENS}{token.pk}/").status_code == 204
    assert_error(client.get(TOKENS), 401)


def test_nobody_sees_or_revokes_someone_elses_tokens(as_alice, as_bob, alice):
    alices, alice_secret = create_api_token(alice, name="alice-only")

    listed = as_bob.get(TOKENS).json()["results"]
    assert "alice-only" not in {row["name"] for row in listed}
    assert_error(as_bob.delete(f"{TOKENS}{alices.pk}/"), 404)
    alices.refresh_from_db()
    assert alices.revoked_at is None
    assert bearer(alice_secret).get(API + "me/").status_code == 200
    # Not even an admin revokes another person's token through this endpoint.
    bobs = ApiToken.objects.get(user__username="bob")
    assert_error(as_alice.delete(f"{TOKENS}{bobs.pk}/"), 404)


def test_a_token_needs_a_name(as_charlie):
    assert_error(as_charlie.post(TOKENS, {}, format="json"), 400, "name: This field is required.")
    assert_error(as_charlie.post(TOKENS, {"name": "x" * 101}, format="json"), 400, "name:")


def test_a_token_secret_cannot_be_chosen_by_the_client(as_bob):
    response = as_bob.post(TOKENS, {"name": "mine", "token": "mst_chosen"}, format="json")
    assert response.status_code == 201
    assert response.json()["token"] != "mst_chosen"
    assert_error(bearer("mst_chosen").get(API + "me/"), 401)


def test_using_a_token_records_when_it_was_last_used_at_most_once_a_minute(db, bob):
    token, secret = create_api_token(bob, name="t")
    assert token.last_used_at is None
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        bearer(secret).get(API + "me/")
        token.refresh_from_db()
        first = token.last_used_at
        assert first == timezone.now()

        traveller.shift(timedelta(seconds=30))
        bearer(secret).get(API + "me/")
        token.refresh_from_db()
        assert token.last_used_at == first

        traveller.shift(timedelta(seconds=31))
        bearer(secret).get(API + "me/")
        token.refresh_from_db()
        assert token.last_used_at == timezone.now()
    listed = bearer(secret).get(TOKENS).json()["results"]
    assert listed[0]["last_used_at"] is not None


def test_create_api_token_command_prints_a_working_token(bob):
    out = StringIO()
    call_command("create_api_token", "bob", "--name", "ci", stdout=out)
    secret = out.getvalue().strip()
    assert secret.startswith("mst_")
    assert ApiToken.objects.get(name="ci").token_hash == hashlib.sha256(secret.encode()).hexdigest()
    me = bearer(secret).get(API + "me/")
    assert me.status_code == 200
    assert me.json()["username"] == "bob"


def test_create_api_token_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("create_api_token", "nobody", stdout=StringIO())
    assert not ApiToken.objects.exists()


def test_me_answers_who_the_token_belongs_to(as_charlie):
    me = as_charlie.get(API + "me/").json()
    assert me["username"] == "charlie"
    assert me["role"] == "observer"
    assert "password" not in me

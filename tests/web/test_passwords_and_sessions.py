"""Django's password validators wherever a password is set; sign-ins that end (M5, L9)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessLog
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tasks import sweep_signins

pytestmark = pytest.mark.django_db

STRONG = "quiet-harbor-lantern-42"


@pytest.fixture
def root() -> Client:
    User.objects.create_superuser("root", "root@example.com", STRONG)
    client = Client()
    client.force_login(User.objects.get(username="root"))
    return client


@pytest.mark.parametrize("weak", ["password", "12345678", "short", "alice-admin"])
def test_weak_passwords_are_refused(weak):
    with pytest.raises(ValidationError):
        validate_password(weak, User(username="alice-admin"))
    validate_password(STRONG, User(username="alice-admin"))


def test_the_admin_will_not_create_a_person_with_a_weak_password(root):
    form = {"username": "dave", "usable_password": "true"}
    refused = root.post(
        "/admin/accounts/user/add/", {**form, "password1": "password", "password2": "password"}
    )
    assert refused.status_code == 200
    assert b"This password is too common" in refused.content
    assert not User.objects.filter(username="dave").exists()
    created = root.post(
        "/admin/accounts/user/add/", {**form, "password1": STRONG, "password2": STRONG}
    )
    assert created.status_code == 302
    assert User.objects.get(username="dave").check_password(STRONG)


def test_the_admin_will_not_change_a_password_to_a_weak_one(root, alice):
    url = f"/admin/accounts/user/{alice.pk}/password/"
    refused = root.post(url, {"password1": "12345678", "password2": "12345678"})
    assert refused.status_code == 200
    assert b"This password is entirely numeric" in refused.content


def test_a_sign_in_lasts_muster_session_hours(alice, settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600  # the default
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["max-age"] == 12 * 3600


def test_the_hourly_sweep_deletes_ended_sessions_and_old_sign_in_records(alice, bob):
    late, live = Client(), Client()
    assert late.post("/login/", {"username": "alice", "password": "pw-alice"}).status_code == 302
    assert live.post("/login/", {"username": "bob", "password": "pw-bob"}).status_code == 302
    ended = Session.objects.get(session_key=late.cookies["sessionid"].value)
    ended.expire_date = timezone.now() - timedelta(minutes=1)
    ended.save()
    AccessLog.objects.filter(username="alice").update(
        attempt_time=timezone.now() - timedelta(days=91)
    )

    sweep_signins()

    assert not Session.objects.filter(pk=ended.pk).exists()
    assert Session.objects.filter(session_key=live.cookies["sessionid"].value).exists()
    assert list(AccessLog.objects.values_list("username", flat=True)) == ["bob"]
    assert live.get("/incidents/").status_code == 200

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_pages_need_login():
    response = Client().get("/incidents/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/incidents/"


def test_login_page_signs_in_and_goes_on(alice):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/?next=/oncall/")
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/login/",
        {
            "username": "alice",
            "password": "pw-alice",
            "next": "/oncall/",
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/oncall/"


def test_wrong_password_is_refused_with_a_message(alice):
    response = Client().post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_login_without_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 403


def test_logout_is_a_post(web_alice):
    assert web_alice.get("/logout/").status_code == 405
    response = web_alice.post("/logout/")
    assert response.status_code == 302
    assert web_alice.get("/incidents/").status_code == 302

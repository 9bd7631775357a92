"""Every page of the web UI needs a signed-in person: anonymous requests go to the login page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern

from web.urls import urlpatterns

OPEN_TO_ALL = {"web-home", "login", "logout"}  # the start redirects; the others are sign-in/out


def _example_path(pattern: URLPattern) -> str:
    # Every converter in the web routes is an int (a number or an id); 1 fills each.
    return "/" + re.sub(r"<int:\w+>", "1", str(pattern.pattern))


ROUTES = [p for p in urlpatterns if p.name not in OPEN_TO_ALL]


def test_the_routes_are_all_named_and_found():
    assert all(p.name for p in urlpatterns)
    assert len(ROUTES) > 40


@pytest.mark.django_db
@pytest.mark.parametrize("pattern", ROUTES, ids=[p.name for p in ROUTES])
def test_anonymous_requests_are_sent_to_log_in(pattern):
    path = _example_path(pattern)
    statuses = {}
    for method in ("get", "post"):
        response = getattr(Client(), method)(path)
        statuses[method] = response.status_code
        if response.status_code == 302:
            assert response["Location"].startswith("/login/?next="), response["Location"]
    # Each method is sent to log in, or refused outright (a POST-only action, a read-only page).
    assert set(statuses.values()) <= {302, 405}, (path, statuses)
    assert 302 in statuses.values(), (path, statuses)

"""Every API route, every method, every role: who may do what, and how refusals look.

ROUTES lists each (method, route) the URL resolver exposes under /api/v1/ with the role it
needs and a request that succeeds for that role. A test walks the resolver and fails when a
route is missing here, so no new endpoint escapes the role checks.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from accounts.services import create_api_token
from tests.api.routes import ADMIN, OBSERVER, RESPONDER, Route
from tests.helpers.api import API, assert_error
from tests.incidents.postmortem_routes import ROUTES as POSTMORTEM_ROUTES
from tests.runbooks.routes import ROUTES as RUNBOOK_ROUTES
from tests.warroom.routes import ROUTES as WARROOM_ROUTES

RANK = {OBSERVER: 0, RESPONDER: 1, ADMIN: 2}
CLIENTS = {ADMIN: "alice", RESPONDER: "bob", OBSERVER: "charlie"}


def _later(hours: int = 1) -> str:
    return (timezone.now() + timedelta(hours=hours)).isoformat()


MATCHERS = [{"label": "team", "op": "=~", "value": "db|cache"}]
LAYER = {"rotation": "daily", "start": "2025-01-06T09:00:00", "participants": ["@user"]}

ROUTES = [
    Route("GET", "", OBSERVER),
    Route("GET", "me/", OBSERVER),
    Route("GET", "schema/", OBSERVER),
    Route("GET", "docs/", OBSERVER),
    # services: everyone reads, admins configure
    Route("GET", "services/", OBSERVER),
    Route("GET", "services/{pk}/", OBSERVER, obj="service"),
    Route("POST", "services/", ADMIN, 201, payload={"name": "payments"}),
    Route("PUT", "services/{pk}/", ADMIN, obj="service", payload={"name": "checkout-v2"}),
    Route("PATCH", "services/{pk}/", ADMIN, obj="service", payload={"description": "the shop"}),
    Route("DELETE", "services/{pk}/", ADMIN, 204, obj="spare_service"),
    # incidents: everyone reads, responders act
    Route("GET", "incidents/", OBSERVER),
    Route("GET", "incidents/{number}/", OBSERVER, obj="incident"),
    Route("GET", "incidents/{number}/timeline/", OBSERVER, obj="incident"),
    Route("POST", "incidents/", RESPONDER, 201, payload={"title": "By hand", "service": "*"}),
    Route("POST", "incidents/{number}/acknowledge/", RESPONDER, obj="incident"),
    Route("POST", "incidents/{number}/unacknowledge/", RESPONDER, obj="acked"),
    Route("POST", "incidents/{number}/resolve/", RESPONDER, obj="incident"),
    Route("POST", "incidents/{number}/snooze/", RESPONDER, obj="incident", payload={"minutes": 30}),
    Route("POST", "incidents/{number}/escalate/", RESPONDER, obj="incident"),
    Route(
        "POST", "incidents/{number}/reassign/", RESPONDER, obj="incident", payload={"user": "bob"}
    ),
    Route(
        "POST", "incidents/{number}/severity/", RESPONDER, obj="incident", payload={"severity": 1}
    ),
    Route(
        "POST", "incidents/{number}/merge/", RESPONDER, obj="incident", payload={"incidents": "*"}
    ),
    Route(
        "POST", "incidents/{number}/notes/", RESPONDER, 201, obj="incident", payload={"text": "hi"}
    ),
    # alerts: read-only
    Route("GET", "alerts/", OBSERVER),
    Route("GET", "alerts/{pk}/", OBSERVER, obj="alert"),
    # integrations: everyone reads (without secrets), admins configure
    Route("GET", "integrations/", OBSERVER),
    Route("GET", "integrations/{pk}/", OBSERVER, obj="integration"),
    Route("GET", "integrations/{pk}/rejections/", OBSERVER, obj="integration"),
    Route("GET", "integrations/{pk}/requests/", OBSERVER, obj="integration"),
    Route(
        "POST",
        "integrations/",
        ADMIN,
        201,
        payload={"name": "grafana", "kind": "grafana", "service": "*"},
    ),
    Route(
        "PUT",
        "integrations/{pk}/",
        ADMIN,
        obj="integration",
        payload={"name": "prom-2", "kind": "alertmanager", "service": "*"},
    ),
    Route("PATCH", "integrations/{pk}/", ADMIN, obj="integration", payload={"enabled": False}),
    Route("DELETE", "integrations/{pk}/", ADMIN, 204, obj="spare_integration"),
    Route("POST", "integrations/{pk}/rotate/", ADMIN, obj="integration"),
    # routing rules: admins only write
    Route("GET", "routing-rules/", OBSERVER),
    Route("GET", "routing-rules/{pk}/", OBSERVER, obj="rule"),
    Route("POST", "routing-rules/", ADMIN, 201, payload={"matchers": MATCHERS, "service": "*"}),
    Route(
        "PUT",
        "routing-rules/{pk}/",
        ADMIN,
        obj="rule",
        payload={"matchers": MATCHERS, "service": "*", "position": 3},
    ),
    Route("PATCH", "routing-rules/{pk}/", ADMIN, obj="rule", payload={"name": "db team"}),
    Route("DELETE", "routing-rules/{pk}/", ADMIN, 204, obj="rule"),
    # silences: responders create, edit and expire them
    Route("GET", "silences/", OBSERVER),
    Route("GET", "silences/{pk}/", OBSERVER, obj="silence"),
    Route(
        "POST",
        "silences/",
        RESPONDER,
        201,
        payload={"matchers": MATCHERS, "ends_at": "*later", "comment": "db migration"},
    ),
    Route("PATCH", "silences/{pk}/", RESPONDER, obj="silence", payload={"comment": "longer"}),
    Route(
        "PUT",
        "silences/{pk}/",
        RESPONDER,
        obj="silence",
        payload={"matchers": MATCHERS, "ends_at": "*later", "comment": "db migration"},
    ),
    Route("DELETE", "silences/{pk}/", RESPONDER, 204, obj="silence"),
    # tokens: anyone, for their own tokens
    Route("GET", "tokens/", OBSERVER),
    Route("POST", "tokens/", OBSERVER, 201, payload={"name": "laptop"}),
    Route("DELETE", "tokens/{pk}/", OBSERVER, 204, obj="my_token"),
    # people: read-only
    Route("GET", "users/", OBSERVER),
    Route("GET", "users/{pk}/", OBSERVER, obj="user"),
    # on call: everyone reads; responders manage overrides and their own contact methods and
    # rules; admins configure the rest. "@name" in a payload is the world's object of that name.
    Route("GET", "teams/", OBSERVER),
    Route("GET", "teams/{pk}/", OBSERVER, obj="team"),
    Route("POST", "teams/", ADMIN, 201, payload={"name": "sre", "members": [{"user": "@user"}]}),
    Route("PUT", "teams/{pk}/", ADMIN, obj="team", payload={"name": "sre-2", "members": []}),
    Route("PATCH", "teams/{pk}/", ADMIN, obj="team", payload={"name": "dba"}),
    Route("DELETE", "teams/{pk}/", ADMIN, 204, obj="spare_team"),
    Route("GET", "schedules/", OBSERVER),
    Route("GET", "schedules/{pk}/", OBSERVER, obj="schedule"),
    Route("GET", "schedules/{pk}/final/", OBSERVER, obj="schedule"),
    Route("GET", "schedules/{pk}/oncall/", OBSERVER, obj="schedule"),
    Route("POST", "schedules/", ADMIN, 201, payload={"name": "db", "time_zone": "Europe/Berlin"}),
    Route("PUT", "schedules/{pk}/", ADMIN, obj="schedule", payload={"name": "primary-2"}),
    Route("PATCH", "schedules/{pk}/", ADMIN, obj="schedule", payload={"description": "ops"}),
    Route("DELETE", "schedules/{pk}/", ADMIN, 204, obj="spare_schedule"),
    Route("POST", "schedules/{pk}/rotate-ical/", ADMIN, obj="schedule"),
    Route("GET", "layers/", OBSERVER),
    Route("GET", "layers/{pk}/", OBSERVER, obj="layer"),
    Route("POST", "layers/", ADMIN, 201, payload={**LAYER, "schedule": "@schedule"}),
    Route("PUT", "layers/{pk}/", ADMIN, obj="layer", payload={**LAYER, "schedule": "@schedule"}),
    Route("PATCH", "layers/{pk}/", ADMIN, obj="layer", payload={"level": 2}),
    Route("DELETE", "layers/{pk}/", ADMIN, 204, obj="layer"),
    Route("GET", "overrides/", OBSERVER),
    Route("GET", "overrides/{pk}/", OBSERVER, obj="override"),
    Route(
        "POST",
        "overrides/",
        RESPONDER,
        201,
        payload={"schedule": "@schedule", "user": "@user", "start": "*later", "end": "*later2"},
    ),
    Route("DELETE", "overrides/{pk}/", RESPONDER, 204, obj="override"),
    Route("GET", "oncall/", OBSERVER),
    Route("GET", "shifts/", OBSERVER),
    Route("GET", "users/{pk}/deactivation-gaps/", ADMIN, obj="user"),
    Route("GET", "escalation-policies/", OBSERVER),
    Route("GET", "escalation-policies/{pk}/", OBSERVER, obj="policy"),
    Route(
        "POST",
        "escalation-policies/",
        ADMIN,
        201,
        payload={"name": "db", "steps": [{"delay_minutes": 5, "users": ["@user"]}]},
    ),
    Route(
        "PUT",
        "escalation-policies/{pk}/",
        ADMIN,
        obj="policy",
        payload={"name": "web", "steps": [{"delay_minutes": 5, "schedules": ["@schedule"]}]},
    ),
    Route("PATCH", "escalation-policies/{pk}/", ADMIN, obj="policy", payload={"repeat": 2}),
    Route("DELETE", "escalation-policies/{pk}/", ADMIN, 204, obj="spare_policy"),
    Route("GET", "service-policies/", OBSERVER),
    Route("GET", "service-policies/{pk}/", OBSERVER, obj="service_policy"),
    Route(
        "POST",
        "service-policies/",
        ADMIN,
        201,
        payload={"service": "@spare_service", "policy": "@policy"},
    ),
    Route(
        "PUT",
        "service-policies/{pk}/",
        ADMIN,
        obj="service_policy",
        payload={"service": "@service", "policy": "@spare_policy"},
    ),
    Route(
        "PATCH",
        "service-policies/{pk}/",
        ADMIN,
        obj="service_policy",
        payload={"policy": "@spare_policy"},
    ),
    Route("DELETE", "service-policies/{pk}/", ADMIN, 204, obj="service_policy"),
    # "my_*" objects belong to whoever sends the request.
    Route("GET", "me/contact-methods/", OBSERVER),
    Route("GET", "me/contact-methods/{pk}/", OBSERVER, obj="my_method"),
    Route(
        "POST",
        "me/contact-methods/",
        RESPONDER,
        201,
        payload={"kind": "sms", "address": "(415) 555-0199", "region": "US"},
    ),
    Route(
        "PUT",
        "me/contact-methods/{pk}/",
        RESPONDER,
        obj="my_method",
        payload={"kind": "sms", "address": "+14155550100", "label": "work"},
    ),
    Route("PATCH", "me/contact-methods/{pk}/", RESPONDER, obj="my_method", payload={"label": "m"}),
    Route("DELETE", "me/contact-methods/{pk}/", RESPONDER, 204, obj="my_method"),
    Route("POST", "me/contact-methods/{pk}/verify/", RESPONDER, 202, obj="my_new_method"),
    Route(
        "POST",
        "me/contact-methods/{pk}/confirm/",
        RESPONDER,
        obj="my_method",
        payload={"code": "123456"},
    ),
    Route("GET", "me/notification-rules/", OBSERVER),
    Route("GET", "me/notification-rules/{pk}/", OBSERVER, obj="my_rule"),
    Route(
        "POST",
        "me/notification-rules/",
        RESPONDER,
        201,
        payload={"urgency": "low", "delay_minutes": 5, "contact_method": "@my_method"},
    ),
    Route(
        "PUT",
        "me/notification-rules/{pk}/",
        RESPONDER,
        obj="my_rule",
        payload={"urgency": "high", "delay_minutes": 1, "contact_method": "@my_method"},
    ),
    Route(
        "PATCH",
        "me/notification-rules/{pk}/",
        RESPONDER,
        obj="my_rule",
        payload={"delay_minutes": 3},
    ),
    Route("DELETE", "me/notification-rules/{pk}/", RESPONDER, 204, obj="my_rule"),
    Route("GET", "me/settings/", OBSERVER),
    Route(
        "PUT",
        "me/settings/",
        OBSERVER,
        payload={"time_zone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:00"},
    ),
    Route("PATCH", "me/settings/", OBSERVER, payload={"time_zone": "America/New_York"}),
    Route("GET", "me/ical/", OBSERVER),
    Route("POST", "me/ical/rotate/", OBSERVER),
    # pages: everyone reads; responders page people
    Route("GET", "pages/", OBSERVER),
    Route("GET", "pages/{pk}/", OBSERVER, obj="page"),
    Route("GET", "outbox/", OBSERVER),
    Route("GET", "outbox/{pk}/", OBSERVER, obj="outbox_message"),
    Route(
        "POST",
        "incidents/{number}/page/",
        RESPONDER,
        201,
        obj="incident",
        payload={"user": "@my_username"},
    ),
    Route("GET", "audit/", ADMIN),
    Route("GET", "audit/{pk}/", ADMIN, obj="audit_entry"),
]
ROUTES += WARROOM_ROUTES + RUNBOOK_ROUTES + POSTMORTEM_ROUTES


def _url(route: Route, world: dict) -> str:
    value = world.get(route.obj, "")
    return API + route.route.format(pk=value, number=value)


def _payload(route: Route, world: dict) -> dict:
    filled = {
        "service": world["service"],
        "incidents": [world["other"]],
        "ends_at": _later(),
        "start": _later(),
        "end": _later(2),
    }
    return {
        key: (filled[key] if value in ("*", "*later", "*later2") else _named(value, world))
        for key, value in route.payload.items()
    }


def _named(value, world: dict):
    """Replace "@name" (in lists and objects too) with the world's object of that name."""
    if isinstance(value, str) and value.startswith("@"):
        return world[value[1:]]
    if isinstance(value, list):
        return [_named(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _named(v, world) for k, v in value.items()}
    return value


def _outbox_message(page_id: int) -> int:
    """Return the id of the console outbox's copy of page `page_id`."""
    from oncall.models import OutboxKind, OutboxMessage, Page

    page = Page.objects.get(pk=page_id)
    return OutboxMessage.objects.create(
        kind=OutboxKind.PAGE, page=page, person=page.person, channel="sms", body="hi"
    ).pk


@pytest.fixture
def world(world, request) -> dict:
    """The shared world plus on-call objects; "my_*" ones belong to the role under test."""
    from tests.incidents.postmortem_routes import postmortem_world
    from tests.oncall.builders import oncall_world
    from tests.runbooks.routes import runbooks_world
    from tests.warroom.routes import warroom_world

    role = getattr(getattr(request.node, "callspec", None), "params", {}).get("role", OBSERVER)
    user = User.objects.get(username=CLIENTS[role])
    world = {**world, **oncall_world(user)}
    world["outbox_message"] = _outbox_message(world["page"])
    world.update(warroom_world(user, world))
    world.update(runbooks_world(user, world))
    world.update(postmortem_world(user, world))
    return world


def _send(client: APIClient, route: Route, world: dict):
    return getattr(client, route.method.lower())(
        _url(route, world), _payload(route, world), format="json"
    )


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for app in ("accounts", "incidents", "alerts", "oncall", "warroom", "runbooks")
        for model in apps.get_app_config(app).get_models()
    }


def _state_snapshot() -> tuple:
    from alerts.models import Integration, Silence
    from incidents.models import Incident, Service

    return (
        _row_counts(),
        list(Incident.objects.order_by("pk").values()),
        list(Service.objects.order_by("pk").values()),
        list(Integration.objects.order_by("pk").values()),
        list(Silence.objects.order_by("pk").values()),
        list(ApiToken.objects.order_by("pk").values("pk", "revoked_at")),
    )


@pytest.mark.parametrize("role", [ADMIN, RESPONDER, OBSERVER])
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_route_allows_exactly_the_roles_at_or_above_the_one_it_needs(
    route, role, world, request
):
    client = request.getfixturevalue(f"as_{CLIENTS[role]}")
    user = User.objects.get(username=CLIENTS[role])
    mine, _ = create_api_token(user, name="to revoke")
    world = {**world, "my_token": mine.pk}
    before = _state_snapshot()

    response = _send(client, route, world)

    if RANK[role] >= RANK[route.needs]:
        assert response.status_code == route.ok, (response.status_code, response.content[:400])
    else:
        assert_error(response, 403, f"This needs the {route.needs} role; you are {role}.")
        assert _state_snapshot() == before, "a refused request changed something"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_route_answers_anonymous_requests_with_401_and_a_bearer_challenge(route, world):
    before = _state_snapshot()
    response = _send(APIClient(), route, {**world, "my_token": 1})
    assert_error(response, 401, "Authentication credentials were not provided.")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _state_snapshot() == before


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer mst_not-a-real-token", "Unknown or revoked API token."),
        ("Bearer", "Authorization header must be 'Bearer <token>'"),
        ("Bearer two parts", "Authorization header must be 'Bearer <token>'"),
        ("bearer mst_lowercase-scheme-unknown", "Unknown or revoked API token."),
    ],
)
def test_a_bad_bearer_token_is_refused_with_401_saying_why(header, message, db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(API + "incidents/")
    assert_error(response, 401, message)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_refused_with_401(alice):
    token, secret = create_api_token(alice, name="old")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(API + "me/").status_code == 200
    token.revoked_at = timezone.now()
    token.save()
    assert_error(client.get(API + "me/"), 401, "Unknown or revoked API token.")


def test_a_deactivated_users_token_is_refused_with_401(as_bob, bob):
    assert as_bob.get(API + "me/").status_code == 200
    bob.is_active = False
    bob.save()
    response = as_bob.get(API + "me/")
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_error(as_bob.post(API + "tokens/", {"name": "sneaky"}, format="json"), 401)
    assert not ApiToken.objects.filter(name="sneaky").exists()


def test_a_superuser_with_the_observer_role_may_still_configure(db):
    root = User.objects.create_superuser("root", "root@example.com", "pw", role=OBSERVER)
    _, secret = create_api_token(root, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.post(API + "services/", {"name": "x"}, format="json").status_code == 201


def test_a_browser_session_without_a_csrf_token_cannot_write(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(API + "services/").status_code == 200
    assert_error(client.post(API + "services/", {"name": "x"}, format="json"), 403, "CSRF")


# --- no route escapes the table ----------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>")
_IGNORED_METHODS = {"options", "head", "trace"}


def _api_routes() -> set[tuple[str, str]]:
    """Return every (METHOD, route) the URL resolver serves under /api/v1/."""
    found: set[tuple[str, str]] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            text = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, text)
                continue
            assert isinstance(pattern, URLPattern)
            if not text.startswith("api/") or re.search(r"[<:]format>", text):
                continue  # not the API, or a format-suffix twin of a route listed anyway
            assert text.startswith("api/v1/"), f"an API route outside /api/v1/: {text}"
            route = _GROUP.sub(lambda m: "{" + (m[1] or m[2]) + "}", text[len("api/v1/") :])
            for method in _methods(pattern.callback):
                found.add((method.upper(), route))

    walk(get_resolver().url_patterns, "")
    return found


def _methods(callback) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset route: the methods the router bound
        return set(actions) - _IGNORED_METHODS
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    assert view is not None, f"not a class-based API view: {callback!r}"
    return {m for m in view.http_method_names if hasattr(view, m)} - _IGNORED_METHODS


def test_the_route_table_covers_every_api_route_the_resolver_serves():
    served = _api_routes()
    listed = {(r.method, r.route) for r in ROUTES}
    assert len(listed) == len(ROUTES), "a route is listed twice"
    assert served - listed == set(), "API routes with no role check in ROUTES"
    assert listed - served == set(), "ROUTES lists routes the API does not serve"
    assert ("POST", "incidents/{number}/acknowledge/") in served  # the walk really finds actions


def test_every_api_view_checks_roles_through_role_permission():
    from accounts.permissions import RolePermission

    for pattern_callback in _api_callbacks():
        view = getattr(pattern_callback, "cls", None) or pattern_callback.view_class
        permissions = getattr(view, "permission_classes", [])
        initkwargs = getattr(pattern_callback, "initkwargs", None) or getattr(
            pattern_callback, "view_initkwargs", {}
        )
        permissions = initkwargs.get("permission_classes", permissions)
        assert RolePermission in permissions, f"{view.__name__} does not check roles"


def _api_callbacks():
    def walk(patterns, prefix):
        for pattern in patterns:
            text = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, text)
            elif text.startswith("api/"):
                yield pattern.callback

    return list(walk(get_resolver().url_patterns, ""))


def _reader(route: Route) -> str:
    """Return the role that may read `route`'s path (observer, unless its GET needs more)."""
    return next((r.needs for r in ROUTES if r.route == route.route and r.method == "GET"), OBSERVER)


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.method == "GET" and r.route != "schema/"], ids=str
)
def test_every_read_renders_for_a_logged_in_browser(route, world):
    client = APIClient()
    client.force_login(User.objects.get(username=CLIENTS[route.needs]))
    response = client.get(_url(route, world), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("route", sorted({r.route: r for r in ROUTES}.values(), key=str), ids=str)
def test_options_requests_are_authenticated_and_never_fail(route, world, request):
    url = _url(route, {**world, "my_token": 1})
    assert_error(APIClient().options(url), 401)
    reader = _reader(route)
    response = request.getfixturevalue(f"as_{CLIENTS[reader]}").options(url)
    if route.route == "docs/":
        assert_error(response, 405)
    else:
        assert response.status_code == 200
    if response["Content-Type"] == "application/json":
        # An observer is not offered forms for writes it may not make.
        offered = "POST" in response.json().get("actions", {})
        assert not offered or route.route == "tokens/" or reader != OBSERVER

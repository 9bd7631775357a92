"""Routing rules and silences: matcher validation, windows, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import RoutingRule, Silence
from tests.helpers.api import API, assert_error

RULES = API + "routing-rules/"
SILENCES = API + "silences/"


def iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


BAD_MATCHERS = [
    ({"label": "team", "op": "=", "value": "db"}, "matchers must be a list"),
    ("team=db", "matchers must be a list"),
    ([], "needs at least one matcher"),
    (["team=db"], "a matcher must be an object"),
    ([{"op": "=", "value": "db"}], "a matcher needs a non-empty string 'label'"),
    ([{"label": "team", "op": "==", "value": "db"}], "matcher op must be one of =, !=, =~, !~"),
    ([{"label": "team", "op": "=~", "value": "db("}], "invalid regex for 'team'"),
    ([{"label": "team", "op": "=", "value": 7}], "matcher value for 'team' must be a string"),
    ([{"label": "team", "op": "=~", "value": "a" * 600}], "longer than 512 characters"),
    ([{"label": "team", "op": "=", "value": "nul\u0000byte"}], "NUL"),
    ([{"label": "te\u0000am", "op": "=", "value": "db"}], "NUL"),
]


@pytest.mark.parametrize(("matchers", "message"), BAD_MATCHERS)
def test_a_routing_rule_with_bad_matchers_is_a_400_saying_what_is_wrong(
    as_alice, service, matchers, message
):
    response = as_alice.post(RULES, {"matchers": matchers, "service": service.pk}, format="json")
    error = assert_error(response, 400, message)
    assert error["problems"][0].startswith("matchers: ")
    assert not RoutingRule.objects.exists()


def test_a_routing_rule_round_trips(as_alice, service, make_integration):
    integration = make_integration()
    matchers = [
        {"label": "team", "op": "=", "value": "db"},
        {"label": "env", "op": "!~", "value": "dev|test"},
    ]
    created = as_alice.post(
        RULES,
        {"matchers": matchers, "service": service.pk, "integration": integration.pk, "position": 2},
        format="json",
    )
    assert created.status_code == 201
    body = as_alice.get(f"{RULES}{created.json()['id']}/").json()
    assert body["matchers"] == matchers
    assert (body["service"], body["integration"], body["position"]) == (
        service.pk,
        integration.pk,
        2,
    )


def test_a_routing_rule_needs_a_service(as_alice, db):
    matchers = [{"label": "team", "op": "=", "value": "db"}]
    assert_error(as_alice.post(RULES, {"matchers": matchers}, format="json"), 400, "service:")


def test_routing_rules_are_listed_in_position_order(as_charlie, service):
    for position in (5, 1, 3):
        RoutingRule.objects.create(
            position=position, matchers=[{"label": "a", "op": "=", "value": "b"}], service=service
        )
    rows = as_charlie.get(RULES).json()["results"]
    assert [r["position"] for r in rows] == [1, 3, 5]


# --- silences --------------------------------------------------------------------------------


def silence(client, **fields):
    payload = {"ends_at": iso(timedelta(hours=1)), "comment": "maintenance", **fields}
    return client.post(SILENCES, payload, format="json")


def test_a_responder_creates_a_silence_that_starts_now(as_bob, db):
    before = timezone.now()
    response = silence(as_bob, matchers=[{"label": "env", "op": "=", "value": "dev"}])
    assert response.status_code == 201
    body = response.json()
    assert body["created_by"] == "bob"
    assert body["active"] is True
    created = Silence.objects.get(pk=body["id"])
    assert before <= created.starts_at <= timezone.now()


def test_a_service_alone_makes_a_maintenance_window(as_bob, service):
    response = silence(as_bob, service=service.pk)
    assert response.status_code == 201
    assert response.json()["service"] == service.pk
    assert response.json()["matchers"] == []


@pytest.mark.parametrize("matchers", [None, []])
def test_a_silence_needs_matchers_or_a_service(as_bob, db, matchers):
    fields = {} if matchers is None else {"matchers": matchers}
    assert_error(silence(as_bob, **fields), 400, "a silence needs matchers, a service")
    assert not Silence.objects.exists()


@pytest.mark.parametrize(("matchers", "message"), BAD_MATCHERS[:2] + BAD_MATCHERS[3:])
def test_a_silence_with_bad_matchers_is_a_400_saying_what_is_wrong(as_bob, db, matchers, message):
    assert_error(silence(as_bob, matchers=matchers), 400, "matchers: ", message)


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        (timedelta(hours=2), timedelta(hours=1)),
        (timedelta(hours=1), timedelta(hours=1)),
        (None, timedelta(hours=-1)),
    ],
)
def test_a_silence_must_end_after_it_starts(as_bob, service, starts, ends):
    fields = {"service": service.pk, "ends_at": iso(ends)}
    if starts is not None:
        fields["starts_at"] = iso(starts)
    assert_error(silence(as_bob, **fields), 400, "ends_at must be after starts_at")


def test_a_silence_needs_an_end_and_a_comment(as_bob, service):
    response = as_bob.post(SILENCES, {"service": service.pk}, format="json")
    error = assert_error(response, 400)
    assert {p.split(":")[0] for p in error["problems"]} == {"ends_at", "comment"}


def test_deleting_a_silence_expires_it_and_keeps_the_row(as_bob, service):
    created = silence(as_bob, service=service.pk).json()
    before = timezone.now()
    assert as_bob.delete(f"{SILENCES}{created['id']}/").status_code == 204
    row = Silence.objects.get(pk=created["id"])
    assert before <= row.ends_at <= timezone.now()
    body = as_bob.get(f"{SILENCES}{created['id']}/").json()
    assert body["active"] is False
    # Expiring again changes nothing.
    assert as_bob.delete(f"{SILENCES}{created['id']}/").status_code == 204
    assert Silence.objects.get(pk=created["id"]).ends_at == row.ends_at


def test_deleting_a_future_silence_means_it_never_starts(as_bob, service):
    created = silence(
        as_bob, service=service.pk, starts_at=iso(timedelta(days=1)), ends_at=iso(timedelta(days=2))
    ).json()
    assert created["active"] is False
    assert as_bob.delete(f"{SILENCES}{created['id']}/").status_code == 204
    row = Silence.objects.get(pk=created["id"])
    assert row.ends_at == row.starts_at
    assert not Silence.objects.active(row.starts_at).filter(pk=row.pk).exists()


def test_active_filter_lists_only_silences_in_force_now(as_charlie, service):
    now = timezone.now()
    current = Silence.objects.create(
        service=service, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    Silence.objects.create(
        service=service, starts_at=now - timedelta(hours=3), ends_at=now - timedelta(hours=2)
    )
    future = Silence.objects.create(
        service=service, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )
    active = as_charlie.get(f"{SILENCES}?active=true").json()["results"]
    assert [s["id"] for s in active] == [current.pk]
    assert active[0]["active"] is True
    inactive = as_charlie.get(f"{SILENCES}?active=false").json()["results"]
    assert current.pk not in {s["id"] for s in inactive}
    assert future.pk in {s["id"] for s in inactive}
    assert len(as_charlie.get(SILENCES).json()["results"]) == 3
    assert_error(as_charlie.get(f"{SILENCES}?active=maybe"), 400, "active must be true or false")

"""Routing rules, applied to alerts arriving over HTTP."""

from __future__ import annotations

import pytest

from alerts.models import Alert, Kind, RoutingRule
from incidents.models import Incident, Service
from tests.alerts.payloads import am_alert, am_batch


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


@pytest.fixture
def db_service(db):
    return Service.objects.create(name="database")


@pytest.fixture
def web_service(db):
    return Service.objects.create(name="web")


def rule(service, *matchers, integration=None, position=0, name=""):
    return RoutingRule.objects.create(
        integration=integration,
        position=position,
        name=name,
        service=service,
        matchers=[{"label": label, "op": op, "value": value} for label, op, value in matchers],
    )


def fire(post_json, url, fingerprint="fp-1", **labels):
    response = post_json(url, am_batch(am_alert(fingerprint, **labels)))
    assert response.status_code == 200
    return Alert.objects.get(fingerprint=fingerprint)


def test_no_matching_rule_routes_to_the_integrations_service(post_json, url, service, db_service):
    rule(db_service, ("team", "=", "db"))

    alert = fire(post_json, url, team="web")

    assert alert.service == service
    assert alert.incident.service == service


def test_matching_rule_routes_the_alert_and_its_incident(post_json, url, db_service):
    rule(db_service, ("team", "=", "db"))

    alert = fire(post_json, url, team="db")

    assert alert.service == db_service
    assert alert.incident.service == db_service


def test_first_matching_rule_by_position_wins(post_json, url, db_service, web_service):
    rule(web_service, ("env", "=", "prod"), position=20)
    rule(db_service, ("env", "=", "prod"), position=10)

    assert fire(post_json, url, env="prod").service == db_service


def test_integration_rules_come_before_global_rules(post_json, url, am, db_service, web_service):
    rule(web_service, ("env", "=", "prod"), position=0)  # global, lower position
    rule(db_service, ("env", "=", "prod"), integration=am, position=99)

    assert fire(post_json, url, env="prod").service == db_service


def test_rules_of_another_integration_do_not_apply(
    post_json, url, make_integration, service, db_service
):
    other = make_integration(Kind.ALERTMANAGER, name="other")
    rule(db_service, ("env", "=", "prod"), integration=other)

    assert fire(post_json, url, env="prod").service == service


def test_every_matcher_of_a_rule_must_match(post_json, url, service, db_service):
    rule(db_service, ("team", "=", "db"), ("env", "=", "prod"))

    assert fire(post_json, url, "fp-1", team="db", env="staging").service == service
    assert fire(post_json, url, "fp-2", team="db", env="prod").service == db_service


def test_not_equal_matcher(post_json, url, service, db_service):
    rule(db_service, ("env", "!=", "dev"))

    assert fire(post_json, url, "fp-1", env="dev").service == service
    assert fire(post_json, url, "fp-2", env="prod").service == db_service
    # A missing label counts as "", which is not "dev".
    assert fire(post_json, url, "fp-3").service == db_service


def test_regex_matcher_must_match_the_whole_value(post_json, url, service, db_service):
    rule(db_service, ("instance", "=~", "db-[0-9]+"))

    assert fire(post_json, url, "fp-1", instance="db-12").service == db_service
    assert fire(post_json, url, "fp-2", instance="db-12.prod").service == service
    assert fire(post_json, url, "fp-3", instance="old-db-12").service == service


def test_negative_regex_matcher(post_json, url, service, db_service):
    rule(db_service, ("instance", "!~", "web-.*"))

    assert fire(post_json, url, "fp-1", instance="web-1").service == service
    assert fire(post_json, url, "fp-2", instance="db-1").service == db_service


def test_a_rule_with_invalid_matchers_is_skipped(post_json, url, db_service, web_service):
    RoutingRule.objects.create(
        position=0, service=web_service, matchers=[{"label": "x", "op": "=~", "value": "("}]
    )
    rule(db_service, ("env", "=", "prod"), position=1)

    assert fire(post_json, url, env="prod").service == db_service


def test_alerts_of_one_batch_can_route_to_different_services(post_json, url, db_service, service):
    rule(db_service, ("team", "=", "db"))

    post_json(url, am_batch(am_alert("fp-db", team="db"), am_alert("fp-web", team="web")))

    assert Incident.objects.count() == 2
    assert {i.service for i in Incident.objects.all()} == {db_service, service}

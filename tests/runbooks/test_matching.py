"""Which runbook an incident gets: its service's own first, by position, when the labels fit."""

from __future__ import annotations

from incidents.models import Service
from runbooks.models import Runbook
from runbooks.services import distinct_label_sets, matching_runbook, select_runbook

DB = [{"label": "team", "op": "=", "value": "db"}]


def test_a_runbook_of_the_service_without_matchers_matches_every_incident(
    make_runbook, make_incident, service
):
    book = make_runbook(service=service)
    assert matching_runbook(make_incident({"alertname": "DiskFull"})) == book
    assert matching_runbook(make_incident()) == book  # no alerts at all


def test_another_services_runbook_never_matches(make_runbook, make_incident):
    other = Service.objects.create(name="search")
    make_runbook(service=other)
    assert matching_runbook(make_incident({"alertname": "DiskFull"})) is None


def test_no_runbook_at_all_is_none(make_incident):
    assert matching_runbook(make_incident({"alertname": "DiskFull"})) is None


def test_matchers_must_all_hold_for_one_alert(make_runbook, make_incident, service):
    book = make_runbook(
        service=service,
        matchers=[*DB, {"label": "env", "op": "=~", "value": "prod|staging"}],
    )
    assert matching_runbook(make_incident({"team": "db", "env": "prod"})) == book
    assert matching_runbook(make_incident({"team": "web"}, {"team": "db", "env": "staging"})) == (
        book
    )
    assert matching_runbook(make_incident({"team": "db", "env": "dev"})) is None
    # Each matcher holds for some alert, but no one alert satisfies both: no match.
    assert matching_runbook(make_incident({"team": "db"}, {"env": "prod"})) is None


def test_negative_matchers_and_an_incident_without_alerts(make_runbook, make_incident, service):
    make_runbook(service=service, matchers=[{"label": "env", "op": "!=", "value": "dev"}])
    assert matching_runbook(make_incident({"env": "prod"})) is not None
    assert matching_runbook(make_incident({"env": "dev"})) is None
    assert matching_runbook(make_incident()) is None  # matchers need an alert to look at


def test_the_services_own_runbooks_come_before_any_service_ones_then_position(
    make_runbook, make_incident, service
):
    anywhere = make_runbook("Generic triage", position=0)
    late = make_runbook("Checkout, general", service=service, position=20)
    early = make_runbook("Checkout database", service=service, position=10, matchers=DB)
    assert matching_runbook(make_incident({"team": "db"})) == early
    assert matching_runbook(make_incident({"team": "web"})) == late
    late.delete()
    assert matching_runbook(make_incident({"team": "web"})) == anywhere


def test_equal_positions_are_decided_by_age(make_runbook, make_incident, service):
    first = make_runbook("First", service=service)
    make_runbook("Second", service=service)
    assert matching_runbook(make_incident({"team": "db"})) == first


def test_a_runbook_with_unreadable_matchers_is_skipped(make_runbook, make_incident, service):
    make_runbook("Broken", service=service, matchers=[{"label": "x", "op": "=~", "value": "("}])
    fallback = make_runbook("Fallback", service=service, position=5)
    assert matching_runbook(make_incident({"x": "1"})) == fallback


def test_select_runbook_is_a_function_of_plain_values():
    a = Runbook(pk=1, title="any", service_id=None, position=0, matchers=[])
    b = Runbook(pk=2, title="db", service_id=7, position=3, matchers=DB)
    c = Runbook(pk=3, title="other", service_id=8, position=0, matchers=[])
    assert select_runbook([a, b, c], 7, [{"team": "db"}]) == b
    assert select_runbook([a, b, c], 7, [{"team": "web"}]) == a
    assert select_runbook([b, c], 7, []) is None
    assert select_runbook([c], 8, []) == c


def test_label_sets_in_hand_match_as_the_incidents_alerts_do(
    make_runbook, make_incident, service, django_assert_num_queries
):
    book = make_runbook(service=service, matchers=DB)
    incident = make_incident({"team": "web"}, {"team": "db"}, {"team": "web"})
    labels = distinct_label_sets(a.labels for a in incident.alerts.order_by("first_seen", "id"))
    assert labels == [{"team": "web"}, {"team": "db"}]

    with django_assert_num_queries(1):  # the candidates; the alerts are not read again
        assert matching_runbook(incident, labels) == book
    assert matching_runbook(incident) == book
    assert matching_runbook(incident, [{"team": "web"}]) is None

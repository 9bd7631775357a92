"""The alerts API: read-only, filterable, with the raw payload as text."""

from __future__ import annotations

import pytest

from alerts.models import AlertStatus, Kind, Silence
from incidents.models import Service
from tests.helpers.api import API, add_alert, assert_error, open_incident

ALERTS = API + "alerts/"


@pytest.fixture
def alerts(service, make_integration):
    prom = make_integration(Kind.ALERTMANAGER, name="prom")
    grafana = make_integration(Kind.GRAFANA, name="grafana")
    other = Service.objects.create(name="payments")
    incident = open_incident(service)
    silence = Silence.objects.create(
        service=service, starts_at="2025-01-01T00:00Z", ends_at="2025-01-02T00:00Z"
    )
    return {
        "firing": add_alert(prom, incident, fingerprint="a"),
        "resolved": add_alert(prom, incident, fingerprint="b", status=AlertStatus.RESOLVED),
        "grafana": add_alert(grafana, None, fingerprint="c", service=other),
        "silenced": add_alert(grafana, None, fingerprint="d", silence=silence),
        "incident": incident,
        "prom": prom,
        "other": other,
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:300]
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"firing", "resolved", "grafana", "silenced"}),
        ("status=firing", {"firing", "grafana", "silenced"}),
        ("status=resolved", {"resolved"}),
        ("incident={incident}", {"firing", "resolved"}),
        ("integration={prom}", {"firing", "resolved"}),
        ("service={other}", {"grafana"}),
        ("fingerprint=c", {"grafana"}),
        ("silenced=true", {"silenced"}),
    ],
)
def test_alert_filters(as_charlie, alerts, query, expected):
    query = query.format(
        incident=alerts["incident"].number, prom=alerts["prom"].pk, other=alerts["other"].pk
    )
    assert ids(as_charlie.get(f"{ALERTS}?{query}")) == {alerts[name].pk for name in expected}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=open", "status must be one of firing, resolved"),
        ("incident=abc", "incident must be an incident number"),
        ("integration=prom", "integration must be an id"),
        ("service=checkout", "service must be an id"),
    ],
)
def test_a_bad_alert_filter_is_a_400_saying_what_is_wrong(as_charlie, alerts, query, message):
    assert_error(as_charlie.get(f"{ALERTS}?{query}"), 400, message)


def test_an_alert_shows_its_integration_incident_and_raw_payload(as_charlie, alerts):
    body = as_charlie.get(f"{ALERTS}{alerts['firing'].pk}/").json()
    assert body["integration"] == {"id": alerts["prom"].pk, "name": "prom", "kind": "alertmanager"}
    assert body["incident"] == alerts["incident"].number
    assert body["raw"] == '{"labels": {"alertname": "HighCPU"}}'
    assert body["labels"] == {"alertname": "HighCPU"}


def test_alerts_cannot_be_written_through_the_api(as_alice, alerts):
    assert_error(as_alice.post(ALERTS, {"summary": "x"}, format="json"), 405)
    url = f"{ALERTS}{alerts['firing'].pk}/"
    assert_error(as_alice.patch(url, {"summary": "x"}, format="json"), 405)
    assert_error(as_alice.delete(url), 405)

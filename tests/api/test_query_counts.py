"""List endpoints run a fixed number of queries, however many rows they return (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, User
from alerts.models import Kind
from incidents import services
from incidents.models import Source
from tests.helpers.api import API, add_alert, open_incident

# Authentication (token lookup) + the page itself, with room for a last_used_at write.
MAX_QUERIES = 4


@pytest.fixture
def busy(db, service, make_integration, alice, bob, charlie):
    """Thirty incidents with alerts, acked, resolved, reassigned and merged by several people."""
    integrations = [make_integration(Kind.ALERTMANAGER), make_integration(Kind.GENERIC)]
    people = [
        alice,
        bob,
        *(User.objects.create_user(f"r{i}", role=Role.RESPONDER) for i in range(3)),
    ]
    incidents = []
    for i in range(30):
        incident = open_incident(service, f"incident {i}", severity=1 + i % 5)
        for j in range(2):
            add_alert(integrations[j], incident, fingerprint=f"{i}-{j}")
        who = people[i % len(people)]
        if i % 3:
            services.acknowledge_incident(incident, by=who, source=Source.WEB)
        if i % 4 == 0:
            services.reassign_incident(incident, to=who, by=alice, source=Source.WEB)
        if i % 3 == 2:
            services.resolve_incident(incident, by=people[(i + 1) % len(people)], source=Source.WEB)
        services.add_note(incident, text="checking", by=who, source=Source.CHAT)
        incidents.append(incident)
    services.merge_incidents(incidents[0], [incidents[1]], by=bob, source=Source.API)
    return incidents


def count_queries(client, url: str) -> tuple[int, dict]:
    client.get(url)  # warm up: the first request may record last_used_at
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.json()


@pytest.mark.parametrize(
    "path",
    [
        "incidents/",
        "incidents/?status=open&severity=1,2,3&q=incident",
        "alerts/",
        "alerts/?incident={number}",
        "incidents/{number}/timeline/",
        "integrations/",
        "silences/",
        "services/",
        "users/",
    ],
)
def test_a_list_does_not_grow_in_queries_with_its_rows(as_charlie, busy, path):
    url = API + path.format(number=busy[0].number)
    few, small = count_queries(as_charlie, url + ("&" if "?" in url else "?") + "page_size=2")
    many, big = count_queries(as_charlie, url)
    assert len(big["results"]) >= len(small["results"])
    assert many == few, f"{few} queries for a page of 2, {many} for a full page"
    assert many <= MAX_QUERIES


def test_incident_list_of_thirty_runs_a_bounded_number_of_queries(
    as_charlie, busy, django_assert_max_num_queries
):
    as_charlie.get(API + "incidents/")
    with django_assert_max_num_queries(MAX_QUERIES):
        rows = as_charlie.get(API + "incidents/").json()["results"]
    assert len(rows) == 30
    assert {r["alert_count"] for r in rows} == {2}
    assert any(r["resolved_by"] for r in rows) and any(r["merged_into"] for r in rows)


def test_alert_list_runs_a_bounded_number_of_queries(
    as_charlie, busy, django_assert_max_num_queries
):
    as_charlie.get(API + "alerts/")
    with django_assert_max_num_queries(MAX_QUERIES):
        rows = as_charlie.get(API + "alerts/").json()["results"]
    assert len(rows) == 50
    assert all(r["integration"]["name"] and r["incident"] for r in rows)


def test_timeline_runs_a_bounded_number_of_queries(as_charlie, busy, django_assert_max_num_queries):
    number = busy[0].number
    as_charlie.get(f"{API}incidents/{number}/timeline/")
    with django_assert_max_num_queries(MAX_QUERIES):
        rows = as_charlie.get(f"{API}incidents/{number}/timeline/").json()["results"]
    assert rows[0]["kind"] == "opened"
    assert len(rows) >= 4

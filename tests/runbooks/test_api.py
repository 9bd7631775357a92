"""The runbooks API: validation, who sees what, runs, graph templates, what an incident gets."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from incidents.models import EntryKind, Service
from runbooks.actions import request_run
from runbooks.models import Action, ActionRun, GraphTemplate, RunStatus
from runbooks.tasks import run_action
from tests.helpers.api import API, assert_error

LABELS = {"alertname": "DiskFull", "instance": "db-1:9100", "team": "db"}
ACTION = {
    "name": "restart-db",
    "description": "Restart the primary",
    "url": "https://jenkins.example.com/job/restart/buildWithParameters?token=s3cret",
    "payload_template": '{"host": "{{labels.instance}}"}',
    "headers": {"Authorization": "Bearer admin-set"},
}


@pytest.fixture
def book(make_runbook, service):
    return make_runbook(
        "Disk full", service=service, matchers=[{"label": "team", "op": "=", "value": "db"}]
    )


def test_runbooks_are_created_listed_and_filtered(as_alice, as_charlie, service):
    made = as_alice.post(
        API + "runbooks/",
        {
            "title": "Disk full",
            "service": service.pk,
            "matchers": [{"label": "team", "value": "db"}],
            "body": "# Free space\n\n`du -sh /var/log`",
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["matchers"] == [{"label": "team", "op": "=", "value": "db"}]
    as_alice.post(API + "runbooks/", {"title": "Generic"}, format="json")
    titles = [r["title"] for r in as_charlie.get(API + "runbooks/").json()["results"]]
    assert sorted(titles) == ["Disk full", "Generic"]
    only = as_charlie.get(API + f"runbooks/?service={service.pk}").json()["results"]
    assert [r["title"] for r in only] == ["Disk full"]
    anywhere = as_charlie.get(API + "runbooks/?service=none").json()["results"]
    assert [r["title"] for r in anywhere] == ["Generic"]
    assert_error(as_charlie.get(API + "runbooks/?service=abc"), 400, "service must be")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"title": ""}, "title"),
        ({"title": "x", "matchers": [{"label": "a", "op": "~", "value": "b"}]}, "matcher op"),
        ({"title": "x", "matchers": [{"label": "a", "op": "=~", "value": "("}]}, "invalid regex"),
        ({"title": "x", "matchers": "team=db"}, "matchers must be a list"),
        ({"title": "x", "service": 999_999}, "service"),
        ({"title": "x", "body": "a" * 100_001}, "body"),
        ({"title": "x\x00"}, "title"),
    ],
)
def test_bad_runbooks_are_refused_with_400(as_alice, db, payload, fragment):
    assert_error(as_alice.post(API + "runbooks/", payload, format="json"), 400, fragment)


def test_an_incident_shows_its_matching_runbook_or_null(as_charlie, book, make_incident, service):
    matched = make_incident(LABELS)
    data = as_charlie.get(API + f"incidents/{matched.number}/runbook/").json()
    assert data["incident"] == matched.number
    assert data["runbook"]["title"] == "Disk full"
    assert data["runbook"]["body"] == book.body
    unmatched = make_incident({"team": "web"})
    assert as_charlie.get(API + f"incidents/{unmatched.number}/runbook/").json() == {
        "incident": unmatched.number,
        "runbook": None,
    }
    assert_error(as_charlie.get(API + "incidents/999999/runbook/"), 404, "no incident #999999")


def test_actions_are_added_by_admins_and_their_secrets_are_theirs(as_alice, as_bob, book):
    made = as_alice.post(API + f"runbooks/{book.pk}/actions/", ACTION, format="json")
    assert made.status_code == 201, made.content
    data = made.json()
    assert data["url"] == ACTION["url"]
    assert data["target"] == "jenkins.example.com/job/restart/buildWithParameters"
    assert data["header_names"] == ["Authorization"]
    assert "headers" not in data  # write-only, even for admins
    assert data["timeout_seconds"] == 10 and data["role"] == "responder"

    seen = as_bob.get(API + f"actions/{data['id']}/").json()
    assert seen["url"] is None  # it holds a token; the target says where it goes
    assert seen["target"] == data["target"]
    listed = as_bob.get(API + f"runbooks/{book.pk}/actions/").json()
    assert [a["name"] for a in listed] == ["restart-db"]
    summary = as_bob.get(API + f"runbooks/{book.pk}/").json()["actions"]
    assert summary[0]["target"] == data["target"] and "url" not in summary[0]

    entry = AuditEntry.objects.get(object_type="runbooks.action", action="created")
    assert "admin-set" not in str(entry.changes)
    assert entry.changes["headers"]["Authorization"].startswith("[secret ")

    changed = as_alice.patch(
        API + f"actions/{data['id']}/", {"headers": {"Authorization": "Bearer new"}}, format="json"
    )
    assert changed.status_code == 200
    assert Action.objects.get().headers == {"Authorization": "Bearer new"}
    update = AuditEntry.objects.get(object_type="runbooks.action", action="updated")
    assert list(update.changes) == ["headers"] and "Bearer new" not in str(update.changes)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"url": "http://{{labels.instance}}/x"}, "never templated"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": ""}, "url"),
        ({"headers": {"Host": "evil"}}, "set by Muster"),
        ({"headers": {"X-A": "a\nb"}}, "line breaks"),
        ({"payload_template": '{"host": {{labels.instance}}}'}, "not valid JSON"),
        ({"payload_template": '{"x": "{{secrets.all}}"}'}, "unknown placeholder"),
        ({"timeout_seconds": 61}, "60"),
        ({"timeout_seconds": 0}, "1"),
        ({"method": "DELETE"}, "method"),
        ({"role": "observer"}, "role"),
        ({"name": "Restart DB!"}, "name"),
        ({"content_type": "application/x-www-form-urlencoded"}, "a JSON object of fields"),
    ],
)
def test_bad_actions_are_refused_with_400(as_alice, book, change, fragment):
    payload = {**ACTION, **change}
    if change.get("content_type"):
        payload["payload_template"] = '["not", "an", "object"]'
    response = as_alice.post(API + f"runbooks/{book.pk}/actions/", payload, format="json")
    assert_error(response, 400, fragment)
    assert not Action.objects.exists()


def test_an_action_name_is_unique_in_its_runbook(as_alice, book):
    assert (
        as_alice.post(API + f"runbooks/{book.pk}/actions/", ACTION, format="json").status_code
        == 201
    )
    again = as_alice.post(API + f"runbooks/{book.pk}/actions/", ACTION, format="json")
    assert_error(again, 400, "already has an action 'restart-db'")


def test_running_through_the_api_checks_roles_and_state(
    as_alice, as_bob, as_charlie, book, make_incident
):
    action = Action.objects.create(
        runbook=book, name="restart-db", url="http://127.0.0.1:9/x", payload_template=""
    )
    incident = make_incident(LABELS)
    url = API + f"actions/{action.pk}/runs/"
    assert_error(
        as_charlie.post(url, {"incident": incident.number}, format="json"),
        403,
        "This needs the responder role; you are observer.",
    )
    started = as_bob.post(url, {"incident": incident.number}, format="json")
    assert started.status_code == 201, started.content
    assert started.json()["status"] == "pending"
    assert started.json()["requested_by"] == "bob"
    assert_error(
        as_alice.post(url, {"incident": incident.number}, format="json"), 409, "already pending"
    )
    assert_error(as_bob.post(url, {"incident": 999_999}, format="json"), 404, "no incident")
    assert_error(as_bob.post(url, {}, format="json"), 400, "incident")
    entry = incident.timeline.get(kind=EntryKind.ACTION)
    assert (entry.actor_name, entry.source) == ("bob", "api")
    runs = as_charlie.get(url).json()["results"]
    assert [(r["action_name"], r["incident"], r["status"]) for r in runs] == [
        ("restart-db", incident.number, "pending")
    ]

    ActionRun.objects.update(status=RunStatus.SUCCEEDED)
    action.role = "admin"
    action.save()
    assert_error(
        as_bob.post(url, {"incident": incident.number}, format="json"),
        403,
        "Running restart-db needs the admin role; bob is responder.",
    )
    other = make_incident(LABELS, on=Service.objects.create(name="search"))
    assert_error(as_alice.post(url, {"incident": other.number}, format="json"), 400, "is on search")


def test_graph_templates_are_checked_and_an_incident_lists_its_graphs(
    as_alice, as_charlie, service, make_incident
):
    bad = as_alice.post(
        API + "graph-templates/",
        {"name": "x", "url_template": "https://{instance}/d", "service": service.pk},
        format="json",
    )
    assert_error(bad, 400, "never the scheme or host")
    bad_image = as_alice.post(
        API + "graph-templates/",
        {"name": "x", "url_template": "https://g.example.com/", "image_url_template": "data:x"},
        format="json",
    )
    assert_error(bad_image, 400, "image_url_template")
    made = as_alice.post(
        API + "graph-templates/",
        {
            "name": "Host",
            "service": service.pk,
            "url_template": "https://g.example.com/d?host={instance}",
            "image_url_template": "https://g.example.com/render?host={instance}",
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert GraphTemplate.objects.count() == 1
    incident = make_incident(LABELS)
    graphs = as_charlie.get(API + f"incidents/{incident.number}/graphs/").json()
    assert graphs == {
        "incident": incident.number,
        "graphs": [
            {
                "name": "Host",
                "url": "https://g.example.com/d?host=db-1%3A9100",
                "image_url": "https://g.example.com/render?host=db-1%3A9100",
            }
        ],
    }


def test_a_service_with_runbooks_is_not_deleted(as_alice, book, service):
    response = as_alice.delete(API + f"services/{service.pk}/")
    assert_error(response, 409, "still used by runbooks")
    assert Service.objects.filter(pk=service.pk).exists()


def test_deleting_an_action_keeps_its_runs(as_alice, book, make_incident, bob):
    action = Action.objects.create(runbook=book, name="restart-db", url="http://127.0.0.1:9/x")
    run = request_run(action, make_incident(LABELS), bob)
    assert as_alice.delete(API + f"actions/{action.pk}/").status_code == 204
    run.refresh_from_db()
    assert (run.action, run.action_name) == (None, "restart-db")


def test_observers_do_not_see_payloads_request_bodies_or_answers(
    as_alice, as_bob, as_charlie, book, make_incident, bob, endpoint
):
    action = Action.objects.create(
        runbook=book,
        name="probe",
        url=endpoint.url("/ok/x"),
        payload_template='{"token": "s3cr3t-in-body", "host": "{{labels.instance}}"}',
    )
    run = request_run(action, make_incident(LABELS), bob)
    run_action(run.pk)
    runs = API + f"actions/{action.pk}/runs/"
    for client in (as_alice, as_bob):  # admins and responders run and configure actions
        assert (
            "s3cr3t-in-body" in client.get(API + f"actions/{action.pk}/").json()["payload_template"]
        )
        [seen] = client.get(runs).json()["results"]
        assert "s3cr3t-in-body" in seen["request_body"]
        assert seen["response_excerpt"] == '{"ok": true, "build": 17}'
    assert as_charlie.get(API + f"actions/{action.pk}/").json()["payload_template"] is None
    listed = as_charlie.get(API + f"runbooks/{book.pk}/actions/").json()
    assert [a["payload_template"] for a in listed] == [None]
    [seen] = as_charlie.get(runs).json()["results"]
    assert (seen["request_body"], seen["response_excerpt"]) == (None, None)
    assert (seen["status"], seen["http_status"]) == ("succeeded", 200)
    timeline = as_charlie.get(API + f"incidents/{run.incident.number}/timeline/")
    assert timeline.status_code == 200 and "succeeded: HTTP 200" in timeline.content.decode()
    assert b"build" not in timeline.content and b"s3cr3t" not in timeline.content

"""The incidents API: filters, detail, every verb, its refusals, the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import EntryKind, Incident, Service, Source, Status, TimelineEntry
from tests.helpers.api import API, add_alert, assert_error, open_incident
from tests.oncall.builders import make_policy, reachable

INCIDENTS = API + "incidents/"


def numbers(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [row["number"] for row in response.json()["results"]]


@pytest.fixture
def incident(service) -> Incident:
    return open_incident(service)


@pytest.fixture
def spread(service, bob):
    """Four incidents on two services, in every status, created a day apart."""
    payments = Service.objects.create(name="payments")
    a = open_incident(service, "Checkout latency high", severity=1)
    b = open_incident(service, "Checkout 5xx", severity=2)
    c = open_incident(payments, "Payments queue backing up", severity=3)
    d = open_incident(payments, "Card provider down", severity=5)
    services.acknowledge_incident(b, by=bob, source=Source.WEB)
    services.resolve_incident(c, by=bob, source=Source.WEB)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for i, inc in enumerate((a, b, c, d)):
        Incident.objects.filter(pk=inc.pk).update(created_at=start + timedelta(days=i))
    return {"a": a.number, "b": b.number, "c": c.number, "d": d.number, "payments": payments}


# --- list and filters ------------------------------------------------------------------------


def test_list_is_newest_first_with_service_and_people_named(as_charlie, spread):
    rows = as_charlie.get(INCIDENTS).json()["results"]
    assert [r["number"] for r in rows] == [spread["d"], spread["c"], spread["b"], spread["a"]]
    acked = next(r for r in rows if r["number"] == spread["b"])
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == "bob"
    assert acked["assignee"] == "bob"
    assert acked["service"] == {"id": acked["service"]["id"], "name": "checkout"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=open", "dba"),
        ("status=triggered", "da"),
        ("status=acknowledged", "b"),
        ("status=resolved", "c"),
        ("status=resolved,acknowledged", "cb"),
        ("service=checkout", "ba"),
        ("service=payments,checkout", "dcba"),
        ("severity=1,2", "ba"),
        ("severity=5", "d"),
        ("since=2025-03-02T00:00:00Z", "dcb"),
        ("until=2025-03-02T00:00:00Z", "a"),
        ("since=2025-03-02T00:00:00%2B00:00&until=2025-03-04T00:00:00Z", "cb"),
        ("since=2025-03-03", "dc"),
        ("q=CHECKOUT", "ba"),
        ("q=provider", "d"),
        ("status=open&service=payments", "d"),
    ],
)
def test_list_filters(as_charlie, spread, query, expected):
    assert numbers(as_charlie.get(f"{INCIDENTS}?{query}")) == [spread[x] for x in expected]


def test_service_filter_takes_an_id(as_charlie, spread):
    payments = spread["payments"].pk
    assert numbers(as_charlie.get(f"{INCIDENTS}?service={payments}")) == [spread["d"], spread["c"]]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("since=yesterday", "since"),
        ("until=2025-13-45T00:00:00Z", "until"),
        ("since=2025-02-30", "since"),
        ("status=sleeping", "status"),
        ("severity=high", "severity"),
        ("severity=9", "severity"),
    ],
)
def test_a_bad_filter_value_is_a_400_naming_the_parameter(as_charlie, spread, query, parameter):
    assert_error(as_charlie.get(f"{INCIDENTS}?{query}"), 400, f"{parameter} must be")


def test_every_bad_filter_is_reported_at_once(as_charlie, db):
    error = assert_error(as_charlie.get(f"{INCIDENTS}?since=x&until=y&severity=z"), 400)
    assert len(error["problems"]) == 3


def test_list_is_cursor_paginated(as_charlie, service):
    made = [open_incident(service, f"i{i}").number for i in range(5)]
    first = as_charlie.get(f"{INCIDENTS}?page_size=2").json()
    assert [r["number"] for r in first["results"]] == made[::-1][:2]
    second = as_charlie.get(first["next"]).json()
    assert [r["number"] for r in second["results"]] == made[::-1][2:4]
    assert_error(as_charlie.get(f"{INCIDENTS}?cursor=bogus"), 404, "Invalid cursor")


# --- detail ----------------------------------------------------------------------------------


def test_detail_is_by_number_with_its_alert_count(as_charlie, incident, make_integration):
    integration = make_integration()
    add_alert(integration, incident)
    add_alert(integration, incident)
    body = as_charlie.get(f"{INCIDENTS}{incident.number}/").json()
    assert body["number"] == incident.number
    assert body["title"] == "Checkout is slow"
    assert body["alert_count"] == 2
    assert body["created_via"] == "alert"


def test_an_unknown_incident_number_is_a_json_404(as_bob, db):
    assert_error(as_bob.get(f"{INCIDENTS}999999/"), 404)
    assert_error(as_bob.post(f"{INCIDENTS}999999/acknowledge/"), 404, "no incident #999999")
    assert_error(as_bob.get(f"{INCIDENTS}999999/timeline/"), 404, "no incident #999999")
    assert_error(as_bob.get(f"{INCIDENTS}99999999999999999999999/"), 404)


def test_a_non_numeric_incident_path_is_a_json_404(as_bob, db):
    assert_error(as_bob.get(f"{INCIDENTS}abc/"), 404, "/api/v1/incidents/abc/")
    assert_error(as_bob.get(API + "nothing-here/"), 404)


# --- the verbs -------------------------------------------------------------------------------


def last_entry(incident: Incident) -> TimelineEntry:
    return incident.timeline.order_by("at", "id").last()


def assert_recorded(incident: Incident, kind: str, user) -> None:
    entry = last_entry(incident)
    assert entry.kind == kind
    assert entry.source == "api"
    assert entry.actor == user
    assert entry.actor_name == user.username
    assert "via API" in entry.message or kind == EntryKind.NOTE


def act(client, incident: Incident, verb: str, payload: dict | None = None):
    return client.post(f"{INCIDENTS}{incident.number}/{verb}/", payload or {}, format="json")


def test_acknowledge(as_bob, bob, incident):
    response = act(as_bob, incident, "acknowledge")
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "bob"
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Status.ACKNOWLEDGED, bob)
    assert_recorded(incident, EntryKind.ACKNOWLEDGED, bob)


def test_unacknowledge(as_bob, bob, incident):
    services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    response = act(as_bob, incident, "unacknowledge")
    assert response.json()["status"] == "triggered"
    assert response.json()["acknowledged_by"] is None
    assert_recorded(incident, EntryKind.UNACKNOWLEDGED, bob)


def test_resolve_with_a_note(as_bob, bob, incident):
    response = act(as_bob, incident, "resolve", {"note": "rolled back"})
    assert response.json()["status"] == "resolved"
    assert response.json()["resolved_by"] == "bob"
    assert_recorded(incident, EntryKind.RESOLVED, bob)
    assert last_entry(incident).data == {"note": "rolled back"}


def test_snooze_for_minutes(as_bob, bob, incident):
    before = timezone.now()
    response = act(as_bob, incident, "snooze", {"minutes": 30})
    assert response.json()["status"] == "acknowledged"
    incident.refresh_from_db()
    assert before + timedelta(minutes=30) <= incident.snoozed_until
    assert incident.snoozed_until <= timezone.now() + timedelta(minutes=30)
    assert_recorded(incident, EntryKind.SNOOZED, bob)


def test_snooze_until_a_time(as_bob, bob, incident):
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    response = act(as_bob, incident, "snooze", {"until": until.isoformat()})
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.snoozed_until == until
    assert_recorded(incident, EntryKind.SNOOZED, bob)


def test_escalate(as_bob, bob, incident):
    services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    response = act(as_bob, incident, "escalate")
    assert response.json()["status"] == "triggered"
    entry = incident.timeline.get(kind=EntryKind.ESCALATED)
    assert (entry.source, entry.actor) == ("api", bob)
    # No policy: the admins are paged (none is reachable here), and the answer says so.
    assert response.json()["escalation"]["paged"] == []
    assert "checkout has no escalation policy" in response.json()["escalation"]["note"]


def test_escalate_to_a_level(as_bob, bob, alice, incident):

    reachable(alice, urgency=incident.urgency)
    make_policy("checkout", {"users": [bob]}, {"users": [alice]}, service=incident.service)
    response = act(as_bob, incident, "escalate", {"level": 2})
    assert response.status_code == 200
    assert response.json()["escalation"] == {"level": 2, "paged": ["alice"], "note": ""}
    assert response.json()["number"] == incident.number
    assert incident.timeline.get(kind=EntryKind.ESCALATED).data == {"level": 2}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"level": 3}, "has 2 levels; choose 1 to 2, not 3"),
        ({"level": 0}, "level: Ensure this value is greater than or equal to 1"),
        ({"level": "two"}, "level: A valid integer is required"),
    ],
)
def test_escalate_to_a_level_the_policy_lacks_is_refused(as_bob, bob, incident, payload, message):

    make_policy("checkout", {"users": [bob]}, {"users": [bob]}, service=incident.service)
    response = act(as_bob, incident, "escalate", payload)
    assert response.status_code == 400
    assert message in str(response.json())
    assert not incident.timeline.filter(kind=EntryKind.ESCALATED).exists()


def test_reassign(as_bob, bob, alice, incident):
    response = act(as_bob, incident, "reassign", {"user": "alice"})
    assert response.json()["assignee"] == "alice"
    assert_recorded(incident, EntryKind.REASSIGNED, bob)


def test_severity(as_bob, bob, incident):
    response = act(as_bob, incident, "severity", {"severity": 1})
    assert response.json()["severity"] == 1
    assert response.json()["urgency"] == "high"
    assert_recorded(incident, EntryKind.SEVERITY_CHANGED, bob)


def test_notes(as_bob, bob, incident):
    response = act(as_bob, incident, "notes", {"text": "  looking at the DB  "})
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["message"], body["source"]) == ("note", "looking at the DB", "api")
    assert body["actor_name"] == "bob"
    assert_recorded(incident, EntryKind.NOTE, bob)


def test_merge(
    as_bob, bob, service, incident, make_integration, django_capture_on_commit_callbacks
):
    others = [open_incident(service, f"dup {i}") for i in range(2)]
    alert = add_alert(make_integration(), others[0])
    with django_capture_on_commit_callbacks(execute=True):
        response = act(as_bob, incident, "merge", {"incidents": [o.number for o in others]})
    assert response.status_code == 200
    assert response.json()["number"] == incident.number
    for other in others:
        other.refresh_from_db()
        assert other.status == Status.RESOLVED
        assert other.merged_into_id == incident.pk
        assert_recorded(other, EntryKind.MERGED, bob)
    assert_recorded(incident, EntryKind.MERGED, bob)
    detail = as_bob.get(f"{INCIDENTS}{others[0].number}/").json()
    assert detail["merged_into"] == incident.number
    alert.refresh_from_db()
    assert alert.incident_id == incident.pk  # its alerts moved with it


def test_create_an_incident_by_hand(as_bob, bob, service):
    response = as_bob.post(
        INCIDENTS,
        {"title": "Customers report errors", "service": service.pk, "severity": 2},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["severity"], body["urgency"]) == ("triggered", 2, "high")
    assert body["created_via"] == "api"
    incident = Incident.objects.get(number=body["number"])
    assert_recorded(incident, EntryKind.OPENED, bob)


def test_create_needs_a_title_and_a_real_service(as_bob, db):
    error = assert_error(as_bob.post(INCIDENTS, {"severity": 0}, format="json"), 400)
    fields = {p.split(":")[0] for p in error["problems"]}
    assert fields == {"title", "service", "severity"}
    assert_error(
        as_bob.post(INCIDENTS, {"title": "x", "service": 4242}, format="json"), 400, "service:"
    )
    assert not Incident.objects.exists()


# --- refusals --------------------------------------------------------------------------------


def test_acknowledging_twice_is_a_409(as_bob, incident):
    assert act(as_bob, incident, "acknowledge").status_code == 200
    assert_error(act(as_bob, incident, "acknowledge"), 409, "already acknowledged")
    assert incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).count() == 1


@pytest.mark.parametrize(
    ("verb", "payload"),
    [
        ("acknowledge", {}),
        ("resolve", {}),
        ("escalate", {}),
        ("snooze", {"minutes": 5}),
        ("reassign", {"user": "bob"}),
        ("severity", {"severity": 1}),
        ("unacknowledge", {}),
    ],
)
def test_acting_on_a_resolved_incident_is_a_409(as_bob, bob, incident, verb, payload):
    services.resolve_incident(incident, by=bob, source=Source.WEB)
    entries = incident.timeline.count()
    assert_error(act(as_bob, incident, verb, payload), 409, f"#{incident.number}")
    assert incident.timeline.count() == entries


def test_setting_the_same_severity_is_a_409(as_bob, incident):
    assert_error(act(as_bob, incident, "severity", {"severity": 3}), 409, "already severity 3")


@pytest.mark.parametrize(
    ("verb", "payload", "fragments"),
    [
        ("snooze", {}, ["exactly one of 'until' or 'minutes'"]),
        ("snooze", {"minutes": 5, "until": "2030-01-01T00:00:00Z"}, ["exactly one of"]),
        ("snooze", {"minutes": 0}, ["minutes:"]),
        ("snooze", {"until": "tomorrow"}, ["until:"]),
        ("snooze", {"until": "2020-01-01T00:00:00Z"}, ["must end in the future"]),
        ("snooze", {"until": "2999-01-01T00:00:00Z"}, ["until: a snooze can last at most 7 days"]),
        ("snooze", {"minutes": 7 * 24 * 60 + 1}, ["minutes:"]),
        ("severity", {"severity": 9}, ["severity: Ensure this value is less than or equal to 5"]),
        ("severity", {}, ["severity: This field is required."]),
        ("severity", {"severity": "high"}, ["severity:"]),
        ("reassign", {"user": "nobody"}, ["user:", "nobody"]),
        ("reassign", {}, ["user: This field is required."]),
        ("notes", {"text": "   "}, ["text:"]),
        ("notes", {}, ["text: This field is required."]),
        ("merge", {"incidents": []}, ["incidents:"]),
        ("merge", {"incidents": "1001"}, ["incidents:"]),
        ("merge", {"incidents": ["x"]}, ["incidents:"]),
    ],
)
def test_an_invalid_body_is_a_400_naming_the_field(as_bob, incident, verb, payload, fragments):
    entries = incident.timeline.count()
    assert_error(act(as_bob, incident, verb, payload), 400, *fragments)
    assert incident.timeline.count() == entries


def test_reassigning_to_a_deactivated_person_is_refused(as_bob, alice, incident):
    alice.is_active = False
    alice.save()
    assert_error(act(as_bob, incident, "reassign", {"user": "alice"}), 400, "user:", "alice")


@pytest.mark.parametrize("name", ["\x00x", "al\x00ice", "a" * 151])
@pytest.mark.parametrize("verb", ["reassign", "page"])
def test_a_username_no_one_can_have_is_no_such_person(as_bob, alice, incident, name, verb):
    """Found by the schema fuzzer: a NUL in `user` reached PostgreSQL and answered 500."""
    response = act(as_bob, incident, verb, {"user": name})
    assert_error(response, 400, "user:")
    incident.refresh_from_db()
    assert incident.assignee is None


def test_reassigning_to_an_observer_is_refused_as_in_chat(as_bob, charlie, incident):
    entries = incident.timeline.count()
    assert_error(
        act(as_bob, incident, "reassign", {"user": "charlie"}),
        400,
        "charlie is an observer and cannot act on incidents.",
    )
    incident.refresh_from_db()
    assert incident.assignee is None and incident.timeline.count() == entries


def test_merging_an_unknown_incident_is_a_400_naming_it(as_bob, incident):
    assert_error(act(as_bob, incident, "merge", {"incidents": [424242]}), 400, "#424242")
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


def test_merging_an_incident_into_itself_is_refused(as_bob, incident):
    assert_error(act(as_bob, incident, "merge", {"incidents": [incident.number]}), 400)


def test_merging_a_resolved_incident_is_a_409(as_bob, bob, service, incident):
    other = open_incident(service, "old")
    services.resolve_incident(other, by=bob, source=Source.WEB)
    assert_error(act(as_bob, incident, "merge", {"incidents": [other.number]}), 409, "resolved")


def test_an_observer_cannot_act_and_is_told_which_role_is_needed(as_charlie, incident):
    for verb in ("acknowledge", "resolve", "notes"):
        assert_error(
            act(as_charlie, incident, verb, {"text": "x"}),
            403,
            "This needs the responder role; you are observer.",
        )
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED
    assert list(incident.timeline.values_list("kind", flat=True)) == [EntryKind.OPENED]


# --- the timeline ----------------------------------------------------------------------------


def test_timeline_is_oldest_first_and_cursor_paginated(as_charlie, bob, incident):
    services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    for i in range(4):
        services.add_note(incident, text=f"note {i}", by=bob, source=Source.CHAT)
    services.resolve_incident(incident, by=bob, source=Source.WEB)
    url = f"{INCIDENTS}{incident.number}/timeline/?page_size=3"
    kinds: list[str] = []
    messages: list[str] = []
    pages = 0
    while url:
        response = as_charlie.get(url)
        assert response.status_code == 200
        page = response.json()
        assert len(page["results"]) <= 3
        kinds += [e["kind"] for e in page["results"]]
        messages += [e["message"] for e in page["results"]]
        url = page["next"]
        pages += 1
    assert pages == 3
    assert kinds == ["opened", "acknowledged", "note", "note", "note", "note", "resolved"]
    assert messages[2:6] == ["note 0", "note 1", "note 2", "note 3"]


def test_timeline_entries_say_who_and_where(as_charlie, bob, incident):
    services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    entries = as_charlie.get(f"{INCIDENTS}{incident.number}/timeline/").json()["results"]
    assert entries[0]["actor_name"] == "prom"
    assert entries[0]["source"] == "alert"
    assert (entries[1]["actor_name"], entries[1]["source"]) == ("bob", "sms")
    assert set(entries[1]) == {"id", "at", "kind", "actor_name", "source", "message", "data"}

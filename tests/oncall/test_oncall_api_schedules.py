"""The on-call API: teams, schedules, layers, overrides, who is on call, policies, shifts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.models import Service
from oncall.models import EscalationPolicy, Layer, Override, ServicePolicy
from tests.helpers.api import API, assert_error
from tests.oncall.builders import (
    add_layer,
    add_override,
    make_person,
    make_policy,
    make_schedule,
    make_team,
)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2025, 6, 2, 9, tzinfo=BERLIN)
NOW = MONDAY + timedelta(days=2, hours=3)  # Wednesday 12:00 in Berlin


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def weekly(alice, bob, charlie):
    """A Berlin schedule: alice, bob, charlie a week each from Monday 09:00."""
    schedule = make_schedule("primary", "Europe/Berlin")
    add_layer(schedule, [alice, bob, charlie], start=MONDAY, rotation="weekly")
    return schedule


@pytest.fixture
def at_noon():
    with time_machine.travel(NOW, tick=False):
        yield


# --- schedules and layers ---------------------------------------------------------------------


def test_an_admin_builds_a_schedule_whose_layer_start_is_read_in_the_schedules_zone(
    as_alice, alice, bob
):
    response = as_alice.post(
        API + "schedules/", {"name": "db", "time_zone": "Europe/Berlin"}, format="json"
    )
    assert response.status_code == 201, response.content
    schedule = response.json()
    assert schedule["ical_url"].startswith("http://")
    assert schedule["ical_url"].endswith(".ics") and schedule["layers"] == []

    layer = as_alice.post(
        API + "layers/",
        {
            "schedule": schedule["id"],
            "name": "primary",
            "rotation": "daily",
            "start": "2025-06-02T09:00:00",  # no offset: 09:00 in Berlin
            "participants": [bob.pk, alice.pk],
        },
        format="json",
    )

    assert layer.status_code == 201, layer.content
    assert layer.json()["start"] == "2025-06-02T07:00:00Z"
    assert layer.json()["participants"] == [bob.pk, alice.pk]
    assert Layer.objects.get().start == MONDAY
    detail = as_alice.get(API + f"schedules/{schedule['id']}/").json()
    assert [item["participants"] for item in detail["layers"]] == [[bob.pk, alice.pk]]


def test_a_start_with_an_offset_is_taken_as_given(as_alice, weekly, bob):
    response = as_alice.post(
        API + "layers/",
        {
            "schedule": weekly.pk,
            "rotation": "weekly",
            "start": "2025-06-02T09:00:00-04:00",
            "participants": [bob.pk],
        },
        format="json",
    )
    assert response.json()["start"] == "2025-06-02T13:00:00Z"


def test_restrictions_are_checked_and_stored_in_one_form(as_alice, weekly, bob):
    base = {"schedule": weekly.pk, "start": iso(MONDAY), "participants": [bob.pk]}
    bad = as_alice.post(
        API + "layers/",
        {**base, "restrictions": [{"weekdays": [0], "start": "9", "end": "17:00"}, {"x": 1}]},
        format="json",
    )
    assert_error(bad, 400, "restriction 1: start must be a time", "restriction 2: unknown")

    good = as_alice.post(
        API + "layers/",
        {**base, "restrictions": [{"weekdays": [4, 0], "start": "22:00", "end": "06:00:00"}]},
        format="json",
    )
    assert good.status_code == 201, good.content
    assert good.json()["restrictions"] == [{"weekdays": [0, 4], "start": "22:00", "end": "06:00"}]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"participants": []}, "participants"),
        ({"rotation": "fortnightly"}, "rotation"),
        ({"end": "2025-06-01T00:00:00Z"}, "end: must be after start"),
        ({"shift_hours": 0}, "shift_hours"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_a_bad_layer_is_refused_saying_what_is_wrong(as_alice, weekly, bob, changes, fragment):
    base = {"schedule": weekly.pk, "start": iso(MONDAY), "participants": [bob.pk]}
    assert_error(as_alice.post(API + "layers/", {**base, **changes}, format="json"), 400, fragment)


def test_a_deactivated_person_cannot_join_a_layer_and_a_layer_stays_in_its_schedule(
    as_alice, weekly, bob
):
    gone = make_person("gone", is_active=False)
    response = as_alice.post(
        API + "layers/",
        {"schedule": weekly.pk, "start": iso(MONDAY), "participants": [gone.pk]},
        format="json",
    )
    assert_error(response, 400, "participants")
    layer = weekly.layers.get()
    other = make_schedule("other")
    response = as_alice.patch(API + f"layers/{layer.pk}/", {"schedule": other.pk}, format="json")
    assert_error(response, 400, "a layer cannot move to another schedule")


def test_a_schedule_needs_a_real_time_zone(as_alice):
    response = as_alice.post(
        API + "schedules/", {"name": "x", "time_zone": "Europe/Atlantis"}, format="json"
    )
    assert_error(response, 400, "time_zone: 'Europe/Atlantis' is not an IANA time zone")


def test_layers_can_be_listed_for_one_schedule(as_charlie, weekly):
    other = make_schedule("other")
    add_layer(other, [make_person("dan")], start=MONDAY)
    listed = as_charlie.get(API + f"layers/?schedule={weekly.pk}").json()["results"]
    assert [item["schedule"] for item in listed] == [weekly.pk]
    assert_error(as_charlie.get(API + "layers/?schedule=abc"), 400, "schedule must be an id")


def test_listing_schedules_takes_a_fixed_number_of_queries(as_charlie, db):
    crowd = [make_person(f"p{i}") for i in range(5)]
    for i in range(8):
        schedule = make_schedule(f"s{i}")
        for level in range(3):
            add_layer(schedule, crowd, start=MONDAY, level=level)
    as_charlie.get(API + "schedules/")
    with CaptureQueriesContext(connection) as queries:
        response = as_charlie.get(API + "schedules/")
    assert response.status_code == 200 and len(response.json()["results"]) == 8
    assert len(queries) <= 5


# --- the final schedule and who is on call ----------------------------------------------------


def test_the_final_schedule_shows_shifts_with_people_and_the_gaps(as_charlie, alice, bob):
    business = make_schedule("business", "Europe/Berlin")
    layer = add_layer(
        business,
        [alice, bob],
        start=MONDAY,
        rotation="daily",
        restrictions=[{"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}],
    )
    override = add_override(business, bob, MONDAY + timedelta(hours=2), MONDAY + timedelta(hours=3))
    start, end = MONDAY, MONDAY + timedelta(days=1)

    response = as_charlie.get(
        API + f"schedules/{business.pk}/final/", {"start": iso(start), "end": iso(end)}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["schedule"] == {"id": business.pk, "name": "business"}
    assert [(s["user"]["username"], s["start"], s["end"]) for s in body["shifts"]] == [
        ("alice", iso(MONDAY), iso(MONDAY + timedelta(hours=2))),
        ("bob", iso(MONDAY + timedelta(hours=2)), iso(MONDAY + timedelta(hours=3))),
        ("alice", iso(MONDAY + timedelta(hours=3)), iso(MONDAY + timedelta(hours=8))),
    ]
    assert [(s["layer"], s["override"]) for s in body["shifts"]] == [
        (layer.pk, None),
        (None, override.pk),
        (layer.pk, None),
    ]
    assert body["gaps"] == [{"start": iso(MONDAY + timedelta(hours=8)), "end": iso(end)}]


def test_the_final_schedule_defaults_to_the_coming_week(as_charlie, weekly, at_noon):
    body = as_charlie.get(API + f"schedules/{weekly.pk}/final/").json()
    assert (body["start"], body["end"]) == (iso(NOW), iso(NOW + timedelta(days=7)))
    assert [s["user"]["username"] for s in body["shifts"]] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"start": "soon"}, "start must be an ISO 8601 date-time"),
        ({"start": "2025-06-02T00:00:00Z", "end": "2025-06-01T00:00:00Z"}, "end must be after"),
        ({"start": "2025-01-01", "end": "2026-06-01"}, "at most 366 days"),
    ],
)
def test_a_bad_range_is_refused(as_charlie, weekly, query, fragment):
    assert_error(as_charlie.get(API + f"schedules/{weekly.pk}/final/", query), 400, fragment)


def test_a_schedule_says_who_is_on_call_until_when_and_who_is_next(as_charlie, weekly, at_noon):
    body = as_charlie.get(API + f"schedules/{weekly.pk}/oncall/").json()
    assert [p["username"] for p in body["on_call"]] == ["alice"]
    assert body["until"] == iso(MONDAY + timedelta(days=7))
    assert body["next"]["user"]["username"] == "bob"
    assert body["next"]["start"] == iso(MONDAY + timedelta(days=7))


def test_the_on_call_overview_covers_every_schedule_or_a_services_or_a_persons(
    as_charlie, weekly, alice, bob, service, at_noon
):
    nights = make_schedule("nights")
    add_layer(nights, [bob], start=MONDAY, rotation="daily")
    make_schedule("empty")
    make_policy("checkout", {"schedules": [weekly], "users": [bob]}, service=service)

    everything = as_charlie.get(API + "oncall/").json()
    assert [
        (e["schedule"]["name"], [p["username"] for p in e["on_call"]])
        for e in everything["schedules"]
    ] == [("empty", []), ("nights", ["bob"]), ("primary", ["alice"])]
    assert "service" not in everything

    by_service = as_charlie.get(API + "oncall/", {"service": "checkout"}).json()
    assert [e["schedule"]["name"] for e in by_service["schedules"]] == ["primary"]
    assert by_service["service"]["policy"] == "checkout"
    assert [p["username"] for p in by_service["service"]["paged_first"]] == ["bob", "alice"]
    assert as_charlie.get(API + "oncall/", {"service": service.pk}).json() == by_service

    by_person = as_charlie.get(API + "oncall/", {"user": "bob"}).json()
    assert [e["schedule"]["name"] for e in by_person["schedules"]] == ["nights", "primary"]
    assert_error(as_charlie.get(API + "oncall/", {"user": "nobody"}), 400, "no user nobody")
    assert_error(as_charlie.get(API + "oncall/", {"service": "nope"}), 400, "no service nope")


def test_a_service_without_a_policy_has_nobody_paged_first(as_charlie, weekly):
    Service.objects.create(name="lonely")
    body = as_charlie.get(API + "oncall/", {"service": "lonely"}).json()
    assert body["service"]["policy"] is None and body["service"]["paged_first"] == []
    assert body["schedules"] == []


# --- overrides --------------------------------------------------------------------------------


def test_a_responder_creates_an_override_in_local_time_and_it_wins(
    as_bob, weekly, bob, charlie, at_noon
):
    response = as_bob.post(
        API + "overrides/",
        {
            "schedule": weekly.pk,
            "user": charlie.pk,
            "start": "2025-06-04T18:00:00",
            "end": "2025-06-05T08:00:00",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["start"], body["created_by"]) == ("2025-06-04T16:00:00Z", "bob")
    oncall = as_bob.get(
        API + f"schedules/{weekly.pk}/final/",
        {"start": iso(NOW), "end": iso(NOW + timedelta(days=1))},
    ).json()
    assert [s["user"]["username"] for s in oncall["shifts"]] == ["alice", "charlie", "alice"]


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("2025-06-05T10:00:00Z", "2025-06-05T09:00:00Z", "end: must be after start"),
        ("2025-06-01T10:00:00Z", "2025-06-01T12:00:00Z", "end: an override must end in the future"),
        ("2025-06-05T10:00:00Z", "2026-07-01T00:00:00Z", "at most 366 days"),
    ],
)
def test_a_bad_override_is_refused(as_bob, weekly, charlie, at_noon, start, end, fragment):
    response = as_bob.post(
        API + "overrides/",
        {"schedule": weekly.pk, "user": charlie.pk, "start": start, "end": end},
        format="json",
    )
    assert_error(response, 400, fragment)


def test_an_observer_cannot_create_an_override(as_charlie, weekly, charlie, at_noon):
    response = as_charlie.post(
        API + "overrides/",
        {
            "schedule": weekly.pk,
            "user": charlie.pk,
            "start": iso(NOW),
            "end": iso(NOW + timedelta(hours=1)),
        },
        format="json",
    )
    assert_error(response, 403, "This needs the responder role")


def test_deleting_an_override_removes_a_future_one_ends_a_current_one_and_keeps_a_past_one(
    as_bob, weekly, charlie, at_noon
):
    future = add_override(weekly, charlie, NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    current = add_override(weekly, charlie, NOW - timedelta(hours=1), NOW + timedelta(hours=2))
    past = add_override(weekly, charlie, NOW - timedelta(hours=3), NOW - timedelta(hours=2))

    assert as_bob.delete(API + f"overrides/{future.pk}/").status_code == 204
    assert as_bob.delete(API + f"overrides/{current.pk}/").status_code == 204
    assert_error(as_bob.delete(API + f"overrides/{past.pk}/"), 409, "stays in the schedule's")

    assert not Override.objects.filter(pk=future.pk).exists()
    current.refresh_from_db()
    assert current.end == NOW
    assert Override.objects.filter(pk=past.pk).exists()


def test_overrides_can_be_listed_by_schedule_person_and_whether_they_are_over(
    as_charlie, weekly, alice, charlie, at_noon
):
    other = make_schedule("other")
    add_override(weekly, charlie, NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    upcoming = add_override(weekly, charlie, NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    add_override(other, alice, NOW + timedelta(hours=1), NOW + timedelta(hours=2))

    def ids(query):
        return [o["id"] for o in as_charlie.get(API + "overrides/", query).json()["results"]]

    assert ids({"schedule": weekly.pk, "user": charlie.pk, "upcoming": "true"}) == [upcoming.pk]
    assert len(ids({"schedule": weekly.pk})) == 2
    assert_error(as_charlie.get(API + "overrides/", {"upcoming": "maybe"}), 400, "upcoming")


# --- escalation policies, teams, service policies ---------------------------------------------


def test_a_policy_keeps_its_steps_in_order_and_a_write_replaces_them(as_alice, weekly, alice, bob):
    team = make_team("dba", [bob])
    response = as_alice.post(
        API + "escalation-policies/",
        {
            "name": "checkout",
            "repeat": 1,
            "steps": [
                {"delay_minutes": 5, "schedules": [weekly.pk]},
                {"delay_minutes": 10, "users": [alice.pk], "teams": [team.pk]},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    policy = response.json()
    assert [(s["position"], s["delay_minutes"]) for s in policy["steps"]] == [(0, 5), (1, 10)]
    assert policy["steps"][1]["users"] == [alice.pk] and policy["steps"][1]["teams"] == [team.pk]

    first_step_id = policy["steps"][0]["id"]
    updated = as_alice.put(
        API + f"escalation-policies/{policy['id']}/",
        {"name": "checkout", "steps": [{"delay_minutes": 1, "users": [bob.pk]}]},
        format="json",
    ).json()

    assert [
        (s["id"], s["delay_minutes"], s["users"], s["schedules"]) for s in updated["steps"]
    ] == [(first_step_id, 1, [bob.pk], [])]
    assert EscalationPolicy.objects.get().steps.count() == 1


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ({"delay_minutes": 5}, "a step needs someone to page"),
        ({"delay_minutes": -1, "users": ["@bob"]}, "delay_minutes"),
        ({"users": [999999]}, "Invalid pk"),
    ],
)
def test_a_bad_step_is_refused(as_alice, bob, step, fragment):
    step = {k: ([bob.pk] if v == ["@bob"] else v) for k, v in step.items()}
    response = as_alice.post(
        API + "escalation-policies/", {"name": "x", "steps": [step]}, format="json"
    )
    assert_error(response, 400, fragment)


def test_a_schedule_or_team_an_escalation_step_pages_cannot_be_deleted(as_alice, weekly, bob):
    team = make_team("dba", [bob])
    make_policy("checkout", {"schedules": [weekly], "teams": [team]})
    assert_error(
        as_alice.delete(API + f"schedules/{weekly.pk}/"),
        409,
        "primary is a target of the escalation policies checkout",
    )
    assert_error(as_alice.delete(API + f"teams/{team.pk}/"), 409, "dba is a target")


def test_a_policy_a_service_follows_cannot_be_deleted(as_alice, service, bob):
    policy = make_policy("checkout", {"users": [bob]}, service=service)
    assert_error(as_alice.delete(API + f"escalation-policies/{policy.pk}/"), 409, "still used")


def test_each_service_follows_one_policy(as_alice, service, bob):
    policy = make_policy("checkout", {"users": [bob]})
    other = make_policy("other", {"users": [bob]})
    created = as_alice.post(
        API + "service-policies/", {"service": service.pk, "policy": policy.pk}, format="json"
    )
    assert created.status_code == 201, created.content
    again = as_alice.post(
        API + "service-policies/", {"service": service.pk, "policy": other.pk}, format="json"
    )
    assert_error(again, 400, "service")
    moved = as_alice.patch(
        API + f"service-policies/{created.json()['id']}/", {"policy": other.pk}, format="json"
    )
    assert moved.json()["policy"] == other.pk
    assert ServicePolicy.objects.get(service=service).policy == other
    listed = as_alice.get(API + "service-policies/", {"service": service.pk}).json()["results"]
    assert [item["policy"] for item in listed] == [other.pk]


def test_a_team_is_created_with_its_members_and_a_write_replaces_them(as_alice, alice, bob):
    created = as_alice.post(
        API + "teams/",
        {"name": "sre", "members": [{"user": alice.pk, "is_admin": True}, {"user": bob.pk}]},
        format="json",
    ).json()
    assert created["members"] == [
        {"user": alice.pk, "is_admin": True},
        {"user": bob.pk, "is_admin": False},
    ]
    updated = as_alice.patch(
        API + f"teams/{created['id']}/", {"members": [{"user": bob.pk}]}, format="json"
    ).json()
    assert updated["members"] == [{"user": bob.pk, "is_admin": False}]
    twice = as_alice.post(
        API + "teams/",
        {"name": "x", "members": [{"user": bob.pk}, {"user": bob.pk}]},
        format="json",
    )
    assert_error(twice, 400, "a person can be in a team once")


# --- shifts, deactivation ---------------------------------------------------------------------


def test_my_shifts_and_someone_elses(as_bob, weekly, at_noon):
    mine = as_bob.get(API + "shifts/", {"end": iso(NOW + timedelta(days=14))}).json()
    assert [(s["schedule"]["name"], s["start"], s["end"]) for s in mine] == [
        ("primary", iso(MONDAY + timedelta(days=7)), iso(MONDAY + timedelta(days=14)))
    ]
    alices = as_bob.get(API + "shifts/", {"user": "alice"}).json()
    assert [(s["user"]["username"], s["start"]) for s in alices] == [("alice", iso(NOW))]
    assert_error(as_bob.get(API + "shifts/", {"user": "nobody"}), 400, "there is no user nobody")
    # What no user can be is refused with a 400, not a 500 (found by the schema fuzzer).
    refused = as_bob.get(API + "shifts/", {"user": "bo\x00b"})
    assert_error(refused, 400, "user cannot contain NUL characters")
    assert_error(as_bob.get(API + "shifts/", {"user": "²"}), 400, "there is no user ²")


def test_an_admin_sees_what_deactivating_someone_would_leave_uncovered(
    as_alice, as_bob, alice, bob, at_noon
):
    solo = make_schedule("solo")
    add_layer(solo, [bob], start=MONDAY, rotation="daily")

    body = as_alice.get(API + f"users/{bob.pk}/deactivation-gaps/", {"days": 2}).json()

    assert body == [
        {
            "schedule": {"id": solo.pk, "name": "solo"},
            "gaps": [{"start": iso(NOW), "end": iso(NOW + timedelta(days=2))}],
        }
    ]
    assert_error(as_alice.get(API + f"users/{bob.pk}/deactivation-gaps/", {"days": 0}), 400)
    assert_error(as_alice.get(API + "users/999999/deactivation-gaps/"), 404)
    assert_error(as_bob.get(API + f"users/{bob.pk}/deactivation-gaps/"), 403, "admin role")


def test_the_schema_documents_the_on_call_api(as_charlie):
    paths = as_charlie.get(API + "schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()[
        "paths"
    ]
    for path in (
        "/api/v1/schedules/{id}/final/",
        "/api/v1/schedules/{id}/oncall/",
        "/api/v1/oncall/",
        "/api/v1/overrides/",
        "/api/v1/escalation-policies/",
        "/api/v1/me/contact-methods/{id}/confirm/",
        "/api/v1/me/settings/",
        "/api/v1/audit/",
    ):
        assert path in paths, path
    final = paths["/api/v1/schedules/{id}/final/"]["get"]
    assert {p["name"] for p in final["parameters"]} >= {"start", "end"}


def test_a_schedules_secret_ical_url_goes_to_admins_and_its_people_only(
    as_alice, as_bob, as_charlie, alice, bob
):
    """The schedule feed is one shared secret: an observer (or any outsider) gets null and
    subscribes to their own person feed instead, which ends with their account."""
    layered = make_schedule("db")
    add_layer(layered, [bob], start=MONDAY)
    by_override = make_schedule("web")
    add_override(by_override, bob, MONDAY, MONDAY + timedelta(days=1))
    by_team = make_schedule("search", team=make_team("search", [bob]))
    other = make_schedule("payments")
    add_layer(other, [alice], start=MONDAY)

    def urls(client) -> dict[str, str | None]:
        return {s["name"]: s["ical_url"] for s in client.get(API + "schedules/").json()["results"]}

    every = urls(as_alice)
    assert all(url and url.endswith(".ics") for url in every.values())
    assert urls(as_bob) == {**every, "payments": None}
    assert urls(as_charlie) == dict.fromkeys(every)
    assert as_charlie.get(API + f"schedules/{layered.pk}/").json()["ical_url"] is None
    assert as_bob.get(API + f"schedules/{layered.pk}/").json()["ical_url"] == every["db"]
    assert (
        layered.ical_token not in as_charlie.get(API + f"schedules/{layered.pk}/").content.decode()
    )
    assert by_team.ical_token not in str(urls(as_charlie))

"""The audit log: every configuration change through the API, who made it, what changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts import audit
from accounts.models import AuditEntry
from alerts.models import Integration, RoutingRule
from oncall.models import Schedule
from tests.helpers.api import API, assert_error
from tests.oncall.builders import add_layer, make_policy, make_schedule, verified_phone

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)


def entries(**filters) -> list[tuple[str, str, str, str | None]]:
    """(action, object type, summary, actor) of the entries, oldest first."""
    found = AuditEntry.objects.filter(**filters).order_by("at", "id").select_related("actor")
    return [
        (e.action, e.object_type, e.summary, e.actor.username if e.actor else None) for e in found
    ]


# --- record_change ----------------------------------------------------------------------------


def test_record_change_writes_who_did_what_to_which_object(alice):
    schedule = make_schedule("primary")
    entry = audit.record_change(alice, audit.CREATED, schedule, audit.snapshot(schedule))

    assert (entry.actor, entry.action, entry.object_type, entry.object_id) == (
        alice,
        "created",
        "oncall.schedule",
        str(schedule.pk),
    )
    assert entry.summary == "alice created schedule primary"
    assert entry.changes["name"] == "primary"
    assert entry.changes["ical_token"] == audit.HIDDEN
    assert schedule.ical_token not in json.dumps(entry.changes)


def test_an_update_records_only_what_changed_and_nothing_when_nothing_did(alice):
    schedule = make_schedule("primary")
    before = audit.snapshot(schedule)
    assert audit.record_change(alice, audit.UPDATED, schedule, audit.diff(before, before)) is None

    schedule.time_zone = "Europe/Berlin"
    schedule.save()
    entry = audit.record_change(
        alice, audit.UPDATED, schedule, audit.diff(before, audit.snapshot(schedule))
    )

    assert entry.changes == {"time_zone": ["UTC", "Europe/Berlin"]}
    assert entry.summary == "alice updated schedule primary: time_zone"


def test_a_change_by_muster_itself_has_no_actor_and_the_action_is_checked(db):
    schedule = make_schedule("primary")
    entry = audit.record_change(None, audit.DELETED, schedule, {}, object_id=41)
    assert (entry.actor, entry.object_id, entry.summary) == (
        None,
        "41",
        "Muster deleted schedule primary",
    )
    with pytest.raises(ValueError, match="action must be one of"):
        audit.record_change(None, "renamed", schedule, {})


def test_a_snapshot_holds_foreign_keys_as_ids_and_many_to_many_as_sorted_ids(alice, bob):
    policy = make_policy("checkout", {"users": [bob, alice], "delay": 7})
    step = policy.steps.get()
    values = audit.snapshot(step)
    assert values["policy"] == policy.pk
    assert values["users"] == sorted([alice.pk, bob.pk])
    assert values["delay_minutes"] == 7


# --- through the API --------------------------------------------------------------------------


def test_schedule_and_layer_changes_are_audited_with_their_participants(as_alice, alice, bob):
    schedule = as_alice.post(API + "schedules/", {"name": "db"}, format="json").json()
    layer = as_alice.post(
        API + "layers/",
        {
            "schedule": schedule["id"],
            "start": "2025-06-02T09:00:00Z",
            "participants": [alice.pk, bob.pk],
        },
        format="json",
    ).json()
    as_alice.patch(API + f"layers/{layer['id']}/", {"participants": [bob.pk]}, format="json")
    as_alice.patch(API + f"schedules/{schedule['id']}/", {"name": "db"}, format="json")  # same
    as_alice.post(API + f"schedules/{schedule['id']}/rotate-ical/")
    as_alice.delete(API + f"schedules/{schedule['id']}/")

    assert [(a, t) for a, t, _, _ in entries()] == [
        ("created", "oncall.schedule"),
        ("created", "oncall.layer"),
        ("updated", "oncall.layer"),
        ("updated", "oncall.schedule"),
        ("deleted", "oncall.schedule"),
    ]
    update = AuditEntry.objects.get(action="updated", object_type="oncall.layer")
    assert update.changes == {"participants": [[alice.pk, bob.pk], [bob.pk]]}
    rotation = AuditEntry.objects.get(action="updated", object_type="oncall.schedule")
    assert rotation.summary == "alice rotated the iCal URL of db"
    deleted = AuditEntry.objects.get(action="deleted")
    assert deleted.object_id == str(schedule["id"]) and deleted.changes["name"] == "db"
    assert not Schedule.objects.exists()


def test_overrides_are_audited_with_the_responder_who_made_them(as_bob, bob, charlie):
    schedule = make_schedule("primary")
    with time_machine.travel(NOW, tick=False):
        created = as_bob.post(
            API + "overrides/",
            {
                "schedule": schedule.pk,
                "user": charlie.pk,
                "start": "2025-06-03T09:00:00Z",
                "end": "2025-06-03T18:00:00Z",
            },
            format="json",
        ).json()
        as_bob.delete(API + f"overrides/{created['id']}/")

    assert [(a, t, who) for a, t, _, who in entries()] == [
        ("created", "oncall.override", "bob"),
        ("deleted", "oncall.override", "bob"),
    ]


def test_policy_steps_get_an_entry_each(as_alice, alice, bob):
    schedule = make_schedule("primary")
    policy = as_alice.post(
        API + "escalation-policies/",
        {"name": "checkout", "steps": [{"users": [alice.pk]}, {"schedules": [schedule.pk]}]},
        format="json",
    ).json()
    as_alice.put(
        API + f"escalation-policies/{policy['id']}/",
        {"name": "checkout", "steps": [{"users": [bob.pk]}]},
        format="json",
    )

    assert [(a, t) for a, t, _, _ in entries()] == [
        ("created", "oncall.escalationstep"),
        ("created", "oncall.escalationstep"),
        ("created", "oncall.escalationpolicy"),
        ("updated", "oncall.escalationstep"),
        ("deleted", "oncall.escalationstep"),
        ("updated", "oncall.escalationpolicy"),
    ]
    changed = AuditEntry.objects.get(action="updated", object_type="oncall.escalationstep")
    assert changed.changes == {"users": [[alice.pk], [bob.pk]]}


def test_service_policies_contact_methods_rules_and_settings_are_audited(
    as_alice, as_bob, bob, service
):
    policy = make_policy("checkout", {"users": [bob]})
    as_alice.post(API + "service-policies/", {"service": service.pk, "policy": policy.pk})
    phone = verified_phone(bob)
    as_bob.post(
        API + "me/notification-rules/",
        {"urgency": "high", "delay_minutes": 0, "contact_method": phone.pk},
        format="json",
    )
    as_bob.post(
        API + "me/contact-methods/", {"kind": "email", "address": "bob@example.com"}, format="json"
    )
    as_bob.patch(API + "me/settings/", {"time_zone": "Europe/Berlin"}, format="json")

    assert [(a, t, who) for a, t, _, who in entries()] == [
        ("created", "oncall.servicepolicy", "alice"),
        ("created", "oncall.notificationrule", "bob"),
        ("created", "oncall.contactmethod", "bob"),
        ("updated", "oncall.personsettings", "bob"),
    ]


def test_integrations_and_routing_rules_are_audited_without_their_secrets(as_alice, service):
    created = as_alice.post(
        API + "integrations/",
        {"name": "prom", "kind": "grafana", "service": service.pk, "hmac_secret": "s3cret"},
        format="json",
    ).json()
    as_alice.patch(API + f"integrations/{created['id']}/", {"enabled": False}, format="json")
    as_alice.post(API + f"integrations/{created['id']}/rotate/")
    rule = as_alice.post(
        API + "routing-rules/",
        {"matchers": [{"label": "team", "value": "db"}], "service": service.pk},
        format="json",
    ).json()
    as_alice.delete(API + f"routing-rules/{rule['id']}/")
    as_alice.delete(API + f"integrations/{created['id']}/")

    assert [(a, t) for a, t, _, _ in entries()] == [
        ("created", "alerts.integration"),
        ("updated", "alerts.integration"),
        ("updated", "alerts.integration"),
        ("created", "alerts.routingrule"),
        ("deleted", "alerts.routingrule"),
        ("deleted", "alerts.integration"),
    ]
    disabled = AuditEntry.objects.filter(object_type="alerts.integration", action="updated")
    assert disabled.order_by("id").first().changes == {"enabled": [True, False]}
    everything = json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert "s3cret" not in everything and created["token"] not in everything
    assert not Integration.objects.exists() and not RoutingRule.objects.exists()


def test_a_refused_write_leaves_no_entry(as_alice, bob):
    schedule = make_schedule("primary")
    add_layer(schedule, [bob], start=NOW)
    make_policy("checkout", {"schedules": [schedule]})
    AuditEntry.objects.all().delete()
    assert_error(as_alice.delete(API + f"schedules/{schedule.pk}/"), 409)
    assert_error(as_alice.post(API + "schedules/", {"name": "primary"}, format="json"), 400)
    assert entries() == []


# --- reading the log --------------------------------------------------------------------------


def test_admins_read_the_log_newest_first_and_filter_it(as_alice, as_bob, alice, bob):
    with time_machine.travel(NOW, tick=False):
        first = as_alice.post(API + "schedules/", {"name": "a"}, format="json").json()
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        as_alice.post(API + "schedules/", {"name": "b"}, format="json")
        as_bob.patch(API + "me/settings/", {"time_zone": "Europe/Berlin"}, format="json")

    log = as_alice.get(API + "audit/").json()["results"]
    assert [e["summary"] for e in log] == [
        "bob updated person settings settings of bob: time_zone",
        "alice created schedule b",
        "alice created schedule a",
    ]
    assert log[-1]["at"] == "2025-06-02T12:00:00Z" and log[-1]["actor"] == "alice"
    only = as_alice.get(
        API + "audit/", {"object_type": "oncall.schedule", "object_id": first["id"]}
    ).json()["results"]
    assert [e["summary"] for e in only] == ["alice created schedule a"]
    by_bob = as_alice.get(API + "audit/", {"actor": "bob"}).json()["results"]
    assert len(by_bob) == 1
    assert as_alice.get(API + f"audit/{only[0]['id']}/").json() == only[0]
    assert_error(as_bob.get(API + "audit/"), 403, "This needs the admin role; you are responder.")

"""Alertmanager webhooks through HTTP: grouping, dedup, resolution, and what the response says."""

from __future__ import annotations

import pytest

from alerts.models import Alert, AlertStatus, Kind, Silence
from incidents.models import EntryKind, Incident, Status, Urgency
from incidents.services import acknowledge_incident, merge_incidents, resolve_incident
from tests.alerts.payloads import am_alert, am_batch, timeline_kinds
from tests.helpers.ingest import load_fixture, results_of


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus-prod")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


def test_firing_batch_opens_one_incident_with_every_alert_attached(post_json, url, service):
    response = post_json(url, load_fixture("alertmanager", "firing_batch"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["received"] == 3
    incident = Incident.objects.get()
    assert [(a["fingerprint"], a["action"], a["incident"]) for a in results_of(response)] == [
        ("3e9c2f1a7b8d4c05", "opened", incident.number),
        ("a41f0e6b92c3d718", "attached", incident.number),
        ("c07d55e19f3a2b64", "ignored", None),  # resolved, and never seen firing
    ]
    assert incident.service == service
    assert incident.status == Status.TRIGGERED
    assert incident.title == "Instance web-1.prod.example.com:9100 down"
    attached = Alert.objects.filter(incident=incident)
    assert sorted(attached.values_list("fingerprint", flat=True)) == [
        "3e9c2f1a7b8d4c05",
        "a41f0e6b92c3d718",
    ]
    assert all(a.status == AlertStatus.FIRING for a in attached)
    assert timeline_kinds(incident) == [
        EntryKind.OPENED,
        EntryKind.ALERT_ATTACHED,
        EntryKind.ALERT_ATTACHED,
    ]
    entry = incident.timeline.get(kind=EntryKind.OPENED)
    assert entry.actor_name == "prometheus-prod"
    assert entry.source == "alert"


def test_each_group_key_opens_its_own_incident(post_json, url):
    first = post_json(url, am_batch(am_alert("fp-a"), group_key='{}:{alertname="A"}'))
    second = post_json(url, am_batch(am_alert("fp-b"), group_key='{}:{alertname="B"}'))

    assert results_of(first)[0]["action"] == "opened"
    assert results_of(second)[0]["action"] == "opened"
    assert results_of(first)[0]["incident"] != results_of(second)[0]["incident"]
    assert Incident.objects.count() == 2


def test_a_new_alert_of_an_open_group_in_a_later_batch_attaches(post_json, url):
    post_json(url, am_batch(am_alert("fp-1")))
    response = post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2")))

    incident = Incident.objects.get()
    assert [a["action"] for a in results_of(response)] == ["deduplicated", "attached"]
    assert incident.alerts.count() == 2


def test_second_identical_batch_opens_nothing_and_bumps_occurrences(post_json, url):
    batch = load_fixture("alertmanager", "firing_batch")
    post_json(url, batch)
    incident = Incident.objects.get()
    entries_before = incident.timeline.count()

    response = post_json(url, batch)

    assert response.status_code == 200
    assert [a["action"] for a in results_of(response)] == [
        "deduplicated",
        "deduplicated",
        "ignored",
    ]
    assert {a["incident"] for a in results_of(response)[:2]} == {incident.number}
    assert Incident.objects.count() == 1
    assert Alert.objects.count() == 2
    assert set(Alert.objects.values_list("occurrences", flat=True)) == {2}
    assert incident.timeline.count() == entries_before


def test_repeats_reach_the_timeline_only_at_the_tenth_and_hundredth(post_json, url):
    batch = am_batch(am_alert("flappy"))

    def repeated_entries() -> list[int]:
        entries = Incident.objects.get().timeline.filter(kind=EntryKind.ALERT_REPEATED)
        return [e.data["occurrences"] for e in entries.order_by("id")]

    for _ in range(9):
        post_json(url, batch)
    assert repeated_entries() == []
    post_json(url, batch)
    assert repeated_entries() == [10]
    post_json(url, batch)
    assert repeated_entries() == [10]

    # Skip ahead to the 98th occurrence rather than send 87 more requests.
    Alert.objects.filter(fingerprint="flappy").update(occurrences=98)
    post_json(url, batch)
    assert repeated_entries() == [10]
    response = post_json(url, batch)
    assert repeated_entries() == [10, 100]
    post_json(url, batch)
    assert repeated_entries() == [10, 100]

    assert results_of(response)[0]["action"] == "deduplicated"
    assert Alert.objects.get().occurrences == 101
    assert Incident.objects.count() == 1


def test_resolved_alert_in_a_later_batch_resolves_it(post_json, url):
    post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2")))

    response = post_json(url, am_batch(am_alert("fp-1", status="resolved")))

    incident = Incident.objects.get()
    assert results_of(response) == [
        {"fingerprint": "fp-1", "action": "resolved", "incident": incident.number}
    ]
    resolved = Alert.objects.get(fingerprint="fp-1")
    assert resolved.status == AlertStatus.RESOLVED
    assert resolved.resolved_at is not None
    assert Alert.objects.get(fingerprint="fp-2").status == AlertStatus.FIRING
    assert incident.status == Status.TRIGGERED  # fp-2 still fires
    assert timeline_kinds(incident)[-1] == EntryKind.ALERT_RESOLVED


def test_incident_auto_resolves_when_every_alert_has_resolved(post_json, url):
    post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2")))
    post_json(url, am_batch(am_alert("fp-1", status="resolved")))

    post_json(url, am_batch(am_alert("fp-2", status="resolved")))

    incident = Incident.objects.get()
    assert incident.status == Status.RESOLVED
    assert incident.resolved_by is None
    assert timeline_kinds(incident)[-2:] == [EntryKind.ALERT_RESOLVED, EntryKind.RESOLVED]
    assert incident.timeline.get(kind=EntryKind.RESOLVED).actor_name == "prometheus-prod"


def test_incident_stays_open_when_the_service_does_not_auto_resolve(post_json, url, service):
    service.auto_resolve = False
    service.save()
    post_json(url, am_batch(am_alert("fp-1")))

    response = post_json(url, am_batch(am_alert("fp-1", status="resolved")))

    assert results_of(response)[0]["action"] == "resolved"
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    incident = Incident.objects.get()
    assert incident.status == Status.TRIGGERED
    assert EntryKind.RESOLVED not in timeline_kinds(incident)


def test_fingerprint_firing_after_its_incident_auto_resolved_opens_a_new_incident(post_json, url):
    post_json(url, am_batch(am_alert("fp-1")))
    post_json(url, am_batch(am_alert("fp-1", status="resolved")))
    old = Incident.objects.get()
    assert old.status == Status.RESOLVED

    response = post_json(url, am_batch(am_alert("fp-1")))

    new = Incident.objects.exclude(pk=old.pk).get()
    assert results_of(response)[0] == {
        "fingerprint": "fp-1",
        "action": "opened",
        "incident": new.number,
    }
    assert new.status == Status.TRIGGERED
    assert Alert.objects.filter(fingerprint="fp-1").count() == 2
    assert Alert.objects.get(status=AlertStatus.FIRING).incident == new


def test_fingerprint_firing_after_a_human_resolved_the_incident_opens_a_new_incident(
    post_json, url, bob, django_capture_on_commit_callbacks
):
    post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2")))
    old = Incident.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        resolve_incident(old, by=bob, source="web")

    # alerts.receivers ended the incident's firing alerts with it.
    assert set(Alert.objects.values_list("status", flat=True)) == {AlertStatus.RESOLVED}

    response = post_json(url, am_batch(am_alert("fp-1")))

    new = Incident.objects.exclude(pk=old.pk).get()
    assert results_of(response)[0]["action"] == "opened"
    assert results_of(response)[0]["incident"] == new.number
    assert Alert.objects.get(status=AlertStatus.FIRING).incident == new
    old.refresh_from_db()
    assert old.status == Status.RESOLVED
    assert old.resolved_by == bob


def test_repeat_of_an_alert_whose_incident_was_resolved_before_its_receiver_ran_opens_new(
    post_json, url, bob
):
    # Without the on-commit receiver (e.g. it has not run yet), the pipeline itself notices.
    post_json(url, am_batch(am_alert("fp-1")))
    old = Incident.objects.get()
    resolve_incident(old, by=bob, source="web")

    response = post_json(url, am_batch(am_alert("fp-1")))

    assert results_of(response)[0]["action"] == "opened"
    assert Incident.objects.open().get().pk != old.pk
    assert Alert.objects.filter(fingerprint="fp-1", status=AlertStatus.FIRING).count() == 1


def test_repeat_of_an_alert_on_an_acknowledged_incident_is_deduplicated(post_json, url, bob):
    post_json(url, am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()
    acknowledge_incident(incident, by=bob, source="web")

    response = post_json(url, am_batch(am_alert("fp-1")))

    assert results_of(response)[0] == {
        "fingerprint": "fp-1",
        "action": "deduplicated",
        "incident": incident.number,
    }
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED


def test_response_names_every_action(post_json, url, service):
    Silence.objects.create(
        matchers=[{"label": "alertname", "op": "=", "value": "Quiet"}],
        starts_at="2000-01-01T00:00:00Z",
        ends_at="2999-01-01T00:00:00Z",
        comment="noise",
    )
    post_json(url, am_batch(am_alert("fp-old"), am_alert("fp-gone")))
    incident = Incident.objects.get()

    response = post_json(
        url,
        am_batch(
            am_alert("fp-old"),
            am_alert("fp-new"),
            am_alert("fp-quiet", alertname="Quiet"),
            am_alert("fp-gone", status="resolved"),
            am_alert("fp-never", status="resolved"),
        ),
    )

    assert response.status_code == 200
    assert [(a["fingerprint"], a["action"], a["incident"]) for a in results_of(response)] == [
        ("fp-old", "deduplicated", incident.number),
        ("fp-new", "attached", incident.number),
        ("fp-quiet", "silenced", None),
        ("fp-gone", "resolved", incident.number),
        ("fp-never", "ignored", None),
    ]
    assert response.json()["received"] == 5


def test_truncated_alerts_and_notification_reason_are_tolerated(post_json, url):
    response = post_json(url, load_fixture("alertmanager", "truncated_newer_fields"))

    assert response.status_code == 200
    body = response.json()
    assert sorted(a["action"] for a in results_of(response)) == ["attached", "opened"]
    assert any("truncatedAlerts" in w for w in body["warnings"])
    assert Incident.objects.count() == 1
    assert Alert.objects.count() == 2


def test_a_batch_opens_its_incident_with_the_first_alerts_title_and_the_worst_severity(
    post_json, url
):
    # Alerts are processed in fingerprint order; "zz" is listed first but sorts last.
    response = post_json(
        url,
        am_batch(
            am_alert("zz", summary="Checkout error rate high", severity="warning"),
            am_alert("aa", summary="Checkout latency high", severity="critical"),
        ),
    )

    incident = Incident.objects.get()
    assert sorted(a["action"] for a in results_of(response)) == ["attached", "opened"]
    assert incident.title == "Checkout error rate high"
    assert incident.severity == 1
    assert EntryKind.SEVERITY_CHANGED not in timeline_kinds(incident)


def test_severity_label_sets_the_incident_severity(post_json, url):
    post_json(url, am_batch(am_alert("fp-1", severity="critical")))

    incident = Incident.objects.get()
    assert incident.severity == 1
    assert incident.urgency == Urgency.HIGH
    assert Alert.objects.get().severity == 1


def test_unknown_severity_label_means_severity_three(post_json, url):
    post_json(url, am_batch(am_alert("fp-1", severity="page-me-maybe")))

    incident = Incident.objects.get()
    assert incident.severity == 3
    assert incident.urgency == Urgency.LOW


def test_a_more_severe_alert_joining_raises_the_incident_severity(post_json, url):
    post_json(url, am_batch(am_alert("fp-1", severity="warning")))
    incident = Incident.objects.get()
    assert incident.severity == 3

    response = post_json(url, am_batch(am_alert("fp-1"), am_alert("fp-2", severity="critical")))

    assert results_of(response)[1]["action"] == "attached"
    incident.refresh_from_db()
    assert incident.severity == 1
    assert incident.urgency == Urgency.HIGH
    change = incident.timeline.get(kind=EntryKind.SEVERITY_CHANGED)
    assert change.data["from"] == 3
    assert change.data["to"] == 1


def test_a_less_severe_alert_joining_leaves_the_severity(post_json, url):
    post_json(url, am_batch(am_alert("fp-1", severity="critical")))
    post_json(url, am_batch(am_alert("fp-2", severity="info")))

    incident = Incident.objects.get()
    assert incident.severity == 1
    assert EntryKind.SEVERITY_CHANGED not in timeline_kinds(incident)


def test_alerts_of_two_integrations_with_one_group_key_open_separate_incidents(
    post_json, url, make_integration
):
    other = make_integration(Kind.ALERTMANAGER, name="prometheus-staging")
    batch = am_batch(am_alert("fp-1"))

    post_json(url, batch)
    post_json(f"/integrations/alertmanager/{other.token}/", batch)

    assert Incident.objects.count() == 2
    assert Alert.objects.count() == 2


def test_alerts_of_a_merged_incident_follow_it_into_the_target(
    post_json, url, bob, django_capture_on_commit_callbacks
):
    post_json(url, am_batch(am_alert("fp-a"), group_key="A"))
    post_json(url, am_batch(am_alert("fp-b"), group_key="B"))
    source, target = Incident.objects.order_by("number")

    with django_capture_on_commit_callbacks(execute=True):
        merge_incidents(target, [source], by=bob, source="web")

    assert Alert.objects.get(fingerprint="fp-a").incident == target
    repeat = post_json(url, am_batch(am_alert("fp-a"), group_key="A"))
    assert results_of(repeat)[0] == {
        "fingerprint": "fp-a",
        "action": "deduplicated",
        "incident": target.number,
    }

    post_json(url, am_batch(am_alert("fp-a", status="resolved"), group_key="A"))
    target.refresh_from_db()
    assert target.status == Status.TRIGGERED  # fp-b still fires
    post_json(url, am_batch(am_alert("fp-b", status="resolved"), group_key="B"))
    target.refresh_from_db()
    assert target.status == Status.RESOLVED
    assert Incident.objects.count() == 2

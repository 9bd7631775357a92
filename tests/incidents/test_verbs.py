"""The verbs: legal and illegal transitions, the timeline they write, the signal they send."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from incidents import opening, services, timeline
from incidents.models import EntryKind, Incident, Source, Status, TimelineEntry
from incidents.services import IllegalTransition, IncidentError
from incidents.signals import incident_changed


@pytest.fixture
def incident(service) -> Incident:
    return opening.open_incident(service, title="Checkout is slow", source=Source.API)


def kinds(incident: Incident) -> list[str]:
    return list(incident.timeline.values_list("kind", flat=True))


def test_numbers_start_at_1000_and_count_up(service):
    first = opening.open_incident(service, title="a", source=Source.API)
    second = opening.open_incident(service, title="b", source=Source.API)
    assert (first.number, second.number) == (1000, 1001)


def test_acknowledge_records_who_and_where(incident, bob):
    acked = services.acknowledge_incident(incident, by=bob, source=Source.SMS)
    assert acked.status == Status.ACKNOWLEDGED
    assert acked.acknowledged_by == bob
    assert acked.assignee == bob
    entry = acked.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert entry.message == "Acknowledged by bob via SMS"
    assert (entry.actor, entry.source) == (bob, "sms")


def test_acknowledging_twice_is_refused(incident, bob):
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    with pytest.raises(IllegalTransition, match="already acknowledged"):
        services.acknowledge_incident(incident, by=bob, source=Source.API)
    assert kinds(incident) == [EntryKind.OPENED, EntryKind.ACKNOWLEDGED]


def test_resolved_incident_refuses_every_state_change(incident, bob, alice):
    services.resolve_incident(incident, by=bob, source=Source.WEB, note="restarted the pod")
    for verb, kwargs in [
        (services.acknowledge_incident, {}),
        (services.resolve_incident, {}),
        (services.escalate_incident, {}),
        (services.reassign_incident, {"to": alice}),
        (services.set_severity, {"severity": 1}),
        (services.snooze_incident, {"until": timezone.now() + timedelta(hours=1)}),
        (services.unacknowledge_incident, {}),
    ]:
        with pytest.raises(IllegalTransition):
            verb(incident, by=bob, source=Source.API, **kwargs)
    assert Incident.objects.get(pk=incident.pk).status == Status.RESOLVED
    assert kinds(incident) == [EntryKind.OPENED, EntryKind.RESOLVED]
    assert "restarted the pod" in incident.timeline.get(kind=EntryKind.RESOLVED).message


def test_notes_are_taken_even_after_resolution(incident, bob):
    services.resolve_incident(incident, by=bob, source=Source.API)
    entry = services.add_note(incident, text="root cause: full disk", by=bob, source=Source.CHAT)
    assert entry.kind == EntryKind.NOTE and entry.source == "chat"
    with pytest.raises(IncidentError):
        services.add_note(incident, text="   ", by=bob, source=Source.CHAT)


def test_unacknowledge_returns_to_triggered(incident, bob):
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    again = services.unacknowledge_incident(incident, by=bob, source=Source.API)
    assert again.status == Status.TRIGGERED and again.acknowledged_by is None
    with pytest.raises(IllegalTransition):
        services.unacknowledge_incident(incident, by=bob, source=Source.API)


def test_reassign_retriggers_an_acknowledged_incident_for_the_new_assignee(incident, bob, alice):
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    moved = services.reassign_incident(incident, to=alice, by=bob, source=Source.WEB)
    assert moved.assignee == alice and moved.status == Status.TRIGGERED
    assert moved.timeline.last().message == "Reassigned to alice by bob via web"


def test_an_observer_cannot_be_assigned_whatever_the_surface(incident, bob, charlie):
    with pytest.raises(IncidentError, match="charlie is an observer and cannot act"):
        services.reassign_incident(incident, to=charlie, by=bob, source=Source.WEB)
    incident.refresh_from_db()
    assert incident.assignee is None


def test_escalate_retriggers_and_records(incident, bob):
    services.acknowledge_incident(incident, by=bob, source=Source.API)
    escalated = services.escalate_incident(incident, by=bob, source=Source.CHAT)
    assert escalated.status == Status.TRIGGERED
    assert kinds(incident)[-1] == EntryKind.ESCALATED


def test_severity_changes_urgency_unless_the_service_fixes_it(incident, bob, service):
    assert (incident.severity, incident.urgency) == (3, "low")
    raised = services.set_severity(incident, severity=1, by=bob, source=Source.API)
    assert (raised.severity, raised.urgency) == (1, "high")
    with pytest.raises(IllegalTransition):
        services.set_severity(incident, severity=1, by=bob, source=Source.API)
    with pytest.raises(IncidentError):
        services.set_severity(incident, severity=7, by=bob, source=Source.API)
    service.urgency_override = "low"
    service.save()
    lowered = services.set_severity(incident, severity=2, by=bob, source=Source.API)
    assert lowered.urgency == "low"


def test_snooze_acknowledges_then_triggers_again_when_it_ends(incident, bob):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        snoozed = services.snooze_incident(
            incident, until=timezone.now() + timedelta(minutes=30), by=bob, source=Source.API
        )
        assert snoozed.status == Status.ACKNOWLEDGED
        assert services.retrigger_due_incidents() == 0
        traveller.shift(timedelta(minutes=31))
        assert services.retrigger_due_incidents() == 1
    again = Incident.objects.get(pk=incident.pk)
    assert again.status == Status.TRIGGERED and again.snoozed_until is None
    assert again.timeline.last().message == "Re-triggered: snooze ended"


def test_snooze_must_end_in_the_future(incident, bob):
    with pytest.raises(IncidentError, match="future"):
        services.snooze_incident(incident, until=timezone.now(), by=bob, source=Source.API)


def test_acknowledgement_times_out_per_service(incident, bob, service):
    service.ack_timeout_minutes = 15
    service.save()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        services.acknowledge_incident(incident, by=bob, source=Source.API)
        traveller.shift(timedelta(minutes=14))
        assert services.retrigger_due_incidents() == 0
        traveller.shift(timedelta(minutes=2))
        assert services.retrigger_due_incidents() == 1
    assert Incident.objects.get(pk=incident.pk).status == Status.TRIGGERED
    assert kinds(incident)[-1] == EntryKind.TRIGGERED


def test_merge_resolves_the_others_pointing_at_the_target(service, bob):
    target = opening.open_incident(service, title="db down", source=Source.API)
    other = opening.open_incident(service, title="api errors", source=Source.API)
    merged = services.merge_incidents(target, [other], by=bob, source=Source.WEB)
    other.refresh_from_db()
    assert other.status == Status.RESOLVED and other.merged_into == merged
    assert merged.timeline.last().message == f"#{other.number} merged in by bob via web"
    with pytest.raises(IncidentError):
        services.merge_incidents(target, [], by=bob, source=Source.WEB)


def test_timeline_refuses_updates_and_deletes_in_the_orm(incident):
    entry = incident.timeline.first()
    entry.message = "rewritten"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        TimelineEntry.objects.filter(pk=entry.pk).update(message="x")
    with pytest.raises(TypeError):
        TimelineEntry.objects.filter(pk=entry.pk).delete()


def test_timeline_refuses_updates_in_the_database_itself(incident):
    table = TimelineEntry._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET message = 'rewritten'")  # noqa: S608
    assert incident.timeline.first().message.startswith("Incident #")


def test_each_entry_is_announced_once_after_commit(
    service, bob, django_capture_on_commit_callbacks
):
    seen = []

    def receiver(sender, entry, **kwargs):
        seen.append(entry.kind)

    incident_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            incident = opening.open_incident(service, title="x", source=Source.API)
            services.acknowledge_incident(incident, by=bob, source=Source.API)
        assert seen == []  # nothing before commit
        for callback in callbacks:
            callback()
    finally:
        incident_changed.disconnect(receiver)
    assert [k for k in seen if k in ("opened", "acknowledged")] == ["opened", "acknowledged"]


# --- batched timeline entries (an ingest batch's "alert attached" lines) ---------------------


def _attached(incident: Incident, n: int, **kw) -> TimelineEntry:
    return timeline.record(
        incident,
        EntryKind.ALERT_ATTACHED,
        message=f"alert {n}",
        source=Source.ALERT,
        actor_name="prometheus",
        **kw,
    )


def test_batched_entries_are_written_together_at_the_end_and_announced_once_each(
    incident, django_capture_on_commit_callbacks, django_assert_num_queries
):
    seen: list[int] = []

    def receiver(sender, entry, **kwargs):
        seen.append(entry.pk)

    incident_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            with timeline.batched_timeline():
                with django_assert_num_queries(0):
                    entries = [_attached(incident, n, batch=True) for n in range(3)]
                assert all(e.pk is None for e in entries)
            assert all(e.pk is not None for e in entries)
    finally:
        incident_changed.disconnect(receiver)

    assert seen == [e.pk for e in entries]
    assert list(
        incident.timeline.filter(kind=EntryKind.ALERT_ATTACHED).values_list("message", flat=True)
    ) == ["alert 0", "alert 1", "alert 2"]


def test_an_entry_recorded_in_a_batch_without_batch_writes_the_batch_first(incident):
    with timeline.batched_timeline():
        _attached(incident, 1, batch=True)
        services.add_note(incident, text="looking", by=None, source=Source.API)
        _attached(incident, 2, batch=True)

    # The order they were recorded in, by time and by id alike.
    by_id = list(incident.timeline.order_by("id").values_list("kind", "message"))[-3:]
    assert [kind for kind, _ in by_id] == [
        EntryKind.ALERT_ATTACHED,
        EntryKind.NOTE,
        EntryKind.ALERT_ATTACHED,
    ]
    assert list(incident.timeline.order_by("at", "id").values_list("id", flat=True)) == list(
        incident.timeline.order_by("id").values_list("id", flat=True)
    )


def test_a_batch_that_raises_writes_nothing(incident):
    before = incident.timeline.count()

    with pytest.raises(RuntimeError), timeline.batched_timeline():
        _attached(incident, 1, batch=True)
        raise RuntimeError("the batch failed")

    assert incident.timeline.count() == before
    with timeline.batched_timeline():
        pass  # a later batch does not inherit the dropped entry
    assert incident.timeline.count() == before


def test_batch_outside_a_batched_timeline_is_written_at_once(incident):
    entry = _attached(incident, 1, batch=True)

    assert entry.pk is not None
    assert incident.timeline.filter(pk=entry.pk).exists()

"""Postmortem services and the report selector, against the database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from accounts.models import AuditEntry
from incidents import opening, services, timeline
from incidents.action_items import add_action_item, delete_action_item, update_action_item
from incidents.curation import annotate_entry, hide_entry, pin_entry
from incidents.models import EntryKind, Incident, Postmortem, Source, TimelineEntry
from incidents.postmortem_report import postmortem_report
from incidents.postmortems import PostmortemError, get_or_start_postmortem, update_postmortem

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


def page_entry(incident: Incident, person, status: str, page: int = 31, channel: str = "sms"):
    """Record a page's progress the way oncall.engine does."""
    return timeline.record(
        incident,
        EntryKind.PAGE,
        message=f"page {page} {status}",
        source=Source.SYSTEM,
        data={"page": page, "person": person.pk, "channel": channel, "status": status},
    )


@pytest.fixture
def incident(service, bob, charlie) -> Incident:
    """Opened at 02:00; bob texted at 02:00:06 (delivered 02:00:09) and called at 02:02
    (answered 02:03); bob acks by SMS at 02:04:36; resolved from chat at 02:40."""
    with time_machine.travel(T0, tick=False) as clock:
        incident = opening.open_incident(
            service, title="Disk full on db-1", severity=1, source=Source.ALERT, actor_name="prom"
        )
        clock.move_to(T0 + timedelta(seconds=6))
        page_entry(incident, bob, "sent")
        clock.move_to(T0 + timedelta(seconds=9))
        page_entry(incident, bob, "delivered")
        clock.move_to(T0 + timedelta(minutes=2))
        page_entry(incident, bob, "sent", page=32, channel="voice")
        clock.move_to(T0 + timedelta(minutes=3))
        page_entry(incident, bob, "answered", page=32, channel="voice")
        page_entry(incident, charlie, "failed", page=33)
        clock.move_to(T0 + timedelta(minutes=4, seconds=36))
        services.acknowledge_incident(incident, by=bob, source=Source.SMS)
        clock.move_to(T0 + timedelta(minutes=10))
        services.add_note(incident, text="db-1 is full", by=bob, source=Source.CHAT)
        clock.move_to(T0 + timedelta(minutes=40))
        services.resolve_incident(incident, by=bob, source=Source.CHAT)
    return Incident.objects.get(pk=incident.pk)


def test_starting_a_postmortem_twice_gives_the_same_one_and_audits_once(incident, bob):
    first = get_or_start_postmortem(incident, bob)
    again = get_or_start_postmortem(incident, bob)
    assert first.pk == again.pk
    assert Postmortem.objects.count() == 1
    assert list(AuditEntry.objects.values_list("action", "object_type")) == [
        ("created", "incidents.postmortem")
    ]


def test_updating_fields_records_only_what_changed(incident, bob):
    postmortem = get_or_start_postmortem(incident, bob)
    update_postmortem(postmortem, bob, summary="Disk full", impact="")
    postmortem.refresh_from_db()
    assert postmortem.summary == "Disk full" and postmortem.updated_by == bob
    entry = AuditEntry.objects.order_by("-id").first()
    assert entry.action == "updated" and entry.changes == {"summary": ["", "Disk full"]}


def test_unknown_or_oversized_fields_are_refused(incident, bob):
    postmortem = get_or_start_postmortem(incident, bob)
    with pytest.raises(PostmortemError, match="Unknown fields: title"):
        update_postmortem(postmortem, bob, title="x")
    with pytest.raises(PostmortemError, match="at most 50,000"):
        update_postmortem(postmortem, bob, impact="x" * 50_001)


def test_action_items_are_added_in_order_changed_and_deleted(incident, alice, bob):
    postmortem = get_or_start_postmortem(incident, bob)
    first = add_action_item(postmortem, description="Alert at 80%", owner=bob, by=alice)
    second = add_action_item(
        postmortem, description="  Grow the disk ", due=date(2025, 3, 8), by=alice
    )
    assert (first.order, second.order, second.description) == (1, 2, "Grow the disk")
    update_action_item(first, done=True, owner=None, by=bob)
    first.refresh_from_db()
    assert first.done and first.owner is None and first.description == "Alert at 80%"
    with pytest.raises(PostmortemError, match="needs a description"):
        update_action_item(second, description="  ", by=bob)
    delete_action_item(second, by=bob)
    assert list(postmortem.action_items.values_list("description", flat=True)) == ["Alert at 80%"]
    assert AuditEntry.objects.filter(object_type="incidents.actionitem").count() == 4


def test_hiding_never_deletes_and_pins_and_annotations_show_in_the_report(incident, bob):
    postmortem = get_or_start_postmortem(incident, bob)
    entries = list(incident.timeline.order_by("at", "id"))
    note = next(e for e in entries if e.kind == EntryKind.NOTE)
    hide_entry(postmortem, note, by=bob)
    opened = entries[0]
    annotate_entry(postmortem, opened, by=bob, annotation=" first alert ")
    pin_entry(postmortem, opened, by=bob)
    assert TimelineEntry.objects.filter(pk=note.pk).exists()
    report = postmortem_report(incident)
    curated_ids = [e.id for e in report.curated]
    assert note.pk not in curated_ids
    assert note.pk in [e.id for e in report.entries]
    first = report.curated[0]
    assert (first.pinned, first.annotation) == (True, "first alert")
    hide_entry(postmortem, note, by=bob, hidden=False)
    assert note.pk in [e.id for e in postmortem_report(incident).curated]


def test_an_entry_of_another_incident_cannot_be_curated(incident, service, bob):
    other = opening.open_incident(service, title="Other", source=Source.API, by=bob)
    postmortem = get_or_start_postmortem(incident, bob)
    with pytest.raises(PostmortemError, match="belongs to another incident"):
        pin_entry(postmortem, other.timeline.get(), by=bob)


def test_the_report_computes_key_durations_and_follows_each_page(incident, bob):
    report = postmortem_report(incident)
    assert report.opened_at == T0
    assert report.time_to_acknowledge == timedelta(minutes=4, seconds=36)
    assert report.time_to_resolve == timedelta(minutes=40)
    assert (report.acknowledged_by, report.acknowledged_via) == ("bob", "sms")
    assert report.resolved_by == "bob"
    assert report.started is False and report.summary == ""
    pages = [
        (p.page, p.person, p.channel, p.status, p.delivered_after, p.answered_after, p.answered_how)
        for p in report.pages
    ]
    assert pages == [
        (
            31,
            "bob",
            "sms",
            "delivered",
            timedelta(seconds=3),
            timedelta(minutes=4, seconds=30),
            "acknowledged via SMS",
        ),
        (
            32,
            "bob",
            "voice",
            "answered",
            timedelta(minutes=1),
            timedelta(minutes=1),
            "answered the call",
        ),
        (33, "charlie", "sms", "failed", None, None, ""),
    ]


def test_the_report_reads_a_long_timeline_in_a_bounded_number_of_queries(
    incident, bob, django_assert_max_num_queries
):
    postmortem = get_or_start_postmortem(incident, bob)
    for i in range(40):
        add_action_item(postmortem, description=f"item {i}", owner=bob, by=bob)
        page_entry(incident, bob, "sent", page=100 + i)
        annotate_entry(
            postmortem,
            page_entry(incident, bob, "delivered", page=100 + i),
            by=bob,
            annotation="ok",
        )
    incident = Incident.objects.select_related("service").get(pk=incident.pk)  # as access_incident
    # the postmortem, the timeline, its curations, the action items, the names of those paged
    with django_assert_max_num_queries(5):
        report = postmortem_report(incident)
    assert len(report.pages) == 43 and len(report.action_items) == 40


def test_the_report_caps_the_entries_it_loads_and_keeps_later_pinned_ones(incident, bob):
    postmortem = get_or_start_postmortem(incident, bob)
    last = incident.timeline.order_by("-at", "-id").first()
    pin_entry(postmortem, last, by=bob)
    report = postmortem_report(incident, cap=3)
    assert report.truncated and report.loaded_entries == 3
    assert report.total_entries == incident.timeline.count()
    assert [e.id for e in report.entries][-1] == last.pk
    assert len(report.entries) == 4

"""The room's mark of posted alert lines: kept in the database, under the room's row lock."""

from __future__ import annotations

import importlib
import threading
import time

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import connection, connections, transaction

from incidents.models import EntryKind, Incident, Source, TimelineEntry
from incidents.opening import open_incident
from warroom import alert_posts
from warroom.models import Message, MessageKind, Room
from warroom.receivers import tell
from warroom.services import incident_room, post


def alert_line(incident: Incident, name: str) -> TimelineEntry:
    """An alert entry as ingest writes it, not announced: the test follows it by hand."""
    return TimelineEntry.objects.create(
        incident=incident,
        at=incident.triggered_at,
        kind=EntryKind.ALERT_ATTACHED,
        actor_name="prom",
        source=Source.ALERT,
        message=f"Alert from prom: {name}",
        data={"fingerprint": name},
    )


def alert_posts_in(room: Room) -> list[Message]:
    return list(
        room.messages.filter(kind=MessageKind.BOT, data__kind=EntryKind.ALERT_ATTACHED).order_by(
            "id"
        )
    )


def lines_posted(room: Room) -> int:
    return sum(m.data.get("count", 1) for m in alert_posts_in(room))


@pytest.mark.django_db(transaction=True)
def test_two_tasks_of_one_incident_at_once_post_each_alert_once(service, monkeypatch):
    """Task A has read the mark and not yet posted when task B starts: B waits for A's row
    lock, then finds everything posted. (A mark read outside the lock, as the cache's was, let
    both post the same six lines.)"""
    incident = open_incident(service, title="Checkout down", source=Source.API)
    room = Room.objects.get(incident=incident)  # opened, with its opening post, at commit
    entries = [alert_line(incident, f"fp-{i}") for i in range(6)]
    real_marks = alert_posts.posted_marks
    a_has_marks = threading.Event()

    def marks_then_dawdle(room: Room) -> dict[str, int]:
        marks = real_marks(room)
        if threading.current_thread().name == "A":
            a_has_marks.set()
            time.sleep(0.5)  # B starts meanwhile and asks for the marks too
        return marks

    monkeypatch.setattr(alert_posts, "posted_marks", marks_then_dawdle)

    def follow(entry: TimelineEntry) -> None:
        try:
            tell(entry)
        finally:
            connections.close_all()

    a = threading.Thread(target=follow, args=(entries[0],), name="A")
    b = threading.Thread(target=follow, args=(entries[3],), name="B")
    a.start()
    assert a_has_marks.wait(10)
    b.start()
    a.join(10)
    b.join(10)

    assert [m.data["count"] for m in alert_posts_in(room)] == [6]
    room.refresh_from_db()
    assert room.alerts_posted[EntryKind.ALERT_ATTACHED] == entries[-1].pk


@pytest.mark.django_db
def test_an_older_entry_riding_on_a_task_is_posted_with_it(service):
    """Two transactions (a merged incident's alerts in two lanes) can commit entries out of
    their id order: the older one, finding the newer one's task on its way, rides on it; the
    task posts everything past the room's mark, not only from its own entry on."""
    incident = open_incident(service, title="Checkout down", source=Source.API)
    room = incident_room(incident)
    older, newer = alert_line(incident, "older"), alert_line(incident, "newer")

    alert_posts.post_alerts(newer, incident, room)

    [posted] = alert_posts_in(room)
    assert posted.data["count"] == 2
    assert "older" in posted.body and "newer" in posted.body
    assert posted.data["entry"] == older.pk and posted.data["last"] == newer.pk


@pytest.mark.django_db
def test_a_flushed_cache_posts_nothing_twice(service):
    """The mark is in the database: a restarted or flushed Redis does not make the bot post an
    incident's alert lines again."""
    incident = open_incident(service, title="Checkout down", source=Source.API)
    room = incident_room(incident)
    first = [alert_line(incident, f"fp-{i}") for i in range(3)]
    alert_posts.post_alerts(first[0], incident, room)
    cache.clear()

    alert_posts.post_alerts(first[0], incident, room)  # a retried or duplicated task
    later = alert_line(incident, "later")
    alert_posts.post_alerts(later, incident, room)

    assert lines_posted(room) == 4
    assert "later" in alert_posts_in(room)[-1].body


@pytest.mark.django_db
def test_rooms_opened_before_the_mark_count_their_history_as_posted(service):
    """The migration that adds the mark sets it, for existing rooms, to each kind's last entry:
    the first post after an upgrade is what comes next, not the incident's whole history."""
    incident = open_incident(service, title="Checkout down", source=Source.API)
    room = incident_room(incident)
    history = [alert_line(incident, f"fp-{i}") for i in range(3)]
    Room.objects.filter(pk=room.pk).update(alerts_posted={})
    migration = importlib.import_module("warroom.migrations.0006_room_alerts_posted")

    migration.mark_what_is_there(apps, None)

    room.refresh_from_db()
    assert room.alerts_posted == {EntryKind.ALERT_ATTACHED: history[-1].pk}
    next_one = alert_line(incident, "next")
    alert_posts.post_alerts(next_one, incident, room)
    assert lines_posted(room) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no row locks")
@pytest.mark.django_db(transaction=True)
def test_a_message_posted_while_the_bot_holds_the_rooms_mark_does_not_wait(service, alice):
    """The mark's lock is FOR NO KEY UPDATE: someone's message (its foreign key to the room)
    goes in while a bot task holds it."""
    incident = open_incident(service, title="Checkout down", source=Source.API)
    room = Room.objects.get(incident=incident)
    posted = threading.Event()

    def say_something() -> None:
        try:
            post(room, "looking at it", author=alice)
            posted.set()
        finally:
            connections.close_all()

    with transaction.atomic():
        alert_posts.posted_marks(room)
        speaker = threading.Thread(target=say_something)
        speaker.start()
        speaker.join(5)
        assert posted.is_set(), "the message waited for the bot's lock on the room"

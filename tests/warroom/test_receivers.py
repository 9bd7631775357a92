"""The bot against the real database: alerts through the real pipeline open rooms, the bot tells
the story, paged responders are invited and their pages carry the room's link."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import pytest
import time_machine
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache

from accounts.models import Role
from alerts.models import Kind
from alerts.processor import process_pending
from incidents import services, timeline
from incidents.models import EntryKind, Incident, Source, Status, TimelineEntry
from incidents.opening import open_incident
from oncall import delivery, escalation, messages, paging
from oncall.models import NotificationRule, Page
from runbooks.models import Runbook
from tests.alerts.payloads import am_alert, am_batch
from tests.helpers.celery_tasks import SentTask, sent_tasks
from tests.helpers.ingest import load_fixture
from tests.oncall.builders import make_person, make_policy, verified_phone
from warroom import alert_posts, bot, receivers
from warroom.models import Message, MessageKind, Participant, Room
from warroom.receivers import follow_entry
from warroom.services import room_group
from warroom.surfaces.chat import say
from warroom.tasks import follow_entries_later, follow_entry_later


@pytest.fixture(autouse=True)
def _bot_tasks_run_where_enqueued(monkeypatch):
    """Entries written by ingest processing are followed in a Celery task (warroom.tasks);
    here that task (only that one: paging stays queued) runs where it is enqueued, through
    Celery's own local execution. A test that undoes this sees the task sent to the broker."""
    for task in (follow_entry_later, follow_entries_later):
        monkeypatch.setattr(
            task,
            "apply_async",
            lambda args=(), kwargs=None, task=task, **options: task.apply(args, kwargs),
        )


def followed(sent: list[SentTask]) -> list[int]:
    """Return the entries whose bot task was sent to the broker, in order (one entry a task,
    or a batch's entries in one)."""
    ids = []
    for task in sent:
        if task.name == "warroom.follow_entry":
            ids.append(task.args[0])
        elif task.name == "warroom.follow_entries":
            ids.extend(task.args[0])
    return ids


@pytest.fixture
def am(make_integration):
    return make_integration(Kind.ALERTMANAGER, name="prometheus-prod")


@pytest.fixture
def url(am):
    return f"/integrations/alertmanager/{am.token}/"


@pytest.fixture
def alert_in(post_json, url, django_capture_on_commit_callbacks):
    """POST an Alertmanager notification and run everything its commit announces."""

    def send(payload):
        with django_capture_on_commit_callbacks(execute=True):
            return post_json(url, payload)

    return send


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run `action` and then what its commit announces (the receivers); return its result."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


def bot_posts(room: Room) -> list[Message]:
    return list(room.messages.filter(author=None, kind=MessageKind.BOT).order_by("id"))


def reachable(user) -> None:
    method = verified_phone(user, f"+1415555{user.pk:04d}")
    for urgency in ("high", "low"):
        NotificationRule.objects.create(
            user=user, urgency=urgency, delay_minutes=0, contact_method=method
        )


def events_during(room: Room, action) -> list[dict]:
    """Run `action` while listening to the room's channel-layer group; return its events."""

    async def listen() -> list[dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(room_group(room.pk), channel)
        try:
            await sync_to_async(action)()
            events = []
            while True:
                try:
                    received = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                except TimeoutError:
                    return events
                events.append(received["event"])
        finally:
            await layer.group_discard(room_group(room.pk), channel)

    return async_to_sync(listen)()


# --- the room opens with the incident ----------------------------------------------------------


def test_an_alert_opens_the_incident_its_room_and_the_opening_post(alert_in):
    alert_in(load_fixture("alertmanager", "firing_batch"))

    incident = Incident.objects.get()
    room = Room.objects.get(incident=incident)
    [opening] = bot_posts(room)  # the second alert is in it, not a post of its own
    assert opening.data["entry"] == incident.timeline.get(kind=EntryKind.OPENED).pk
    assert opening.data["kind"] == EntryKind.OPENED
    html = opening.html
    assert f"Incident #{incident.number} opened" in html and "checkout" in html
    assert "<td>alertname</td>" in html and "<td>InstanceDown</td>" in html
    assert "<td>web-1.prod.example.com:9100</td>" in html
    assert "has been down for more than 5 minutes" in html
    assert (
        'href="http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0&amp;g0.tab=1"' in html
    )
    assert 'href="https://runbooks.example.com/node/InstanceDown"' in html
    assert "<strong>1 more alert</strong>" in html
    assert "<li>Instance web-2.prod.example.com:9100 down</li>" in html
    assert "Nobody is on call for <strong>checkout</strong>" in html


def test_the_opening_post_names_who_is_on_call(alert_in, service, bob):
    make_policy("checkout primary", {"users": [bob]}, service=service)

    alert_in(am_batch(am_alert("fp-1", severity="critical")))

    [opening] = bot_posts(Room.objects.get())
    assert "<strong>On call</strong> for checkout: <strong>bob</strong> — paging now." in (
        opening.html
    )


def test_the_opening_posts_runbook_matches_an_alert_beyond_those_it_lists(alert_in, service):
    listed = [am_alert(f"fp-{i}", team="web") for i in range(bot.LISTED_ALERTS + 1)]
    Runbook.objects.create(
        title="Database down",
        body="1. Fail over.",
        service=service,
        matchers=[{"label": "team", "op": "=", "value": "db"}],
    )

    alert_in(am_batch(*listed, am_alert("fp-db", team="db")))  # one batch: one opening post

    [opening] = bot_posts(Room.objects.get())
    assert "Database down" in opening.body


def test_one_batch_opening_many_incidents_opens_a_room_for_each(
    client, url, django_capture_on_commit_callbacks
):
    for group in ("A", "B", "C"):
        body = json.dumps(am_batch(am_alert(f"fp-{group}"), group_key=group))
        client.post(url, body, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):
        process_pending()  # one transaction: three OPENED entries announced after one commit

    incidents = list(Incident.objects.order_by("number"))
    assert len(incidents) == 3
    for incident in incidents:
        [opening] = bot_posts(incident.room)
        assert f"Incident #{incident.number} opened" in opening.body


def test_an_incident_opened_by_hand_gets_its_opening_post_once(committed, service, alice):
    incident = committed(
        open_incident,
        service,
        title="Checkout slow",
        severity=2,
        source=Source.API,
        by=alice,
    )
    committed(follow_entry, incident.timeline.get(kind=EntryKind.OPENED))  # announced again

    [opening] = bot_posts(incident.room)
    assert "Opened by alice via API." in opening.html
    assert "| label |" not in opening.body


def test_a_page_announced_before_the_opening_still_follows_the_opening_post(
    committed, service, alice, django_capture_on_commit_callbacks
):
    carol = make_person("carol")
    reachable(carol)
    with django_capture_on_commit_callbacks() as announcements:
        incident = open_incident(service, title="Slow", severity=2, source=Source.API)

    committed(paging.page_person, incident, carol, by=alice, source=Source.API)
    for announce in announcements:  # the receivers of OPENED run only now
        announce()

    posts = bot_posts(incident.room)
    assert [p.data["kind"] for p in posts] == [EntryKind.OPENED, EntryKind.PAGE]
    assert posts[0].data["entry"] == incident.timeline.get(kind=EntryKind.OPENED).pk


def test_the_bot_asks_the_database_little_per_entry(
    alert_in, committed, bob, django_assert_max_num_queries
):
    alert_in(am_batch(*(am_alert(f"fp-{i}") for i in range(3))))
    incident = Incident.objects.get()
    committed(services.acknowledge_incident, incident, by=bob, source=Source.WEB)
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)

    with django_assert_max_num_queries(3):  # the incident with its room, the post, (a savepoint)
        follow_entry(entry)


# --- the story afterwards ----------------------------------------------------------------------


def test_an_ack_posts_a_line_and_tells_clients_the_new_state(alert_in, committed, bob):
    alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()
    room = incident.room

    events = events_during(
        room,
        lambda: committed(services.acknowledge_incident, incident, by=bob, source=Source.WEB),
    )

    last = bot_posts(room)[-1]
    assert last.body == "👍 **Acknowledged by bob via web**"
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert last.data == {"entry": entry.pk, "kind": EntryKind.ACKNOWLEDGED}
    assert {"type": "incident", "incident": {
        "number": incident.number,
        "status": Status.ACKNOWLEDGED,
        "severity": incident.severity,
        "title": incident.title,
        "assignee": "bob",
    }} in events  # fmt: skip
    messages_sent = [e for e in events if e["type"] == "message"]
    assert [e["message"]["id"] for e in messages_sent] == [last.pk]


def test_notes_severity_and_resolution_each_post_one_line(alert_in, committed, bob):
    alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()

    committed(services.add_note, incident, text="restarted *db-1*", by=bob, source=Source.WEB)
    committed(services.set_severity, incident, severity=1, by=bob, source=Source.WEB)
    committed(services.resolve_incident, incident, by=bob, source=Source.WEB, note="fixed")

    lines = [m.body for m in bot_posts(incident.room)][1:]
    assert lines == [
        "📝 **bob** noted: restarted \\*db\\-1\\*",
        f"🌡️ Severity {incident.severity} → 1 by bob via web",
        "✅ **Resolved by bob via web: fixed**",
    ]


def test_a_command_typed_in_the_room_is_not_echoed(alert_in, committed, bob):
    alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()
    room = incident.room

    committed(say, room, "/ack", user=bob)

    assert incident.timeline.filter(kind=EntryKind.COMMAND).count() == 1
    kinds = list(room.messages.order_by("id").values_list("kind", "data__kind"))
    assert kinds == [
        (MessageKind.BOT, EntryKind.OPENED),
        (MessageKind.COMMAND, None),
        (MessageKind.REPLY, None),
        (MessageKind.BOT, EntryKind.ACKNOWLEDGED),  # the state change, once; the command, never
    ]


def test_a_failing_entry_is_logged_and_never_fails_the_verb(alert_in, committed, caplog):
    alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()

    with caplog.at_level(logging.ERROR, logger="warroom.receivers"):
        entry = committed(
            timeline.record,
            incident,
            EntryKind.PAGE,
            message="a page entry with a page id that is no id",
            source=Source.SYSTEM,
            data={"page": "not-a-number", "status": "sent"},
        )

    assert entry.pk is not None
    assert any(f"timeline entry {entry.pk}" in r.getMessage() for r in caplog.records)
    assert len(bot_posts(incident.room)) == 1  # the opening post; nothing half-posted


# --- pages and invitations ---------------------------------------------------------------------


def test_paged_responders_are_invited_and_each_page_is_a_line(
    alert_in, committed, service, bob, settings
):
    settings.PUBLIC_URL = "https://muster.example.com"
    make_policy("checkout primary", {"users": [bob]}, service=service)
    reachable(bob)
    alert_in(am_batch(am_alert("fp-1", severity="critical")))
    incident = Incident.objects.get()
    room = incident.room

    committed(escalation.recover, incident.pk)

    assert Participant.objects.filter(room=room, user=bob, reason="paged").exists()
    assert bot_posts(room)[-1].body == "📟 Escalation level 1: paging bob"

    [page] = Page.objects.filter(incident=incident)
    assert committed(delivery.deliver, page.pk) == "sent"

    line = bot_posts(room)[-1]
    assert line.body == f"📟 Paged bob by {delivery.CHANNEL_LABEL[page.channel]} (level 1)"
    assert line.data["kind"] == EntryKind.PAGE
    page.refresh_from_db()
    assert f"Room: https://muster.example.com/rooms/incident/{incident.number}/" in page.body
    assert Participant.objects.filter(room=room, user=bob).count() == 1


def _sent_not_followed(alert_in, committed, service, bob) -> tuple[Incident, TimelineEntry]:
    """Bob paged at level 1 and his page sent; the "sent" entry, not announced (followed by the
    test)."""
    incident, page = _bob_paged(alert_in, committed, service, bob)
    assert delivery.deliver(page.pk) == "sent"
    return incident, incident.timeline.filter(kind=EntryKind.PAGE).latest("id")


def test_a_sent_pages_line_reads_neither_the_page_nor_the_person(
    alert_in, committed, service, bob, django_assert_num_queries
):
    incident, sent = _sent_not_followed(alert_in, committed, service, bob)
    assert sent.data["level"] == 1

    # The entry with its incident, the post, the invitation's look (bob is in already).
    with django_assert_num_queries(3):
        committed(follow_entry, sent)

    assert bot_posts(incident.room)[-1].body.endswith("(level 1)")
    assert Participant.objects.filter(room=incident.room, user=bob).count() == 1


def test_a_sent_pages_entry_written_before_entries_named_the_level_still_says_it(
    alert_in, committed, service, bob
):
    incident, sent = _sent_not_followed(alert_in, committed, service, bob)
    sent.data = {k: v for k, v in sent.data.items() if k != "level"}  # as older releases wrote

    committed(follow_entry, sent)

    assert bot_posts(incident.room)[-1].body.endswith("(level 1)")


def test_a_person_paged_by_hand_is_invited(alert_in, committed, alice):
    carol = make_person("carol", Role.RESPONDER)
    reachable(carol)
    alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()

    committed(paging.page_person, incident, carol, by=alice, source=Source.API)

    assert Participant.objects.filter(room=incident.room, user=carol, reason="paged").exists()
    assert bot_posts(incident.room)[-1].body == "📟 alice paged carol"


def test_nobody_to_page_is_a_warning_in_the_room(alert_in, committed):
    alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()

    committed(escalation.recover, incident.pk)  # no policy: last resort, nobody reachable

    bodies = [m.body for m in bot_posts(incident.room)]
    assert any(b.startswith("⚠️ **Nobody could be paged") for b in bodies)


def test_the_page_texts_carry_the_room_link_where_it_fits(service, settings):
    settings.PUBLIC_URL = "https://muster.example.com"
    incident = open_incident(
        service, title="Disk full on db-1 " * 30, severity=1, source=Source.ALERT
    )
    room = f"https://muster.example.com/rooms/incident/{incident.number}/"

    message = messages.for_incident(incident)
    assert message.sms.endswith(f" Room: {room}")
    assert len(message.sms) <= messages.SMS_MAX
    assert "Reply 4 to ack" in message.sms and "Disk full on db-1" in message.sms
    assert f"War room: {room}" in message.body
    assert f"War room: {room}" in messages.for_bundle([incident, incident]).body

    settings.PUBLIC_URL = "https://muster.example.com/" + "x" * 200
    too_long = messages.for_incident(incident)
    assert "Room:" not in too_long.sms and len(too_long.sms) <= messages.SMS_MAX
    assert "War room: https://muster.example.com/xxx" in too_long.body


# --- no flood ----------------------------------------------------------------------------------


def test_thirty_alerts_in_one_burst_are_one_post(alert_in):
    alert_in(am_batch(am_alert("fp-0")))
    incident = Incident.objects.get()

    alert_in(am_batch(*(am_alert(f"fp-{i}") for i in range(31))))  # fp-0 again, and 30 new

    assert incident.alerts.count() == 31
    _, burst = bot_posts(incident.room)
    assert burst.data["count"] == 30 and burst.data["kind"] == EntryKind.ALERT_ATTACHED
    assert "<strong>30 new alerts</strong>" in burst.html
    assert burst.html.count("<li>") == 6 and "<li>+25 more alerts</li>" in burst.html


def test_thirty_alerts_opening_an_incident_are_all_in_the_opening_post(alert_in):
    alert_in(am_batch(*(am_alert(f"fp-{i:02d}") for i in range(30))))

    [opening] = bot_posts(Incident.objects.get().room)
    assert "<strong>29 more alerts</strong>" in opening.html
    assert "<li>+24 more alerts</li>" in opening.html


def test_alerts_trickling_in_fast_are_held_and_summarised_with_the_next_post(
    alert_in, committed, bob
):
    with time_machine.travel(datetime(2024, 5, 14, 9, 0, 1, tzinfo=UTC), tick=False):
        alert_in(am_batch(am_alert("fp-0")))
        incident = Incident.objects.get()
        for i in range(1, 9):  # eight requests of one new alert each, within one window
            alert_in(am_batch(am_alert(f"fp-{i}")))

        singles = bot_posts(incident.room)[1:]
        assert [m.body for m in singles] == [
            f"🔔 New alert in the group: **InstanceDown fp\\-{i}** (prometheus\\-prod)"
            for i in range(1, 6)
        ]
        committed(services.acknowledge_incident, incident, by=bob, source=Source.WEB)

    held, ack = bot_posts(incident.room)[-2:]
    assert held.body == "📥 **+3 more alerts** in the group (latest: InstanceDown fp\\-8)."
    assert held.data["count"] == 3
    assert ack.data["kind"] == EntryKind.ACKNOWLEDGED


def test_alerts_resolving_together_are_one_post(alert_in):
    alert_in(am_batch(*(am_alert(f"fp-{i}") for i in range(12))))
    incident = Incident.objects.get()

    alert_in(am_batch(*(am_alert(f"fp-{i}", status="resolved") for i in range(12))))

    bodies = [m.body for m in bot_posts(incident.room)][1:]
    assert len(bodies) == 2
    assert bodies[0].startswith("✅ **12 resolved alerts** in the group:")
    assert bodies[1] == "✅ **Resolved by prometheus\\-prod via alert: every alert has resolved**"


def test_repeats_are_posted_only_at_their_milestones(alert_in, settings):
    settings.DEDUP_MILESTONE_BASE = 10
    for _ in range(10):
        alert_in(am_batch(am_alert("fp-1")))
    incident = Incident.objects.get()

    bodies = [m.body for m in bot_posts(incident.room)][1:]
    assert bodies == ["🔁 Alert repeated 10 times: InstanceDown fp\\-1"]


def test_a_group_reaching_its_milestone_together_is_one_post(alert_in, settings):
    # Alertmanager re-sends a whole group: its alerts reach their 10th occurrence in one batch.
    settings.DEDUP_MILESTONE_BASE = 10
    group = am_batch(*(am_alert(f"fp-{i}") for i in range(6)))
    for _ in range(10):
        alert_in(group)
    incident = Incident.objects.get()

    bodies = [m.body for m in bot_posts(incident.room)][1:]
    assert len(bodies) == 1
    assert bodies[0].startswith("🔁 **6 repeated alerts** in the group:")
    assert incident.timeline.filter(kind=EntryKind.ALERT_REPEATED).count() == 6


def test_alert_entries_are_followed_by_a_worker_not_by_the_ingest_processor(
    post_json, url, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.undo()  # a real enqueue, to the test's Redis, which no worker serves
    with django_capture_on_commit_callbacks(execute=True):
        post_json(url, am_batch(am_alert("fp-worker", summary="Disk full on db-9")))
    incident = Incident.objects.get()
    assert not Message.objects.filter(room__incident=incident).exists()  # not in the processor

    for entry in incident.timeline.order_by("id"):
        follow_entry_later(entry.pk)  # what the worker runs

    [opening] = bot_posts(Room.objects.get(incident=incident))[:1]
    assert "Disk full on db\\-9" in opening.body  # escaped Markdown


def test_a_batch_of_alerts_is_one_task_for_the_bot(
    post_json, url, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.undo()  # the bot's tasks are sent to the broker, and run below as a worker would

    marks: list[str] = []
    real_add = receivers.cache.add

    def add(key, *args, **kwargs):
        marks.append(key)
        return real_add(key, *args, **kwargs)

    monkeypatch.setattr(receivers.cache, "add", add)
    with sent_tasks() as sent, django_capture_on_commit_callbacks(execute=True):
        post_json(url, am_batch(*(am_alert(f"fp-{i}") for i in range(40))))
    handed = followed(sent)
    incident = Incident.objects.get()
    # The opening marks a task on its way for the incident's alert lines; committed together,
    # the 40 entries then ask for the mark once, and find it.
    assert [k for k in marks if k.startswith("warroom:followed:")] == [
        f"warroom:followed:{EntryKind.ALERT_ATTACHED}:{incident.pk}"
    ] * 2
    attached = list(
        incident.timeline.filter(kind=EntryKind.ALERT_ATTACHED).values_list("pk", flat=True)
    )
    assert len(attached) == 40
    # The opening entry alone: the 40 alerts ride on its task, whose post shows them.
    opened = incident.timeline.get(kind=EntryKind.OPENED).pk
    assert handed == [opened]

    for entry_id in handed:
        follow_entry_later(entry_id)  # what the worker runs

    [opening] = bot_posts(incident.room)
    assert "<strong>39 more alerts</strong>" in opening.html


def test_an_alert_committed_after_the_task_looked_gets_a_task_of_its_own(
    alert_in, post_json, url, django_capture_on_commit_callbacks, monkeypatch
):
    alert_in(am_batch(am_alert("fp-0")))
    incident = Incident.objects.get()
    monkeypatch.undo()  # from here the bot's tasks are sent to the broker

    with sent_tasks() as sent:
        with django_capture_on_commit_callbacks(execute=True):
            post_json(url, am_batch(*(am_alert(f"fp-{i}") for i in range(1, 4))))
        assert len(followed(sent)) == 1
        follow_entry_later(followed(sent)[0])  # the task looks: three alerts, one post

        with django_capture_on_commit_callbacks(execute=True):
            post_json(url, am_batch(*(am_alert(f"fp-{i}") for i in range(4, 7))))
    handed = followed(sent)
    assert len(handed) == 2  # the mark was cleared when the first task looked
    follow_entry_later(handed[1])

    bursts = [m for m in bot_posts(incident.room) if m.data.get("count")]
    assert [m.data["count"] for m in bursts] == [3, 3]


def test_alerts_riding_on_a_task_whose_entry_another_task_posted_are_still_posted(
    alert_in, post_json, url, django_capture_on_commit_callbacks, monkeypatch
):
    """A batch committed while a task looks gets a task of its own, and that task's entry is
    covered by the look; what rides on the second task afterwards is still posted by it."""
    alert_in(am_batch(am_alert("fp-0")))
    incident = Incident.objects.get()
    monkeypatch.undo()  # from here the bot's tasks are sent to the broker

    def batch(tag: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            post_json(url, am_batch(*(am_alert(f"{tag}-{i}") for i in range(3))))

    with sent_tasks() as sent:
        batch("b1")
        [first] = followed(sent)
        # The first task starts: it clears its mark, then (before it looks) b2 is committed,
        # finds no mark and gets a task of its own.
        cache.delete(alert_posts.cache_key("followed", EntryKind.ALERT_ATTACHED, incident.pk))
        batch("b2")
        [_, second] = followed(sent)
        # The first task looks: b1 and b2, one post.
        alert_posts.post_alerts(TimelineEntry.objects.get(pk=first), incident, incident.room)
        batch("b3")  # rides on the second task's mark
        assert followed(sent) == [first, second]
    follow_entry_later(second)

    bursts = [m for m in bot_posts(incident.room) if m.data.get("count")]
    assert [m.data["count"] for m in bursts] == [6, 3]


def test_an_alert_line_committed_while_a_task_posts_is_left_to_its_own_task(alert_in, monkeypatch):
    """A task whose entry an earlier post covered posts what came after it, as its look saw
    it: an entry committed meanwhile (it got a task of its own) is neither counted nor listed."""
    alert_in(am_batch(am_alert("fp-0")))
    incident = Incident.objects.get()
    room = incident.room

    def line(name: str) -> TimelineEntry:
        return timeline.record(
            incident,
            EntryKind.ALERT_ATTACHED,
            message=f"Alert from prom: {name}",
            source=Source.ALERT,
            actor_name="prom",
            data={"fingerprint": name},
        )

    covered, after = line("covered"), line("after")
    alert_posts.cover(room, alert_posts.posted_marks(room), EntryKind.ALERT_ATTACHED, covered.pk)
    real_cover = alert_posts.cover
    late: list[TimelineEntry] = []

    def cover_then_commit_another(room: Room, marks: dict, kind: str, last_pk: int) -> None:
        real_cover(room, marks, kind, last_pk)
        late.append(line("late"))  # between the task's count and its listing

    monkeypatch.setattr(alert_posts, "cover", cover_then_commit_another)
    alert_posts.post_alerts(covered, incident, room)

    [posted] = [m for m in bot_posts(room) if m.data.get("entry") in (after.pk, late[0].pk)]
    assert posted.data["entry"] == after.pk
    assert "late" not in posted.body


def test_while_alerts_keep_coming_an_incidents_next_post_gathers_longer(
    alert_in, post_json, url, django_capture_on_commit_callbacks, monkeypatch
):
    """A post of several alerts marks a storm: the incident's next task waits
    STORM_GATHER_SECONDS, not BURST_GATHER_SECONDS, so a long storm is a line every few
    seconds; nothing is lost, the longer task posts everything since."""
    alert_in(am_batch(am_alert("fp-0")))
    incident = Incident.objects.get()
    monkeypatch.undo()  # from here the bot's tasks are sent to the broker

    def waits(task: SentTask) -> float:
        assert task.eta is not None
        return (datetime.fromisoformat(task.eta) - datetime.now(UTC)).total_seconds()

    with sent_tasks() as sent:
        with django_capture_on_commit_callbacks(execute=True):
            post_json(url, am_batch(*(am_alert(f"fp-{i}") for i in range(1, 4))))
        [calm] = [t for t in sent if t.name.startswith("warroom.follow")]
        assert waits(calm) <= alert_posts.BURST_GATHER_SECONDS
        follow_entry_later(followed(sent)[0])  # a post of three alerts: a storm
        for batch in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                post_json(url, am_batch(*(am_alert(f"fp-{batch}-{i}") for i in range(3))))
    # The second batch found the first one's task on its way.
    [_, storm] = [t for t in sent if t.name.startswith("warroom.follow")]
    assert alert_posts.BURST_GATHER_SECONDS < waits(storm) <= alert_posts.STORM_GATHER_SECONDS
    assert storm.name == "warroom.follow_entry"
    follow_entry_later(storm.args[0])

    bursts = [m for m in bot_posts(incident.room) if m.data.get("count")]
    assert [m.data["count"] for m in bursts] == [3, 6]


def test_one_batch_adding_alerts_to_several_incidents_is_one_task_for_the_bot(
    client, alert_in, url, django_capture_on_commit_callbacks, monkeypatch, settings
):
    settings.INGEST_LANES = 1  # one batch for all three groups
    groups = [f'{{}}:{{alertname="Down{g}"}}' for g in range(3)]
    for g, group in enumerate(groups):
        alert_in(am_batch(am_alert(f"fp-{g}-0"), group_key=group))
    monkeypatch.undo()  # from here the bot's tasks are sent to the broker
    for g, group in enumerate(groups):  # stored, not processed yet: one batch below
        body = json.dumps(am_batch(am_alert(f"fp-{g}-1"), am_alert(f"fp-{g}-2"), group_key=group))
        assert client.post(url, body, content_type="application/json").status_code == 200

    with sent_tasks() as sent, django_capture_on_commit_callbacks(execute=True):
        process_pending()

    [task] = [t for t in sent if t.name.startswith("warroom.follow")]
    assert task.name == "warroom.follow_entries"
    incidents = {e.incident_id for e in TimelineEntry.objects.filter(pk__in=task.args[0])}
    assert len(incidents) == 3  # the first new alert entry of each incident; it sees the rest
    follow_entries_later(task.args[0])  # what the worker runs
    for incident in Incident.objects.all():
        [burst] = [m for m in bot_posts(incident.room) if m.data.get("count")]
        assert burst.data["count"] == 2


def _bob_paged(alert_in, committed, service, bob) -> tuple[Incident, Page]:
    """An incident whose policy's first step paged bob: the incident and bob's page."""
    make_policy("checkout primary", {"users": [bob]}, service=service)
    reachable(bob)
    alert_in(am_batch(am_alert("fp-1", severity="critical")))
    incident = Incident.objects.get()
    committed(escalation.recover, incident.pk)
    [page] = Page.objects.filter(incident=incident)
    return incident, page


def test_the_bots_work_waits_on_its_own_queue_behind_paging(
    alert_in, committed, service, bob, monkeypatch, django_capture_on_commit_callbacks
):
    from muster.celery import app

    route = app.amqp.router.route
    assert route({}, "warroom.follow_entry")["queue"].name == "bot"
    for name in ("oncall.deliver_page", "oncall.follow_entry", "oncall.start_escalation"):
        assert route({}, name)["queue"].name == "paging"
    assert route({}, "muster.tick")["queue"].name == "paging"
    assert route({}, "alerts.process_ingest_requests")["queue"].name == "celery"
    # Every worker takes from all three, paging's first (kombu's "priority" order on Redis).
    assert [q.name for q in app.conf.task_queues] == ["paging", "celery", "bot"]
    assert app.conf.broker_transport_options["queue_order_strategy"] == "priority"

    incident, page = _bob_paged(alert_in, committed, service, bob)
    monkeypatch.undo()  # from here the bot's tasks are sent to the broker

    def deliver_in_a_task() -> None:  # as a worker does: the commit inside the task
        with django_capture_on_commit_callbacks(execute=True):
            delivery.deliver(page.pk)

    with sent_tasks() as sent:
        app.task(name="tests.deliver_in_a_task")(deliver_in_a_task).apply()

    # The page's delivery did not wait for the bot: its line is a task for later.
    [entry] = incident.timeline.filter(pk__in=followed(sent))
    assert entry.kind == EntryKind.PAGE
    follow_entry_later(entry.pk)
    assert bot_posts(incident.room)[-1].data["kind"] == EntryKind.PAGE


def test_a_page_entry_written_outside_a_worker_is_told_at_once(
    alert_in, committed, service, bob, monkeypatch
):
    incident, page = _bob_paged(alert_in, committed, service, bob)
    monkeypatch.undo()  # a task for the bot would be sent to the broker

    # A request (an ack cancelling pages, a page by hand) does not publish to the broker.
    with sent_tasks() as sent:
        assert committed(delivery.deliver, page.pk) == "sent"

    assert followed(sent) == []
    assert bot_posts(incident.room)[-1].data["kind"] == EntryKind.PAGE


@pytest.mark.django_db(transaction=True)
def test_an_invitation_waits_outside_the_transaction_of_the_bots_post(service, bob):
    # Two bot tasks inviting people to one room while holding their posts' locks deadlocked
    # (bench/paging.py). So an invitation runs on its own, after the post has committed: here
    # another transaction holds an uncommitted invitation of bob, and the bot's line about bob's
    # page must be committed and visible while the bot's own invitation waits for it.
    import threading

    from django.db import connection, connections

    from warroom.receivers import tell

    incident = open_incident(service, title="Checkout down", source=Source.API)
    room = Room.objects.get(incident=incident)  # opened with the incident (committed)
    # Written as record() does, but not announced: the thread below is the bot following it.
    entry = TimelineEntry.objects.create(
        incident=incident,
        at=incident.triggered_at,
        kind=EntryKind.PAGE,
        actor_name="Muster",
        source=Source.SYSTEM,
        message="Paged bob by SMS",
        data={"page": 0, "status": "sent", "person": bob.pk},
    )
    blocker = connections.create_connection("default")
    blocker.set_autocommit(False)
    table = connection.ops.quote_name(Participant._meta.db_table)
    with blocker.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (room_id, user_id, reason, at) VALUES (%s, %s, 'joined', now())",  # noqa: S608
            [room.pk, bob.pk],
        )
    done = threading.Event()

    def follow() -> None:
        try:
            tell(entry)
        finally:
            connections.close_all()
            done.set()

    worker = threading.Thread(target=follow)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not Message.objects.filter(room=room, data__entry=entry.pk).exists():
            assert time.monotonic() < deadline, "the bot's line waited for the invitation"
            time.sleep(0.05)
        assert not done.is_set()  # its invitation is still waiting for the other transaction
    finally:
        blocker.commit()
        blocker.close()
        worker.join(10)

    assert done.is_set()
    assert list(Participant.objects.filter(room=room).values_list("user_id", "reason")) == [
        (bob.pk, "joined")
    ]

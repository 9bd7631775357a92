"""The outbox against Slack's double: posts arrive in order, batched, once, at Slack's pace."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role, User
from incidents import services
from incidents.models import ChatChannelMode, EntryKind, Source
from oncall import escalation
from oncall.models import Page
from tests.fakes.slack import Failure
from tests.helpers.celery_tasks import named, sent_tasks
from tests.oncall.builders import make_policy, reachable
from tests.warroom.chat.conftest import SHARED
from warroom.chat import outbox
from warroom.models import ChatPost, ChatPostState, Message, MessageKind
from warroom.services import post


def blocks_of(call) -> list[dict]:
    blocks = call.params.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else blocks


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", "pw", role=Role.RESPONDER)


def test_the_opening_post_reaches_the_shared_channel_with_its_buttons(
    fake_slack, shared_service, opened
):
    incident = opened(shared_service)
    [queued] = ChatPost.objects.filter(incident=incident)
    assert (queued.kind, queued.target, queued.state) == ("opening", SHARED, "queued")

    outbox.deliver("slack", SHARED)

    [call] = fake_slack.calls_of("chat.postMessage")
    assert call.params["channel"] == SHARED
    blocks = blocks_of(call)
    assert "Disk full on db-1" in blocks[0]["text"]["text"]
    actions = blocks[-1]
    assert actions["type"] == "actions"
    assert [b["action_id"] for b in actions["elements"]] == [
        "muster_ack",
        "muster_resolve",
        "muster_escalate",
        "muster_open",
    ]
    assert {b.get("value") for b in actions["elements"][:3]} == {str(incident.number)}
    assert actions["elements"][3]["url"].endswith(f"/incidents/{incident.number}/")
    queued.refresh_from_db()
    assert queued.state == ChatPostState.SENT and queued.remote_id


def test_later_lines_follow_in_order_in_one_batch_and_are_never_sent_twice(
    fake_slack, shared_service, opened, bob, django_capture_on_commit_callbacks
):
    incident = opened(shared_service)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_incident(incident, by=bob, source=Source.WEB)

    outbox.deliver("slack", SHARED)
    outbox.deliver("slack", SHARED)  # nothing left: nothing sent again

    [call] = fake_slack.calls_of("chat.postMessage")  # one message: Slack takes one a second
    texts = [b["text"]["text"] for b in blocks_of(call) if b["type"] == "section"]
    order = [
        next(i for i, t in enumerate(texts) if needle in t)
        for needle in ("Disk full on db-1", "Acknowledged", "Resolved", "is resolved after")
    ]
    assert order == sorted(order)
    assert set(ChatPost.objects.values_list("state", flat=True)) == {ChatPostState.SENT}


def test_a_429_waits_for_retry_after_then_delivers_once(fake_slack, shared_service, opened):
    opened(shared_service)
    fake_slack.fail_next("chat.postMessage", Failure(429, "ratelimited", retry_after=7))

    before = timezone.now()
    outbox.deliver("slack", SHARED)

    queued = ChatPost.objects.get()
    assert queued.state == ChatPostState.QUEUED
    assert queued.not_before >= before + timedelta(seconds=7)
    assert queued.attempts == 0  # Slack's pace is not a failure
    outbox.deliver("slack", SHARED)  # too early: nothing is sent
    assert len(fake_slack.calls_of("chat.postMessage")) == 1

    ChatPost.objects.update(not_before=timezone.now() - timedelta(seconds=1))
    outbox.deliver("slack", SHARED)
    queued.refresh_from_db()
    assert queued.state == ChatPostState.SENT
    assert len(fake_slack.calls_of("chat.postMessage")) == 2


def test_slack_down_never_blocks_the_incident_and_the_post_waits(
    fake_slack, shared_service, opened, bob, django_capture_on_commit_callbacks
):
    fake_slack.stop()
    incident = opened(shared_service)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert Message.objects.filter(room__incident=incident, kind=MessageKind.BOT).count() >= 2

    outbox.deliver("slack", SHARED)

    states = set(ChatPost.objects.values_list("state", "attempts"))
    assert states == {(ChatPostState.QUEUED, 1)}  # refused before sending: safe to send again
    assert ChatPost.objects.filter(not_before__gt=timezone.now()).count() == 2


def test_slack_down_never_holds_up_paging(fake_slack, shared_service, opened, bob):
    """The worker's escalation pages the on-call person while Slack is down and the opening
    post waits in the outbox: nothing in paging waits for a chat platform."""
    make_policy("checkout primary", {"users": [bob]}, service=shared_service)
    reachable(bob)
    fake_slack.stop()
    incident = opened(shared_service)
    opened_entry = incident.timeline.get(kind=EntryKind.OPENED)

    outcome = escalation.follow(opened_entry.pk)  # what the worker's task runs

    assert outcome is not None and outcome.paged == ("bob",)
    assert Page.objects.filter(incident=incident, person=bob).exists()
    outbox.deliver("slack", SHARED)
    assert set(ChatPost.objects.values_list("state", flat=True)) == {ChatPostState.QUEUED}


def test_a_refused_post_fails_with_slacks_reason_and_the_next_goes_on(
    fake_slack, shared_service, opened, bob, django_capture_on_commit_callbacks
):
    incident = opened(shared_service)
    fake_slack.fail_next("chat.postMessage", Failure(200, "channel_not_found", retry_after=None))
    outbox.deliver("slack", SHARED)
    failed = ChatPost.objects.get()
    assert (failed.state, failed.error) == (ChatPostState.FAILED, "channel_not_found")

    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    outbox.deliver("slack", SHARED)
    assert ChatPost.objects.filter(state=ChatPostState.SENT).count() == 1


def test_a_post_with_no_answer_becomes_unknown_and_is_not_sent_again(
    fake_slack, shared_service, opened, settings
):
    opened(shared_service)
    ChatPost.objects.update(
        state=ChatPostState.SENDING, sending_at=timezone.now() - timedelta(minutes=5)
    )
    swept = outbox.sweep()
    assert swept["unknown"] == 1
    outbox.deliver("slack", SHARED)
    assert ChatPost.objects.get().state == ChatPostState.UNKNOWN
    assert fake_slack.calls_of("chat.postMessage") == []


def test_a_person_in_muster_is_told_in_slack_and_what_came_from_slack_is_not_told_back(
    fake_slack, shared_service, opened, bob
):
    incident = opened(shared_service)
    room = incident.room
    post(room, "Looking at db-1 now", author=bob)
    post(room, "from Slack", author=bob, data={"via": "slack"})
    chats = ChatPost.objects.filter(kind="chat")
    assert [(c.body, c.data["author"]) for c in chats] == [("Looking at db-1 now", "bob")]

    outbox.deliver("slack", SHARED)
    texts = [
        b["text"]["text"]
        for b in blocks_of(fake_slack.calls_of("chat.postMessage")[0])
        if b["type"] == "section"
    ]
    assert "*bob* in Muster: Looking at db-1 now" in texts


def test_off_and_unconfigured_queue_nothing(fake_slack, shared_service, opened, settings):
    shared_service.slack_channel_mode = ChatChannelMode.OFF
    shared_service.save()
    opened(shared_service)
    settings.SLACK_BOT_TOKEN = ""
    shared_service.slack_channel_mode = ChatChannelMode.SHARED
    shared_service.save()
    opened(shared_service, title="Another")
    assert ChatPost.objects.count() == 0


def test_the_sweep_delivers_what_no_worker_was_told_about(fake_slack, shared_service, opened):
    opened(shared_service)
    ChatPost.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    with sent_tasks() as sent:
        swept = outbox.sweep()
    assert swept["kicked"] == 1
    assert [t.args for t in named(sent, outbox.DELIVER_TASK)] == [("slack", SHARED)]

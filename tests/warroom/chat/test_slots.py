"""A worker's chat threads are bounded (core.slots): a chat task that finds them taken calls no
platform, asks for itself again a moment later, and leaves its thread to pages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import Role, User
from core import slots
from incidents import services
from incidents.models import Service, Source
from tests.helpers.celery_tasks import named, sent_tasks
from tests.helpers.slots import all_slots_taken, asked_again_in
from tests.warroom.chat.conftest import SHARED
from warroom.chat import channels, outbox
from warroom.models import ChatChannel, ChatChannelState, ChatPost, ChatPostState


@pytest.fixture
def per_incident(db) -> Service:
    return Service.objects.create(name="checkout", slack_channel=SHARED)


@pytest.fixture
def chat_taken(settings):
    """Slack's slots (two here) held by other threads, their calls hanging."""
    settings.CHAT_THREADS = 2
    with all_slots_taken("CHAT_THREADS", 2, "slack"):
        yield


def test_a_delivery_without_a_slot_calls_nobody_and_asks_again(
    fake_slack, shared_service, opened, chat_taken, monkeypatch
):
    # Times far apart, so that a slow machine does not outrun the dedupe's mark below.
    monkeypatch.setattr(slots, "_ONE_ASK_SECONDS", 5)
    monkeypatch.setattr(slots, "RETRY_SECONDS", 10)
    opened(shared_service)
    before = datetime.now().astimezone()
    with sent_tasks() as sent:
        outbox.deliver("slack", SHARED)

    assert fake_slack.calls_of("chat.postMessage") == []
    assert ChatPost.objects.get().state == ChatPostState.QUEUED
    [again] = named(sent, outbox.DELIVER_TASK)
    assert again.args == ("slack", SHARED)
    assert 0 < asked_again_in(again, before) <= slots.RETRY_SECONDS + 1

    # The sweep (every 5 s) asks for the waiting channel again; the task it sends finds no slot
    # either, and the first task's retry on its way: no second chain of retries.
    with sent_tasks() as sent:
        assert outbox.sweep(timezone.now() + timedelta(seconds=5))["kicked"] == 1
        outbox.deliver("slack", SHARED)
    [swept] = named(sent, outbox.DELIVER_TASK)
    assert swept.eta is None


def test_the_delivery_goes_out_once_a_slot_is_free(fake_slack, shared_service, opened, settings):
    settings.CHAT_THREADS = 1
    opened(shared_service)
    with all_slots_taken("CHAT_THREADS", 1, "slack"):
        outbox.deliver("slack", SHARED)
    assert fake_slack.calls_of("chat.postMessage") == []
    outbox.deliver("slack", SHARED)  # the task asked for again
    assert ChatPost.objects.get().state == ChatPostState.SENT
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_making_channels_without_a_slot_calls_nobody_and_asks_again(
    fake_slack, per_incident, opened, chat_taken
):
    opened(per_incident)
    before = datetime.now().astimezone()
    with sent_tasks() as sent:
        assert channels.make_waiting("slack") == []

    assert fake_slack.calls_of("conversations.create") == []
    assert ChatChannel.objects.get().state == ChatChannelState.WAITING
    [again] = named(sent, channels.CREATE_TASK)
    assert again.args == ("slack",)
    assert 0 < asked_again_in(again, before) <= slots.RETRY_SECONDS + 1


def test_another_platforms_calls_hold_up_no_slack_post(
    fake_slack, shared_service, opened, settings
):
    settings.CHAT_THREADS = 1
    opened(shared_service)
    with all_slots_taken("CHAT_THREADS", 1, "mattermost"):
        outbox.deliver("slack", SHARED)
    assert ChatPost.objects.get().state == ChatPostState.SENT


def test_a_task_without_a_slot_and_nothing_to_do_asks_for_nothing(
    fake_slack, shared_service, opened, chat_taken
):
    with sent_tasks() as sent:
        outbox.deliver("slack", SHARED)  # nothing queued for the channel
        assert channels.make_waiting("slack") == []  # no channel waits
    assert sent == []


def test_a_delivery_hands_the_slot_over_after_its_turn(
    fake_slack, shared_service, opened, monkeypatch, django_capture_on_commit_callbacks
):
    # Against a Slack answering every call at its timeout, one channel's queue would keep the
    # platform's slot for ROUNDS calls; after TURN_SECONDS the task lets it go and asks for a
    # task RETRY_SECONDS later, the other channels' tasks asking for the slot meanwhile.
    fake_slack.limits["chat.postMessage"] = (100, 1.0, 100)  # no 429 to end the turn instead
    monkeypatch.setattr(outbox, "BATCH_MOST", 1)  # one post a call
    monkeypatch.setattr(outbox, "TURN_SECONDS", -1)  # every turn is over after one call
    incident = opened(shared_service)
    bob = User.objects.create_user("bob", "bob@example.com", "pw", role=Role.RESPONDER)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_incident(incident, by=bob, source=Source.WEB)

    before = datetime.now().astimezone()
    with sent_tasks() as sent:
        outbox.deliver("slack", SHARED)
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    [fresh] = named(sent, outbox.DELIVER_TASK)
    assert fresh.args == ("slack", SHARED)
    assert 0 < asked_again_in(fresh, before) <= slots.RETRY_SECONDS + 1

    outbox.deliver("slack", SHARED)  # the fresh task
    assert len(fake_slack.calls_of("chat.postMessage")) == 2
    assert set(ChatPost.objects.values_list("state", flat=True)) == {ChatPostState.SENT}


def test_a_task_without_a_slot_or_work_leaves_the_next_post_a_task_of_its_own(
    fake_slack, shared_service, opened, chat_taken
):
    # A kick marks a task on its way; the task, finding no slot and nothing queued (another
    # thread took the posts), must clear the mark, or the next post's kick sends nothing and it
    # waits for the sweep.
    outbox.kick("slack", SHARED)
    outbox.deliver("slack", SHARED)
    with sent_tasks() as sent:
        opened(shared_service)  # its opening post kicks the channel's delivery
    assert [t.args for t in named(sent, outbox.DELIVER_TASK)] == [("slack", SHARED)]

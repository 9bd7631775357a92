"""A worker's chat threads are bounded (core.slots): a chat task that finds them taken calls no
platform, asks for itself again a moment later, and leaves its thread to pages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core import slots
from incidents.models import Service
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
    settings.CHAT_THREADS = 2
    with all_slots_taken("CHAT_THREADS", 2):
        yield


def test_a_delivery_without_a_slot_calls_nobody_and_asks_again(
    fake_slack, shared_service, opened, chat_taken
):
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
    settings.CHAT_THREADS = 2
    opened(shared_service)
    with all_slots_taken("CHAT_THREADS", 2):
        outbox.deliver("slack", SHARED)
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

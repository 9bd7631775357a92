"""A channel per incident in Slack's double: made at Slack's pace, given the story and the room's
people, summarised and archived on resolve; the shared channel meanwhile."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from accounts.models import Role, User
from incidents import services
from incidents.models import Service, Source
from tests.fakes.slack import Failure
from tests.warroom.chat.conftest import SHARED
from warroom.chat import channels, outbox
from warroom.chat.tasks import create_channels
from warroom.models import (
    ChatChannel,
    ChatChannelState,
    ChatPost,
    ChatPostState,
    Message,
    MessageKind,
)
from warroom.services import invite
from warroom.slack import client


@pytest.fixture
def per_incident(db) -> Service:
    return Service.objects.create(name="checkout", slack_channel=SHARED)


@pytest.fixture
def bob(db, fake_slack) -> User:
    fake_slack.add_user("U0BOB", "bob@example.com")
    return User.objects.create_user("bob", "Bob@Example.com", "pw", role=Role.RESPONDER)


def deliver_all() -> None:
    for target in set(ChatPost.objects.values_list("target", flat=True)):
        outbox.deliver("slack", target)


def texts(post) -> str:
    return json.dumps(post.blocks or []) + post.text


def test_an_incident_gets_its_own_channel_with_the_story_and_its_people(
    fake_slack, per_incident, opened, bob, django_capture_on_commit_callbacks
):
    incident = opened(per_incident)
    with django_capture_on_commit_callbacks(execute=True):
        invite(incident.room, bob.pk, "paged")
    channel = ChatChannel.objects.get(incident=incident)
    assert channel.state == ChatChannelState.WAITING
    assert channel.name == f"inc-{incident.number}-disk-full-on-db-1"
    deliver_all()  # meanwhile: the shared channel has the story
    assert f"muster_incident_{incident.number}" in texts(fake_slack.posts_in(SHARED)[0])

    with django_capture_on_commit_callbacks(execute=True):
        create_channels("slack")
    channel.refresh_from_db()
    made = fake_slack.channel_named(channel.name)
    assert channel.state == ChatChannelState.READY and channel.channel_id == made.id
    note = Message.objects.filter(room=incident.room, data__kind="chat_channel").get()
    assert made.id in note.body and "is open" in note.body

    deliver_all()
    [story] = fake_slack.posts_in(made.id)
    assert "Disk full on db-1" in texts(story) and "muster_ack" in texts(story)
    assert "U0BOB" in made.members  # found by email, case-insensitively


def test_later_lines_go_to_the_channel_and_resolve_summarises_then_archives(
    fake_slack, per_incident, opened, bob, django_capture_on_commit_callbacks
):
    fake_slack.limits["chat.postMessage"] = (1, 1.0, 5)  # Slack's burst: not waited for here
    incident = opened(per_incident)
    create_channels("slack")
    deliver_all()
    channel = ChatChannel.objects.get(incident=incident)
    with django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_incident(incident, by=bob, source=Source.WEB)
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_incident(incident, by=bob, source=Source.WEB)
    deliver_all()

    posted = " ".join(texts(p) for p in fake_slack.posts_in(channel.channel_id))
    assert posted.index("Acknowledged") < posted.index("Resolved") < posted.index("postmortem")
    assert "acknowledged by *bob*" in posted
    assert fake_slack.channels[channel.channel_id].archived
    channel.refresh_from_db()
    assert channel.state == ChatChannelState.ARCHIVED
    assert not ChatPost.objects.exclude(state=ChatPostState.SENT).exists()


def test_a_service_may_keep_its_channels(
    fake_slack, per_incident, opened, bob, django_capture_on_commit_callbacks
):
    per_incident.archive_chat_channels = False
    per_incident.save()
    incident = opened(per_incident)
    create_channels("slack")
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_incident(incident, by=bob, source=Source.WEB)
    deliver_all()
    channel = ChatChannel.objects.get(incident=incident)
    assert channel.state == ChatChannelState.READY
    assert not fake_slack.channels[channel.channel_id].archived
    assert not ChatPost.objects.filter(kind="archive").exists()


def test_channels_are_made_at_slacks_pace_oldest_first(fake_slack, per_incident, opened):
    fake_slack.limits["conversations.create"] = (3, 60.0)
    incidents = [opened(per_incident, title=f"Storm {k}") for k in range(5)]
    create_channels("slack")
    states = [ChatChannel.objects.get(incident=i).state for i in incidents]
    assert states == ["ready"] * 3 + ["waiting"] * 2
    refused = ChatChannel.objects.get(incident=incidents[3])
    assert refused.not_before > timezone.now()  # Retry-After
    assert refused.attempts == 0  # Slack's pace is not a failure
    create_channels("slack")  # paused: Slack is not asked again before Retry-After
    assert len(fake_slack.calls_of("conversations.create")) == 4


def test_without_a_shared_channel_the_story_waits_in_muster_then_opens_the_channel(
    fake_slack, opened
):
    service = Service.objects.create(name="quiet")
    incident = opened(service)
    assert not ChatPost.objects.exists()
    create_channels("slack")
    channel = ChatChannel.objects.get(incident=incident)
    outbox.deliver("slack", channel.channel_id)
    [story] = fake_slack.posts_in(channel.channel_id)
    assert "Disk full on db-1" in texts(story)


def test_a_taken_name_gets_a_number(fake_slack, per_incident, opened):
    incident = opened(per_incident)
    fake_slack.add_channel(f"inc-{incident.number}-disk-full-on-db-1")
    create_channels("slack")
    channel = ChatChannel.objects.get(incident=incident)
    assert channel.state == ChatChannelState.READY
    assert channel.name == f"inc-{incident.number}-disk-full-on-db-1-2"


def test_a_refused_channel_fails_once_and_the_room_says_why(fake_slack, per_incident, opened):
    incident = opened(per_incident)
    fake_slack.fail_next("conversations.create", Failure(200, "restricted_action", None))
    create_channels("slack")
    channel = ChatChannel.objects.get(incident=incident)
    assert (channel.state, channel.error) == (ChatChannelState.FAILED, "restricted_action")
    note = Message.objects.get(room=incident.room, data__kind="chat_channel")
    assert "restricted_action" in note.body and note.kind == MessageKind.BOT


def test_an_incident_resolved_before_its_turn_gets_no_channel(
    fake_slack, per_incident, opened, bob, django_capture_on_commit_callbacks
):
    incident = opened(per_incident)
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_incident(incident, by=bob, source=Source.WEB)
    create_channels("slack")
    assert ChatChannel.objects.get(incident=incident).state == ChatChannelState.SKIPPED
    assert fake_slack.calls_of("conversations.create") == []


def test_a_post_that_timed_out_after_sending_is_unknown_and_never_sent_again(
    fake_slack, per_incident, opened, monkeypatch
):
    monkeypatch.setattr(client, "TIMEOUT_SECONDS", 0.5)
    opened(per_incident)
    fake_slack.hang_next("chat.postMessage", 2.0, processed=True)
    outbox.deliver("slack", SHARED)
    post = ChatPost.objects.get()
    assert post.state == ChatPostState.UNKNOWN
    outbox.deliver("slack", SHARED)
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_a_post_refused_before_sending_is_sent_again_once(
    fake_slack, per_incident, opened, monkeypatch
):
    opened(per_incident)
    fake_slack.stop()
    outbox.deliver("slack", SHARED)
    assert ChatPost.objects.get().state == ChatPostState.QUEUED
    fake_slack.start()
    ChatPost.objects.update(not_before=None)
    outbox.deliver("slack", SHARED)
    assert ChatPost.objects.get().state == ChatPostState.SENT
    assert len(fake_slack.posts_in(SHARED)) == 1


def test_a_channel_made_by_a_worker_that_died_is_not_lost(fake_slack, per_incident, opened):
    incident = opened(per_incident)
    # A try whose worker died holds its lease until it ends; then the channel is tried again.
    ChatChannel.objects.update(not_before=timezone.now() - channels.LEASE)
    create_channels("slack")
    assert ChatChannel.objects.get(incident=incident).state == ChatChannelState.READY

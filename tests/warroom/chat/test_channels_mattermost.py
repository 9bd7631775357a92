"""A channel per incident in Mattermost's double: made in MATTERMOST_TEAM with the outgoing
webhook that mirrors it, the story with buttons Muster signed, archived with its webhook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accounts.models import Role, User
from incidents import services
from incidents.models import ChatChannelMode, Service, Source
from tests.fakes.mattermost import FakeMattermost
from warroom.chat import outbox
from warroom.chat.mirror import CHANNEL_NOTE
from warroom.chat.tasks import create_channels
from warroom.mattermost import buttons
from warroom.models import ChatChannel, ChatChannelState, ChatPost, ChatPostState, Message
from warroom.services import invite


@pytest.fixture
def fake_mm(db, settings) -> Iterator[FakeMattermost]:
    with FakeMattermost() as fake:
        fake.add_team("ops")
        settings.MATTERMOST_URL = fake.url
        settings.MATTERMOST_BOT_TOKEN = fake.bot_token
        settings.MATTERMOST_TEAM = "ops"
        settings.SLACK_BOT_TOKEN = ""
        settings.PUBLIC_URL = "https://muster.example.com"
        yield fake


@pytest.fixture
def service(db) -> Service:
    return Service.objects.create(name="checkout", slack_channel_mode=ChatChannelMode.OFF)


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", "pw", role=Role.RESPONDER)


def made_channel(incident) -> ChatChannel:
    create_channels("mattermost")
    channel = ChatChannel.objects.get(incident=incident, platform="mattermost")
    assert channel.state == ChatChannelState.READY
    return channel


def test_the_channel_gets_a_mirroring_webhook_and_the_story_with_signed_buttons(
    fake_mm, service, opened
):
    incident = opened(service)
    channel = made_channel(incident)
    made = fake_mm.channels[channel.channel_id]
    assert made.name == f"inc-{incident.number}-disk-full-on-db-1"
    [hook] = fake_mm.hooks.values()
    assert hook.channel_id == channel.channel_id
    assert hook.callback_urls == ["https://muster.example.com/mattermost/events/"]
    assert hook.token == channel.hook_token and hook.id == channel.hook_id

    outbox.deliver("mattermost", channel.channel_id)
    [story] = fake_mm.posts_in(channel.channel_id)
    assert r"Disk full on db\-1" in story.message
    [attachment] = story.props["attachments"]
    contexts = [a["integration"]["context"] for a in attachment["actions"]]
    assert [buttons.command_for(c, channel.channel_id) for c in contexts] == [
        f"ack {incident.number}",
        f"resolve {incident.number}",
        f"escalate {incident.number}",
    ]


def test_a_channel_mattermost_gives_no_webhook_is_made_and_the_room_says_it_is_not_mirrored(
    fake_mm, service, opened
):
    fake_mm.outgoing_webhooks = False  # or the bot may not manage them, or the channel is private
    incident = opened(service)
    channel = made_channel(incident)
    assert (channel.hook_id, channel.hook_token) == ("", "")
    assert fake_mm.hooks == {}
    [note] = Message.objects.filter(room__incident=incident, data__kind=CHANNEL_NOTE)
    assert f"Mattermost channel [{channel.name}]" in note.body
    assert "is not mirrored here" in note.body and "private channel is never mirrored" in note.body
    outbox.deliver("mattermost", channel.channel_id)  # the story still reaches the channel
    assert len(fake_mm.posts_in(channel.channel_id)) == 1


def test_resolve_posts_the_summary_then_archives_channel_and_webhook(
    fake_mm, service, opened, bob, django_capture_on_commit_callbacks
):
    incident = opened(service)
    channel = made_channel(incident)
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_incident(incident, by=bob, source=Source.WEB)
    outbox.deliver("mattermost", channel.channel_id)

    messages = " ".join(p.message for p in fake_mm.posts_in(channel.channel_id))
    assert messages.index("Resolved") < messages.index("is resolved after")
    assert f"/incidents/{incident.number}/postmortem/" in messages
    assert fake_mm.channels[channel.channel_id].delete_at
    assert fake_mm.hooks == {}
    channel.refresh_from_db()
    assert (channel.state, channel.hook_token) == (ChatChannelState.ARCHIVED, "")


def test_people_in_the_room_are_invited_by_email(fake_mm, service, opened, bob):
    on_mattermost = fake_mm.add_user("bob", "BOB@example.com")
    incident = opened(service)
    invite(incident.room, bob.pk, "paged")
    channel = made_channel(incident)
    outbox.deliver("mattermost", channel.channel_id)
    assert on_mattermost.id in fake_mm.channels[channel.channel_id].members


def test_a_429_waits_and_mentions_are_defused(fake_mm, service, opened, bob):
    incident = opened(service, title="@channel wake up")
    channel = made_channel(incident)
    fake_mm.rate_limit_next(1, retry_after=3)
    outbox.deliver("mattermost", channel.channel_id)
    post = ChatPost.objects.get(target=channel.channel_id, kind="opening")
    assert post.state == ChatPostState.QUEUED and post.not_before is not None
    ChatPost.objects.update(not_before=None)
    outbox.deliver("mattermost", channel.channel_id)
    [story] = fake_mm.posts_in(channel.channel_id)
    assert "@channel" not in story.message and "@\u200bchannel" in story.message


def test_without_a_team_nothing_is_made_and_shared_mode_still_posts(fake_mm, settings, opened):
    settings.MATTERMOST_TEAM = ""
    shared = fake_mm.add_channel(next(iter(fake_mm.teams.values())), "town-square")
    service = Service.objects.create(
        name="shared",
        slack_channel_mode=ChatChannelMode.OFF,
        mattermost_channel_mode=ChatChannelMode.SHARED,
        mattermost_channel=shared.id,
    )
    opened(service)
    assert not ChatChannel.objects.exists()
    outbox.deliver("mattermost", shared.id)
    assert r"Disk full on db\-1" in fake_mm.posts_in(shared.id)[0].message

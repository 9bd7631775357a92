"""Mattermost incident channels: what people write there (the outgoing webhook's posts to
/mattermost/events/), and `/muster` without a number typed there. The real client asks the API
v4 double who wrote it."""

from __future__ import annotations

import json

import pytest

from incidents.models import EntryKind, Source, Status
from tests.fakes.mattermost import new_id
from tests.helpers.mattermost import EVENTS, outgoing_webhook, post_event, slash_command
from warroom.mattermost.channel_messages import addressed
from warroom.models import ChatChannel, ChatChannelState, ChatPost, Message, MessageKind


@pytest.fixture
def incident(open_incident):
    return open_incident()


def incident_channel(incident, *, state=ChatChannelState.READY) -> ChatChannel:
    channel, _ = ChatChannel.objects.update_or_create(
        platform="mattermost",
        incident=incident,
        defaults={
            "state": state,
            "name": f"inc-{incident.number}-disk-full",
            "channel_id": new_id(),
            "hook_id": new_id(),
            "hook_token": new_id(),
        },
    )
    return channel


@pytest.fixture
def channel(mattermost, incident):
    return incident_channel(incident)


def chat_messages(incident):
    """What was copied from the channel: by a person, or by the bot in someone's name."""
    return list(
        Message.objects.filter(room__incident=incident, data__via="mattermost").order_by("id")
    )


def chat_entries(incident):
    return list(incident.timeline.filter(kind=EntryKind.CHAT_MESSAGE))


def comment(response) -> str:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["response_type"] == "comment"
    return body["text"]


def unchanged(incident) -> None:
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED


# --- conversation -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [False, True])
def test_a_message_is_copied_to_the_room_and_timeline_by_its_author(
    client, channel, mm_bob, incident, bob, form
):
    payload = outgoing_webhook(channel, mm_bob, "restarting the replica now")
    response = post_event(client, payload, form=form)
    assert response.status_code == 200
    assert response.json() == {}  # nothing said back in the channel
    [message] = chat_messages(incident)
    assert (message.author, message.body) == (bob, "restarting the replica now")
    assert message.data == {
        "via": "mattermost",
        "mattermost_user": mm_bob.id,
        "post_id": payload["post_id"],
    }
    [entry] = chat_entries(incident)
    assert (entry.actor, entry.source) == (bob, Source.MATTERMOST)
    assert entry.message == "restarting the replica now"
    # Not told back to Mattermost, where it came from.
    assert not ChatPost.objects.filter(platform="mattermost", message=message).exists()


def test_an_unmapped_writer_is_copied_by_their_mattermost_name(
    client, channel, mattermost, incident
):
    carol = mattermost.add_user("carol", "carol@elsewhere.example")
    assert post_event(client, outgoing_webhook(channel, carol, "is it the disk?")).json() == {}
    [message] = chat_messages(incident)
    assert (message.author, message.kind) == (None, MessageKind.BOT)
    assert message.body == r"**carol \(Mattermost, not a Muster person\)**: is it the disk?"
    [entry] = chat_entries(incident)
    assert (entry.actor, entry.actor_name) == (None, "carol (Mattermost, not a Muster person)")


def test_mattermost_down_still_copies_the_message_by_name(client, channel, mattermost, incident):
    carol = mattermost.add_user("carol", "carol@example.com")
    mattermost.stop()
    assert post_event(client, outgoing_webhook(channel, carol, "anyone?")).status_code == 200
    [message] = chat_messages(incident)
    assert message.body == r"**carol \(Mattermost, not a Muster person\)**: anyone?"


def test_a_post_sent_again_is_copied_once(client, channel, mm_bob, incident):
    payload = outgoing_webhook(channel, mm_bob, "looking")
    assert post_event(client, payload).status_code == 200
    assert post_event(client, payload).status_code == 200
    assert post_event(client, payload, form=True).status_code == 200
    assert len(chat_messages(incident)) == 1
    assert len(chat_entries(incident)) == 1


def test_muster_s_own_posts_are_ignored(client, channel, mattermost, incident):
    response = post_event(client, outgoing_webhook(channel, mattermost.bot, "ack incident 1"))
    assert response.json() == {}
    assert chat_messages(incident) == [] and chat_entries(incident) == []
    unchanged(incident)


def test_an_empty_message_is_not_copied(client, channel, mm_bob, incident):
    assert post_event(client, outgoing_webhook(channel, mm_bob, "  ")).json() == {}
    assert chat_messages(incident) == []


# --- commands -----------------------------------------------------------------------------------


def test_ack_incident_n_exactly_acknowledges_via_mattermost(client, channel, mm_bob, incident):
    response = post_event(
        client, outgoing_webhook(channel, mm_bob, f"ack incident {incident.number}")
    )
    assert "Acknowledged" in comment(response)
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    entry = incident.timeline.get(kind=EntryKind.ACKNOWLEDGED)
    assert (entry.actor.username, entry.source) == ("bob", Source.MATTERMOST)
    assert entry.message == "Acknowledged by bob via Mattermost"
    assert chat_entries(incident) == []  # a command, not conversation


@pytest.mark.parametrize("text", ["@muster ack", "@Muster: ack", "/muster ack"])
def test_an_addressed_command_without_a_number_acts_on_the_channels_incident(
    client, channel, mm_bob, incident, text
):
    assert "Acknowledged" in comment(post_event(client, outgoing_webhook(channel, mm_bob, text)))
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED


def test_the_bots_own_username_addresses_it_too(client, channel, mattermost, mm_bob, incident):
    mattermost.bot.username = "pagerbot"
    response = post_event(client, outgoing_webhook(channel, mm_bob, "@pagerbot resolve"))
    assert "Resolved" in comment(response)
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED


def test_a_command_sent_again_acts_once(client, channel, mm_bob, incident):
    payload = outgoing_webhook(channel, mm_bob, "@muster ack")
    assert "Acknowledged" in comment(post_event(client, payload))
    assert post_event(client, payload).json() == {}
    assert incident.timeline.filter(kind=EntryKind.ACKNOWLEDGED).count() == 1


def privately(mattermost, response, user) -> str:
    """The answer only `user` sees: nothing in the thread, one direct message from the bot."""
    assert response.status_code == 200, response.content
    assert response.json() == {}
    [told] = mattermost.direct_messages_to(user.id)
    assert told.user_id == mattermost.bot.id
    return told.message


def test_an_unmapped_users_command_is_refused_privately_with_the_reason(
    client, channel, mattermost, incident
):
    carol = mattermost.add_user("carol", "carol@elsewhere.example")
    response = post_event(client, outgoing_webhook(channel, carol, "@muster ack"))
    text = privately(mattermost, response, carol)
    assert "No Muster account has the email address" in text and "Nothing was done." in text
    assert f"~{channel.name}" in text
    unchanged(incident)
    assert chat_messages(incident) == []
    assert mattermost.posts_in(channel.channel_id) == []  # nothing in the channel


def test_an_observers_command_is_refused_privately(client, channel, mattermost, charlie, incident):
    mm_charlie = mattermost.add_user("charlie", "charlie@example.com")
    payload = outgoing_webhook(channel, mm_charlie, f"ack incident {incident.number}")
    text = privately(mattermost, post_event(client, payload), mm_charlie)
    assert "This needs the responder role; charlie is observer." in text
    unchanged(incident)


def test_a_refusal_mattermost_takes_no_direct_message_for_is_said_in_the_thread(
    client, channel, mattermost, charlie, incident
):
    """Never no answer: without a direct channel (here the bot cannot say who it is, so it
    cannot make one), the refusal is the thread reply after all."""
    mm_charlie = mattermost.add_user("charlie", "charlie@example.com")
    payload = outgoing_webhook(channel, mm_charlie, f"ack incident {incident.number}")
    mattermost.refuse_direct_channels = True
    text = comment(post_event(client, payload))
    assert "This needs the responder role; charlie is observer." in text
    assert mattermost.direct_messages_to(mm_charlie.id) == []
    unchanged(incident)


def test_mattermost_down_refuses_a_command_and_a_retry_acts(
    client, channel, mattermost, mm_bob, incident
):
    payload = outgoing_webhook(channel, mm_bob, "@muster ack")
    mattermost.rate_limit_next(count=2)
    assert "could not check who you are" in comment(post_event(client, payload))
    unchanged(incident)
    assert "Acknowledged" in comment(post_event(client, payload))


def test_a_mistake_gets_the_closest_command_privately(
    client, channel, mattermost, mm_bob, incident
):
    response = post_event(client, outgoing_webhook(channel, mm_bob, "@muster acknowlege"))
    assert 'Did you mean "ack"?' in privately(mattermost, response, mm_bob)
    unchanged(incident)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("ack incident 12", "ack incident 12"),
        ("/muster ack", "ack"),
        ("@muster  sev 2", "sev 2"),
        ("/tmp is full again", None),
        ("please ack incident 12", None),
        ("ack incident 12 now", None),
        ("@musterbot ack", None),
    ],
)
def test_what_is_addressed_to_muster_in_a_channel(text, command):
    assert addressed(text) == command


# --- who may post -------------------------------------------------------------------------------


def _nothing_happened(incident) -> None:
    unchanged(incident)
    assert chat_messages(incident) == [] and chat_entries(incident) == []


@pytest.mark.parametrize("text", ["ack incident {n}", "hello"])
def test_a_wrong_token_is_401_and_changes_nothing(
    client, channel, mattermost, mm_bob, incident, text
):
    payload = outgoing_webhook(channel, mm_bob, text.format(n=incident.number), token="wrong")
    response = post_event(client, payload)
    assert response.status_code == 401
    assert "error" in response.json()
    _nothing_happened(incident)
    assert mattermost.requests == []


def test_another_channels_token_is_401(client, channel, mm_bob, open_incident, incident):
    other = incident_channel(open_incident("Queue backed up"))
    payload = outgoing_webhook(channel, mm_bob, "@muster ack", token=other.hook_token)
    assert post_event(client, payload).status_code == 401
    _nothing_happened(incident)


def test_an_unknown_or_archived_channel_is_401(client, channel, mm_bob, incident):
    payload = {**outgoing_webhook(channel, mm_bob, "@muster ack"), "channel_id": new_id()}
    assert post_event(client, payload).status_code == 401
    channel.state = ChatChannelState.ARCHIVED
    channel.save()
    assert post_event(client, outgoing_webhook(channel, mm_bob, "@muster ack")).status_code == 401
    _nothing_happened(incident)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"token=x", "text/plain"),
    ],
)
def test_a_body_that_is_not_a_webhooks_is_400(client, channel, body, content_type):
    response = client.post(EVENTS, body, content_type=content_type)
    assert response.status_code == 400
    assert "error" in response.json()


def test_a_webhook_payload_without_its_post_id_is_400(client, channel, mm_bob, incident):
    payload = outgoing_webhook(channel, mm_bob, "@muster ack")
    del payload["post_id"]
    assert post_event(client, payload).status_code == 400
    _nothing_happened(incident)


def test_not_configured_is_404(client, settings, channel, mm_bob):
    settings.MATTERMOST_BOT_TOKEN = ""
    assert post_event(client, outgoing_webhook(channel, mm_bob, "hi")).status_code == 404
    assert client.get(EVENTS).status_code == 405


# --- /muster in an incident channel -------------------------------------------------------------


def _slash(client, user_id: str, text: str, channel_id: str):
    return slash_command(client, user_id, text, channel_id=channel_id)


def test_slash_ack_without_a_number_in_an_incident_channel_acks_it(
    client, channel, mm_bob, incident
):
    body = _slash(client, mm_bob.id, "ack", channel.channel_id).json()
    assert body["response_type"] == "in_channel" and "Acknowledged" in body["text"]
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED
    assert incident.timeline.get(kind=EntryKind.ACKNOWLEDGED).source == Source.MATTERMOST


def test_slash_ack_without_a_number_elsewhere_acts_on_nothing(client, channel, mm_bob, incident):
    body = _slash(client, mm_bob.id, "ack", new_id()).json()
    assert body["response_type"] == "ephemeral"
    unchanged(incident)


def test_slash_in_a_channel_not_ready_yet_needs_the_number(client, mattermost, mm_bob, incident):
    waiting = incident_channel(incident, state=ChatChannelState.WAITING)
    assert _slash(client, mm_bob.id, "ack", waiting.channel_id).json()["response_type"] == (
        "ephemeral"
    )
    unchanged(incident)


def test_the_json_payload_mattermost_is_asked_for_is_read(client, channel, mm_bob, incident):
    payload = outgoing_webhook(channel, mm_bob, "hello")
    response = client.post(EVENTS, json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    assert len(chat_messages(incident)) == 1

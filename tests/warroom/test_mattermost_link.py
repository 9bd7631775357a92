"""`/muster link` in Mattermost: an account whose email differs from the Muster one, linked once
by the signed-in person (the link wins over the email rule); asked in an incident channel, the
one-time link goes only to its author, in a direct message."""

from __future__ import annotations

import re

import pytest

from accounts.models import AuditEntry
from incidents.models import Status
from tests.fakes.mattermost import new_id
from tests.helpers.mattermost import PUBLIC, outgoing_webhook, post_event, slash_command
from warroom.models import ChatAccount, ChatChannel, ChatChannelState

LINK = re.compile(
    r"\[link my Mattermost account\]\(https://muster\.example\.com(/profile/chat/link/[^)]+/)\)"
)


@pytest.fixture
def mm_elsewhere(mattermost, bob):
    """Bob's Mattermost account has another address than his Muster account."""
    return mattermost.add_user("bobby", "bob@corp.example")


def slash(client, user_id: str, text: str) -> dict:
    response = slash_command(client, user_id, text)
    assert response.status_code == 200, response.content
    return response.json()


def link_path(client, user) -> str:
    answer = slash(client, user.id, "link")
    assert answer["response_type"] == "ephemeral"
    found = LINK.search(answer["text"])
    assert found, answer["text"]
    return found.group(1)


def test_link_then_act_as_the_linked_person(client, bob, mm_elsewhere, open_incident):
    incident = open_incident()
    refused = slash(client, mm_elsewhere.id, f"ack {incident.number}")
    assert "No Muster account has the email address bob@corp.example" in refused["text"]

    path = link_path(client, mm_elsewhere)
    client.force_login(bob)
    page = client.get(path).content.decode()
    assert "Link this Mattermost account to me" in page and mm_elsewhere.id in page
    assert "workspace" not in page  # Mattermost's users are the server's
    assert not ChatAccount.objects.exists()  # looking changes nothing

    assert client.post(path).status_code == 302
    account = ChatAccount.objects.get()
    assert (account.platform, account.team_id, account.user_id, account.person) == (
        "mattermost",
        "",
        mm_elsewhere.id,
        bob,
    )
    assert AuditEntry.objects.filter(
        summary=f"bob linked the Mattermost user {mm_elsewhere.id}"
    ).exists()

    acked = slash(client, mm_elsewhere.id, f"ack {incident.number}")
    assert acked["response_type"] == "in_channel" and "Acknowledged" in acked["text"]
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED


def test_a_link_works_once_and_a_forged_one_not_at_all(client, bob, charlie, mm_elsewhere):
    path = link_path(client, mm_elsewhere)
    client.force_login(charlie)
    assert client.post(path.replace("/link/", "/link/x")).status_code == 400
    client.force_login(bob)
    assert client.post(path).status_code == 302
    client.force_login(charlie)
    again = client.post(path)
    assert again.status_code == 400 and "already used" in again.content.decode()
    assert ChatAccount.objects.get().person == bob


def test_my_profile_lists_the_link_and_unlinking_maps_by_email_again(
    client, bob, mm_elsewhere, open_incident
):
    client.force_login(bob)
    assert client.post(link_path(client, mm_elsewhere)).status_code == 302
    account = ChatAccount.objects.get()
    profile = client.get("/profile/").content.decode()
    assert (
        "Linked chat accounts" in profile and f"Mattermost user <code>{mm_elsewhere.id}" in profile
    )

    assert client.post(f"/profile/chat/{account.pk}/unlink/").status_code == 302
    assert not ChatAccount.objects.exists()
    incident = open_incident()
    refused = slash(client, mm_elsewhere.id, f"ack {incident.number}")
    assert "No Muster account has the email address" in refused["text"]


def incident_channel(incident) -> ChatChannel:
    return ChatChannel.objects.create(
        platform="mattermost",
        incident=incident,
        state=ChatChannelState.READY,
        name=f"inc-{incident.number}-disk-full",
        channel_id=new_id(),
        hook_id=new_id(),
        hook_token=new_id(),
    )


def test_asked_in_an_incident_channel_the_link_goes_only_to_its_author(
    client, mattermost, bob, mm_elsewhere, open_incident
):
    channel = incident_channel(open_incident())
    payload = outgoing_webhook(channel, mm_elsewhere, "@muster link")
    response = post_event(client, payload)
    assert response.status_code == 200 and response.json() == {}
    assert post_event(client, payload).json() == {}  # sent twice by Mattermost: one link
    [told] = mattermost.direct_messages_to(mm_elsewhere.id)
    path = LINK.search(told.message).group(1)
    client.force_login(bob)
    assert client.post(path).status_code == 302
    assert ChatAccount.objects.get().user_id == mm_elsewhere.id


def test_without_a_direct_message_the_channel_is_told_to_use_the_slash_command_not_the_link(
    client, mattermost, mm_elsewhere, open_incident
):
    channel = incident_channel(open_incident())
    mattermost.refuse_direct_channels = True
    response = post_event(client, outgoing_webhook(channel, mm_elsewhere, "@muster link"))
    said = response.json()
    assert said["response_type"] == "comment" and "/muster link" in said["text"]
    assert "/profile/chat/link/" not in said["text"] and PUBLIC not in said["text"]

"""`/muster link`: a Slack account whose email differs from the Muster one, linked once by the
signed-in person; the link wins over the email rule."""

from __future__ import annotations

import re

import pytest

from accounts.models import AuditEntry
from incidents.models import Status
from tests.helpers.slack import BOB_SLACK, mention_event
from warroom.models import ChatAccount


@pytest.fixture
def bob_elsewhere(fake_slack, bob):
    """Bob's Slack profile has another address than his Muster account."""
    return fake_slack.add_user(BOB_SLACK, "bob@corp.example")


def link_path(slash, fake_slack) -> str:
    _, sent, url = slash("link")
    sent.run()
    [answer] = fake_slack.answers(url)
    assert answer["response_type"] == "ephemeral"
    found = re.search(
        r"<https://muster\.example\.com(/profile/chat/link/[^|>]+/)\|", answer["text"]
    )
    assert found, answer["text"]
    return found.group(1)


def test_link_then_act_as_the_linked_person(
    client, slash, fake_slack, bob, bob_elsewhere, open_incident
):
    incident = open_incident()
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    assert (
        "No Muster account has the email address bob@corp.example"
        in fake_slack.answers(url)[0]["text"]
    )

    path = link_path(slash, fake_slack)
    client.force_login(bob)
    page = client.get(path)
    assert page.status_code == 200
    assert BOB_SLACK in page.content.decode()
    assert not ChatAccount.objects.exists()  # looking changes nothing

    assert client.post(path).status_code == 302
    account = ChatAccount.objects.get()
    assert (account.platform, account.user_id, account.person) == ("slack", BOB_SLACK, bob)

    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    incident.refresh_from_db()
    assert incident.status == Status.ACKNOWLEDGED


def test_the_first_slack_only_paths_still_link_and_unlink(
    client, slash, fake_slack, bob, bob_elsewhere
):
    old_path = link_path(slash, fake_slack).replace("/profile/chat/", "/profile/slack/")
    client.force_login(bob)
    assert "Link this Slack account to me" in client.get(old_path).content.decode()
    assert client.post(old_path).status_code == 302
    account = ChatAccount.objects.get()
    assert client.post(f"/profile/slack/{account.pk}/unlink/").status_code == 302
    assert not ChatAccount.objects.exists()


def test_a_link_works_once(client, slash, fake_slack, bob, charlie, bob_elsewhere):
    path = link_path(slash, fake_slack)
    client.force_login(bob)
    assert client.post(path).status_code == 302
    client.force_login(charlie)
    again = client.post(path)
    assert again.status_code == 400
    assert "already used" in again.content.decode()
    assert ChatAccount.objects.get().person == bob


def test_a_tampered_link_is_refused(client, slash, fake_slack, bob, bob_elsewhere):
    path = link_path(slash, fake_slack)
    client.force_login(bob)
    forged = path.replace("/link/", "/link/x")
    assert client.post(forged).status_code == 400
    assert not ChatAccount.objects.exists()


def test_signing_in_is_needed(client, slash, fake_slack, bob_elsewhere):
    path = link_path(slash, fake_slack)
    response = client.post(path)
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert not ChatAccount.objects.exists()


def test_a_mention_asking_for_a_link_is_answered_privately(event, fake_slack, bob_elsewhere):
    _, sent = event(mention_event("<@U0MUSTERBOT> link"))
    sent.run()
    [post] = fake_slack.posts
    assert (post.ephemeral, post.user) == (True, BOB_SLACK)
    assert "/profile/chat/link/" in post.text


def test_my_profile_lists_a_linked_account_and_unlinking_maps_it_by_email_again(
    client, slash, fake_slack, bob, charlie, bob_elsewhere, open_incident
):
    path = link_path(slash, fake_slack)
    client.force_login(bob)
    assert client.post(path).status_code == 302
    account = ChatAccount.objects.get()
    unlink = f"/profile/chat/{account.pk}/unlink/"
    assert unlink in client.get("/profile/").content.decode()

    client.force_login(charlie)  # not charlie's to unlink
    assert client.post(unlink).status_code == 404
    assert ChatAccount.objects.filter(pk=account.pk).exists()

    client.force_login(bob)
    assert client.post(unlink).status_code == 302
    assert not ChatAccount.objects.exists()
    assert AuditEntry.objects.filter(summary__contains=f"unlinked the Slack user {BOB_SLACK}")
    assert "Linked chat accounts" not in client.get("/profile/").content.decode()

    incident = open_incident()
    _, sent, url = slash(f"ack {incident.number}")
    sent.run()
    assert "No Muster account has the email address" in fake_slack.answers(url)[-1]["text"]
    incident.refresh_from_db()
    assert incident.status == Status.TRIGGERED

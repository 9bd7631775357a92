"""Which Muster person a Slack or Mattermost user is: by confirmed, unique account email."""

from __future__ import annotations

from accounts.chat_people import person_for_email
from accounts.models import Role, User


def test_the_email_matches_whatever_its_case(bob):
    assert person_for_email("Slack", "  BOB@Example.COM ").person == bob


def test_an_unconfirmed_address_maps_to_nobody_and_says_so(bob):
    mapping = person_for_email("Slack", "bob@example.com", confirmed=False)
    assert mapping.person is None
    assert mapping.problem == "Slack says your email address bob@example.com is not confirmed."


def test_no_address_and_an_unknown_address_map_to_nobody(bob):
    assert person_for_email("Mattermost", "").problem == (
        "Mattermost did not share your email address with Muster."
    )
    assert person_for_email("Slack", "eve@example.com").problem == (
        "No Muster account has the email address eve@example.com."
    )


def test_two_active_people_with_one_address_map_to_nobody(bob):
    User.objects.create_user("bob2", "Bob@example.com", "pw", role=Role.RESPONDER)
    mapping = person_for_email("Slack", "bob@example.com")
    assert mapping.person is None and "Several Muster accounts" in mapping.problem


def test_a_deactivated_person_is_nobody_and_does_not_count_as_a_second(bob):
    User.objects.create_user("old-bob", "bob@example.com", "pw", is_active=False)
    assert person_for_email("Slack", "bob@example.com").person == bob
    bob.is_active = False
    bob.save()
    assert person_for_email("Slack", "bob@example.com").person is None

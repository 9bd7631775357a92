"""Who reads a person's contact details through /api/v1/pages/ and /api/v1/outbox/: the owner
and admins in full; anyone else, responders and observers, masked (as the web UI shows them)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, User
from core.masking import mask_address, mask_in
from oncall.channels import registry
from oncall.channels.base import Delivery
from oncall.channels.registry import CHANNELS
from oncall.messages import for_incident
from tests.helpers.api import API
from tests.helpers.twilio import BOB_PHONE

pytestmark = pytest.mark.django_db

MASKED = "+14•••••••01"


@pytest.fixture
def as_dave(db) -> APIClient:
    """Another responder: not the owner of bob's pages."""
    dave = User.objects.create_user("dave", "dave@example.com", "pw-dave", role=Role.RESPONDER)
    client = APIClient()
    client.force_authenticate(dave)
    return client


def test_mask_address_shows_enough_to_tell_which():
    assert mask_address(BOB_PHONE) == MASKED
    assert mask_address("bob.smith@example.com") == "b•••@example.com"
    assert mask_address("12345") == "•••••"
    assert mask_address("") == ""


def test_pages_and_the_outbox_show_an_address_to_its_owner_and_admins_only(
    make_page, incident, bob, as_alice, as_bob, as_charlie, as_dave
):
    page = make_page("console")
    CHANNELS["console"].send(Delivery.of_page(page), for_incident(incident))
    registry.send_verification_code(page.contact_method, "654321")
    seen = {}
    for who, client in (
        ("alice", as_alice),
        ("bob", as_bob),
        ("charlie", as_charlie),
        ("dave", as_dave),
    ):
        [paged] = client.get(API + "pages/").json()["results"]
        assert client.get(API + f"pages/{page.pk}/").json()["address"] == paged["address"]
        outbox = client.get(API + "outbox/").json()["results"]
        seen[who] = (paged["address"], [(m["address"], m["body"]) for m in outbox])
    full = (
        BOB_PHONE,
        [
            (
                BOB_PHONE,
                "Your Muster verification code is 654321. It expires in 10 minutes.",
            ),
            (BOB_PHONE, seen["bob"][1][1][1]),
        ],
    )
    assert seen["bob"] == seen["alice"] == full
    masked = (
        MASKED,
        [
            (
                MASKED,
                "Your Muster verification code is ••••••. It expires in 10 minutes.",
            ),
            (MASKED, full[1][1][1]),
        ],
    )
    assert seen["charlie"] == seen["dave"] == masked


def test_mask_in_hides_an_address_quoted_in_an_error():
    assert mask_in("the mail server refused bob@example.com: 550", "bob@example.com") == (
        "the mail server refused b•••@example.com: 550"
    )
    assert mask_in(f"The 'To' number {BOB_PHONE[1:]} is not valid", BOB_PHONE) == (
        f"The 'To' number {MASKED} is not valid"
    )


def test_a_pages_error_does_not_give_the_address_away(make_page, bob, as_bob, as_charlie, as_dave):
    error = f"Twilio said 21211: The 'To' number {BOB_PHONE} is not a valid phone number."
    page = make_page(status="failed", error=error)
    assert as_bob.get(API + f"pages/{page.pk}/").json()["error"] == error
    for client in (as_charlie, as_dave):
        shown = client.get(API + f"pages/{page.pk}/").json()["error"]
        assert shown == error.replace(BOB_PHONE, MASKED) and BOB_PHONE not in shown

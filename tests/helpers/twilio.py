"""Phones and Twilio in the tests: the account the fake (tests/fakes/twilio.py) serves, our
number, the cast's phones, and reading the TwiML Muster answers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from django.utils import timezone

from accounts.models import User
from oncall.models import ContactKind, ContactMethod

TWILIO_SID = "AC" + "a1" * 16
TWILIO_TOKEN = "auth-token-of-the-fake"
OUR_NUMBER = "+15005550006"
BOB_PHONE = "+14155550101"
CHARLIE_PHONE = "+14155550103"


def give_phone(user: User, number: str, kind: str = ContactKind.SMS, verified: bool = True):
    return ContactMethod.objects.create(
        user=user, kind=kind, address=number, verified_at=timezone.now() if verified else None
    )


def twiml(response) -> ET.Element:
    """Return the TwiML document of a 200 answer."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(("text/xml", "application/xml"))
    root = ET.fromstring(response.content)  # noqa: S314 - our own answer, not untrusted input
    assert root.tag == "Response"
    return root


def twiml_text(response) -> str:
    """Return everything the TwiML says or texts, as one string."""
    return " ".join(" ".join(el.itertext()).strip() for el in twiml(response)).strip()

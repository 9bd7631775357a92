"""Which Muster person a chat platform's user is (Slack, Mattermost): one rule for both.

A platform user is the active Muster person whose account email equals, case-insensitively,
the email the platform reports for them, provided the platform says it is confirmed. Two active
people sharing the address map to nobody: guessing would let one act as the other. The caller
fetches the profile (Slack's `users.info`, Mattermost's `GET /api/v4/users/{id}`); this module
only decides, and says why when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User

NO_EMAIL = "{platform} did not share your email address with Muster."
UNCONFIRMED = "{platform} says your email address {email} is not confirmed."
NOBODY = "No Muster account has the email address {email}."
SHARED = "Several Muster accounts have the email address {email}; ask an admin to fix that."


@dataclass(frozen=True)
class Mapping:
    """The person a platform user is, or why there is none (`problem`, ready to show them)."""

    person: User | None
    problem: str = ""


def person_for_email(platform: str, email: str | None, *, confirmed: bool = True) -> Mapping:
    """Return the Muster person for a platform user whose profile has `email`.

    `platform` names the platform in the problem ("Slack"); `confirmed` is what the platform
    says of the address (Slack's `is_email_confirmed`; Mattermost verifies before it shows).
    """
    address = (email or "").strip()
    if not address:
        return Mapping(None, NO_EMAIL.format(platform=platform))
    if not confirmed:
        return Mapping(None, UNCONFIRMED.format(platform=platform, email=address))
    people = list(User.objects.filter(is_active=True, email__iexact=address)[:2])
    if not people:
        return Mapping(None, NOBODY.format(email=address))
    if len(people) > 1:
        return Mapping(None, SHARED.format(email=address))
    return Mapping(people[0])

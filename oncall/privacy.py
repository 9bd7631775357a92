"""Who reads a person's contact details.

A phone number is what an SMS-spoofing attacker needs (inbound SMS act by their From number),
so a page's or an outbox message's address is shown in full only to its owner and to admins;
anyone else, responders and observers alike, reads it masked (core.masking). A verification
code follows the same rule (OutboxMessage.body_for).
"""

from __future__ import annotations

from accounts.models import Role, User
from core.masking import mask_address, mask_in


def reads_contact_of(viewer: User | None, owner_id: int | None) -> bool:
    """Whether `viewer` may read the contact details of the person `owner_id`."""
    if viewer is None or not viewer.is_authenticated:
        return False
    return (owner_id is not None and viewer.pk == owner_id) or viewer.has_role(Role.ADMIN)


def address_for(viewer: User | None, owner_id: int | None, address: str) -> str:
    """Return `address` as `viewer` may read it: in full for its owner and admins, else masked."""
    return address if reads_contact_of(viewer, owner_id) else mask_address(address)


def text_for(viewer: User | None, owner_id: int | None, address: str, text: str) -> str:
    """Return `text` (a delivery error) with `address` masked in it unless `viewer` reads it."""
    return text if reads_contact_of(viewer, owner_id) else mask_in(text, address)

"""Test pages: a short message a person sends to one of their own contact methods to see how a
page reaches them. It goes through the same channel registry as real pages (so the console
outbox or Twilio gets it) but belongs to no incident and no escalation: no Page row, no
timeline entry, nothing the engine could retry or escalate.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.cache import cache

from accounts.models import User
from oncall.channels.base import Delivery, Message
from oncall.channels.registry import CHANNELS, channel_for
from oncall.models import ContactKind, ContactMethod
from oncall.people import ContactMethodError

log = logging.getLogger("muster.pages")

# One test page per contact method this often, so nobody can make Muster flood a number.
TEST_PAGE_EVERY = timedelta(seconds=30)
_KIND_LABEL: dict[str, str] = {
    ContactKind.SMS: "SMS",
    ContactKind.VOICE: "phone call",
    ContactKind.EMAIL: "email",
}


def trial_message(method: ContactMethod) -> Message:
    """Return what a test page to `method` says, for every channel."""
    who = method.user.get_username()
    how = _KIND_LABEL.get(method.kind, method.kind)
    text = f"Muster test page for {who}: this is how a page reaches you by {how}. No action needed."
    return Message(sms=text, subject="Muster test page", body=text, speech=text, purpose="test")


def send_test_page(method: ContactMethod, *, by: User) -> str:
    """Send a test page to `by`'s own verified `method` now; return the provider's id.

    Raises ContactMethodError when the method is not `by`'s, not verified, opted out or was
    tested moments ago, and the channel's DeliveryError when the provider refuses.
    """
    if method.user_id != by.pk:
        raise ContactMethodError("you can only send a test page to your own contact methods")
    if not method.is_verified:
        raise ContactMethodError(f"verify {method} before sending it a test page")
    if method.opted_out:
        raise ContactMethodError(f"{method} texted STOP; text START to it before testing")
    throttle = f"muster:test-page:{method.pk}"
    if not cache.add(throttle, 1, timeout=int(TEST_PAGE_EVERY.total_seconds())):
        raise ContactMethodError("a test page was sent moments ago; try again in 30 s")
    channel = channel_for(method.kind)
    # Like a verification code, no page: no status callback can match it.
    to = Delivery(address=method.address, kind=method.kind, person=by)
    try:
        provider_id = CHANNELS[channel].send(to, trial_message(method))
    except Exception:
        cache.delete(throttle)  # nothing went out: let them try again at once
        raise
    log.info(
        "test page to %s (%s %s) via %s: %s",
        by.get_username(),
        method.kind,
        method.address,
        channel,
        provider_id,
    )
    return provider_id

"""The buttons on the bot's opening post in Mattermost, and the command each click is.

Mattermost does not sign what a button posts to its integration URL, so each button's `context`
carries an HMAC (keyed by SECRET_KEY) over its action, incident and the channel it was posted
to: a click whose context Muster did not make, or that comes from another channel, is refused.
(Mattermost keeps a button's context on the server; its clients never see it.)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

VERBS = {"ack": "Acknowledge", "resolve": "Resolve", "escalate": "Escalate"}
_SALT = "muster.mattermost.button"


def signature(action: str, number: int, channel_id: str) -> str:
    return salted_hmac(_SALT, f"{action}:{number}:{channel_id}", algorithm="sha256").hexdigest()


def actions(number: int, channel_id: str) -> list[dict[str, Any]]:
    """The opening post's buttons for incident `number`, posted to `channel_id` (an
    attachment's `actions`)."""
    return [
        {
            "id": action,
            "name": label,
            "type": "button",
            **({"style": "primary"} if action == "ack" else {}),
            "integration": {
                "url": f"{settings.PUBLIC_URL}/mattermost/actions/",
                "context": {
                    "action": action,
                    "incident": number,
                    "sig": signature(action, number, channel_id),
                },
            },
        }
        for action, label in VERBS.items()
    ]


def command_for(context: object, channel_id: str) -> str | None:
    """Return the command a button's `context`, clicked in `channel_id`, runs; None unless
    Muster made it for that channel."""
    if not isinstance(context, dict):
        return None
    action, number, sig = context.get("action"), context.get("incident"), context.get("sig")
    if action not in VERBS or not isinstance(number, int) or isinstance(number, bool):
        return None
    if not isinstance(sig, str) or not constant_time_compare(
        sig, signature(action, number, channel_id)
    ):
        return None
    return f"{action} {number}"

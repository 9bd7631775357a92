"""The buttons on the bot's opening post in Slack, and the command each one is.

`action_id` names the verb, `value` the incident's number; Slack signs the click like any
request (warroom.slack.verify), so nothing more is needed to trust it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

# action_id → the command it runs, "{verb} {number}"; "Open in Muster" is a link button.
VERBS = {"muster_ack": "ack", "muster_resolve": "resolve", "muster_escalate": "escalate"}
LABELS = {"muster_ack": "Acknowledge", "muster_resolve": "Resolve", "muster_escalate": "Escalate"}
OPEN = "muster_open"


def actions_block(number: int) -> dict[str, Any]:
    """The opening post's buttons for incident `number`."""
    buttons: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": LABELS[action_id]},
            "value": str(number),
            **({"style": "primary"} if action_id == "muster_ack" else {}),
        }
        for action_id in VERBS
    ]
    buttons.append(
        {
            "type": "button",
            "action_id": OPEN,
            "text": {"type": "plain_text", "text": "Open in Muster"},
            "url": f"{settings.PUBLIC_URL}/incidents/{number}/",
        }
    )
    return {"type": "actions", "block_id": f"muster_incident_{number}", "elements": buttons}


def command_for(action_id: str, value: str) -> str | None:
    """Return the command a click on button `action_id` with `value` runs, or None."""
    verb = VERBS.get(action_id)
    if verb is None or not value.isdigit() or len(value) > 18:
        return None
    return f"{verb} {value}"

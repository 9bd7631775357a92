"""Run a parsed command for a person: find the incident, check their role, call the verb, reply.

Every surface (chat, Slack, Mattermost, SMS, the phone keypad) parses with `warroom.commands`
and calls `run`; the verbs in `incidents.services` do the changing. Replies are short enough
for an SMS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import Role, User
from incidents import services
from incidents.models import OPEN_STATUSES, Incident, Status
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from incidents.services import IncidentError
from oncall.models import Page
from warroom.commands import SURFACES, Command, help_text, spec_for

# One SMS segment; a title longer than what is left is cut.
REPLY_MAX = 160


@dataclass(frozen=True)
class Reply:
    """What to answer: `text`, whether anything `changed`, and the incident acted on if one."""

    text: str
    changed: bool = False
    incident: int | None = None


Handler = Callable[[Command, User, str, Incident | None], Reply]

# How a reply (and the voice surface) says that a verb was done.
PAST_TENSE = {"acknowledge": "acknowledged", "resolve": "resolved", "escalate": "escalated"}


def run(command: Command, *, user: User, source: str, incident: Incident | None = None) -> Reply:
    """Do `command` as `user`, recording `source`; `incident` is the one in context, if any.

    Without a number in the command, the context incident is meant; on SMS and voice without
    one either, the open incident the person was most recently paged for.
    """
    handler = _HANDLERS.get(command.name)
    if handler is None:
        return Reply(f'"{spec_for(command.name).word}" does not work here.')
    return handler(command, user, source, incident)


def _incident_verb(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    number = _target(command, user, source, context)
    if number is None:
        example = spec_for(command.name).example
        return Reply(f"Which incident? Add its number, e.g. {example}")
    try:
        incident = access_incident(user, number, role=Role.RESPONDER)
    except (NotAllowed, IncidentNotFound) as exc:
        return Reply(str(exc), incident=number)
    try:
        if command.name == "acknowledge":
            incident = services.acknowledge_incident(incident, by=user, source=source)
        elif command.name == "resolve":
            incident = services.resolve_incident(
                incident, by=user, source=source, note=command.text
            )
        else:
            incident = services.escalate_incident(incident, by=user, source=source)
    except IncidentError as exc:
        return Reply(str(exc), incident=number)
    done = PAST_TENSE[command.name].capitalize()
    return Reply(_fit(f"{done} #{number}: ", incident.title), changed=True, incident=number)


def _target(command: Command, user: User, source: str, context: Incident | None) -> int | None:
    if command.incident is not None:
        return command.incident
    if context is not None:
        return context.number
    if source in ("sms", "voice"):
        return (
            Page.objects.filter(person=user, incident__status__in=OPEN_STATUSES)
            .order_by("-created_at", "-id")
            .values_list("incident__number", flat=True)
            .first()
        )
    return None


def _acknowledge_all(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    if not user.has_role(Role.RESPONDER):
        return Reply(f"This needs the responder role; {user.get_username()} is {user.role}.")
    numbers = (
        Page.objects.filter(person=user, incident__status=Status.TRIGGERED)
        .order_by("incident__number")
        .values_list("incident__number", flat=True)
        .distinct()
    )
    acked = []
    for number in numbers:
        try:
            incident = access_incident(user, number, role=Role.RESPONDER)
            services.acknowledge_incident(incident, by=user, source=source)
        except (IncidentError, IncidentNotFound, NotAllowed):
            continue  # acknowledged or resolved by someone else since we looked
        acked.append(number)
    if not acked:
        return Reply("No triggered incidents are paged to you.")
    if len(acked) == 1:
        return Reply(f"Acknowledged #{acked[0]}.", changed=True, incident=acked[0])
    return Reply(_fit(f"Acknowledged {len(acked)} incidents: ", _numbers(acked)), changed=True)


def _numbers(numbers: list[int], room: int = REPLY_MAX // 2) -> str:
    listed = ", ".join(f"#{n}" for n in numbers)
    shown = numbers
    while len(listed) > room and len(shown) > 1:
        shown = shown[:-1]
        listed = ", ".join(f"#{n}" for n in shown) + f" and {len(numbers) - len(shown)} more"
    return listed


def _help(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    return Reply(help_text(command.topic, surface=source if source in SURFACES else "chat"))


def _fit(head: str, tail: str) -> str:
    room = REPLY_MAX - len(head)
    if len(tail) > room:
        tail = tail[: max(0, room - 3)].rstrip() + "..."
    return head + tail


_HANDLERS: dict[str, Handler] = {
    "acknowledge": _incident_verb,
    "resolve": _incident_verb,
    "escalate": _incident_verb,
    "acknowledge_all": _acknowledge_all,
    "help": _help,
}

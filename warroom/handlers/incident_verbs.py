"""The commands that change one incident: ack, resolve, escalate, ack all, assign, note, sev."""

from __future__ import annotations

from accounts.models import Role, User
from core.text import escape_markdown
from incidents import services
from incidents.models import Incident, Status
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from incidents.services import IncidentError
from oncall import escalation
from oncall.models import Page
from warroom.commands.specs import Command
from warroom.handlers.names import person_named
from warroom.replies import (
    PAST_TENSE,
    REPLY_MAX,
    Reply,
    fit,
    incident_for,
    incident_link,
    is_phone,
)

# --- ack, resolve, escalate, ack all ---------------------------------------------------------


def acknowledge_or_resolve(
    command: Command, user: User, source: str, context: Incident | None
) -> Reply:
    """`ack` or `resolve [note]`: the incident's state changes, as the person who typed it."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    try:
        if command.name == "acknowledge":
            incident = services.acknowledge_incident(incident, by=user, source=source)
        else:
            incident = services.resolve_incident(
                incident, by=user, source=source, note=command.text
            )
    except IncidentError as exc:
        return Reply(str(exc), incident=number)
    done = PAST_TENSE[command.name].capitalize()
    if is_phone(source):
        return Reply(fit(f"{done} #{number}: ", incident.title), changed=True, incident=number)
    return Reply(
        f"{done} {incident_link(number, source)}: {escape_markdown(incident.title)}",
        changed=True,
        incident=number,
    )


def escalate(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`escalate [to level N]`: page the next escalation level now, or the level named."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    try:
        incident, outcome = escalation.escalate_incident(
            incident, level=command.level, by=user, source=source
        )
    except IncidentError as exc:
        return Reply(str(exc), incident=number)
    if is_phone(source):
        return Reply(
            fit(f"Escalated #{number}. {outcome.describe()} ", incident.title),
            changed=True,
            incident=number,
        )
    return Reply(
        f"Escalated {incident_link(number, source)}: {escape_markdown(incident.title)}. "
        f"{escape_markdown(outcome.describe())}",
        changed=True,
        incident=number,
    )


def acknowledge_all(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`ack all`: acknowledge every triggered incident whose page reached the person."""
    # Only what reached the person: a page still queued (or held for a bundle) told them nothing.
    numbers = (
        Page.objects.filter(person=user, incident__status=Status.TRIGGERED, handed_at__isnull=False)
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
        return Reply(
            f"Acknowledged {incident_link(acked[0], source)}.", changed=True, incident=acked[0]
        )
    if not is_phone(source):
        links = ", ".join(incident_link(n, source) for n in acked)
        return Reply(f"Acknowledged {len(acked)} incidents: {links}", changed=True)
    return Reply(fit(f"Acknowledged {len(acked)} incidents: ", _numbers(acked)), changed=True)


def _numbers(numbers: list[int], room: int = REPLY_MAX // 2) -> str:
    listed = ", ".join(f"#{n}" for n in numbers)
    shown = numbers
    while len(listed) > room and len(shown) > 1:
        shown = shown[:-1]
        listed = ", ".join(f"#{n}" for n in shown) + f" and {len(numbers) - len(shown)} more"
    return listed


# --- assign ----------------------------------------------------------------------------------


def assign(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`assign @bob`: make bob the incident's assignee (an acknowledged incident pages again)."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    person = person_named(command.user or "", user)
    if person is None:
        return Reply(f"There is no active user called @{command.user}.", incident=number)
    name = person.get_username()
    if incident.assignee_id == person.pk:
        return Reply(
            f"{incident_link(number, source)} is already assigned to {name}.", incident=number
        )
    was_acknowledged = incident.status == Status.ACKNOWLEDGED
    try:
        incident = services.reassign_incident(incident, to=person, by=user, source=source)
    except IncidentError as exc:
        return Reply(str(exc), incident=number)
    if is_phone(source):
        return Reply(fit(f"Assigned #{number} to {name}: ", incident.title), True, number)
    again = " It is triggered again, so escalation pages them." if was_acknowledged else ""
    return Reply(
        f"Assigned {incident_link(number, source)} to **{escape_markdown(name)}**.{again}",
        True,
        number,
    )


# --- note, severity --------------------------------------------------------------------------


def note(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`note <text>`: add a note to the incident's timeline."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    try:
        services.add_note(incident, text=command.text, by=user, source=source)
    except IncidentError as exc:
        return Reply(str(exc), incident=incident.number)
    return Reply(f"Noted on {incident_link(incident.number, source)}.", True, incident.number)


def severity(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`sev <1-5>`: change the incident's severity (urgency follows)."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    if command.severity is None:
        return Reply("Which severity? e.g. sev 2", incident=number)
    try:
        incident = services.set_severity(
            incident, severity=command.severity, by=user, source=source
        )
    except IncidentError as exc:
        return Reply(str(exc), incident=number)
    return Reply(
        f"{incident_link(number, source)} is now severity {incident.severity} "
        f"({incident.urgency} urgency).",
        True,
        number,
    )

"""The command `page`: page a person, or whoever is on call on a schedule, about an incident."""

from __future__ import annotations

from accounts.models import Role, User
from core.text import escape_markdown
from incidents.models import Incident
from oncall import delivery, paging
from oncall.models import Schedule
from oncall.schedules import on_call_now
from warroom.commands.specs import Command
from warroom.handlers.names import by_name, person_named
from warroom.replies import Reply, incident_for, incident_link, is_phone


def page(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`page @bob` or `page <schedule>`: page a person, or whoever is on call on a schedule now,
    about the incident, outside its escalation policy (oncall.paging.page_person)."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    if not incident.is_open:
        return Reply(f"Incident #{number} is resolved; nobody is paged for it.", incident=number)
    people, via, problem = _whom_to_page(command, user)
    if problem:
        return Reply(problem, incident=number)
    paged: list[str] = []
    unreachable: list[str] = []
    for person in people:
        pages = paging.page_person(incident, person, by=user, source=source)
        name = person.get_username()
        if not pages:
            unreachable.append(name)
            continue
        channels = sorted({delivery.CHANNEL_LABEL.get(p.channel, p.channel) for p in pages})
        paged.append(
            name if is_phone(source) else f"**{escape_markdown(name)}** ({', '.join(channels)})"
        )
    parts = []
    if paged:
        parts.append(f"Paging {', '.join(paged)}{via} about {incident_link(number, source)}.")
    if unreachable:
        names = ", ".join(unreachable)
        parts.append(f"{names} cannot be paged: no verified contact method for this urgency.")
    return Reply(" ".join(parts), changed=bool(paged), incident=number)


def _whom_to_page(command: Command, user: User) -> tuple[list[User], str, str]:
    """Return (people, how they were found, what is wrong) for a page's @user or name."""
    if command.user is not None:
        person = person_named(command.user, user)
        if person is None:
            return [], "", f"There is no active user called @{command.user}."
        return [person], "", ""
    name = command.target or ""
    # A schedule's whole name, then a username, then part of a schedule's name ("page dba").
    schedule, close = Schedule.objects.filter(name__iexact=name).first(), []
    if schedule is None:
        person = person_named(name, user) if " " not in name else None
        if person is not None:
            return [person], "", ""
        schedule, close = by_name(Schedule.objects.all(), name)
    if schedule is not None:
        people = on_call_now(schedule)
        if not people:
            return [], "", f"Nobody is on call for {schedule.name} now."
        return people, f" (on call for {escape_markdown(schedule.name)})", ""
    if close:
        return [], "", f"Which schedule: {', '.join(close)}?"
    return [], "", f'There is no schedule or person called "{name[:60]}".'

"""The chat commands that look across incidents: `oncall`, `incidents`, `silence`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from django.db.models import Model, QuerySet
from django.utils import timezone

from accounts.models import User
from alerts.matchers import all_match
from alerts.models import Alert, AlertStatus, Silence
from incidents.models import Incident, Service, source_label
from oncall.models import EscalationStep, Schedule, ServicePolicy
from oncall.schedules import OnCall, on_call_for_service, on_call_summary
from warroom.commands import SILENCE_MAX, Command
from warroom.execute import Reply, is_phone, link
from warroom.markdown import escape

# A chat table longer than this is a wall; the web UI lists the rest.
TABLE_ROWS = 50
# Firing alerts a new silence is checked against, to say how many it already matches.
ALERTS_CHECKED = 10_000

Named = TypeVar("Named", bound=Model)


def by_name(queryset: QuerySet[Named], name: str) -> tuple[Named | None, list[str]]:
    """Return the object whose `name` is `name` (any case), else the only one containing it;
    with no single answer, the names of a few that contain it."""
    if not name:
        return None, []
    exact = queryset.filter(name__iexact=name).first()
    if exact is not None:
        return exact, []
    close = list(queryset.filter(name__icontains=name).order_by("name")[:6])
    if len(close) == 1:
        return close[0], []
    return None, [o.name for o in close]  # type: ignore[attr-defined]


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%a %d %b %H:%M} UTC" if moment else "-"


def _cell(text: str) -> str:
    return escape(text)  # escapes "|" too, so a name cannot break the table


# --- oncall ----------------------------------------------------------------------------------


def oncall(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`oncall [schedule|service]`: who is on call now and next; in an incident's room without
    a name, for the incident's service; else for every schedule."""
    name = command.target
    if name:
        schedule, close_schedules = by_name(Schedule.objects.all(), name)
        if schedule is not None:
            return Reply(_summary([schedule], source))
        service, close_services = by_name(Service.objects.all(), name)
        if service is not None:
            return _service_oncall(service, source)
        close = close_schedules + close_services
        if close:
            return Reply(f"Which one: {', '.join(close)}?")
        return Reply(f'There is no schedule or service called "{name[:60]}".')
    if context is not None:
        return _service_oncall(context.service, source)
    schedules = list(Schedule.objects.order_by("name")[: TABLE_ROWS + 1])
    if not schedules:
        return Reply("There are no schedules yet.")
    more = len(schedules) > TABLE_ROWS
    return Reply(_summary(schedules[:TABLE_ROWS], source, more=more))


def _service_oncall(service: Service, source: str) -> Reply:
    binding = ServicePolicy.objects.filter(service=service).select_related("policy").first()
    if binding is None:
        return Reply(f"{service.name} has no escalation policy, so nobody is paged for it.")
    first = ", ".join(p.get_username() for p in on_call_for_service(service)) or "nobody"
    steps = (
        EscalationStep.objects.filter(policy=binding.policy)
        .order_by("position", "id")
        .prefetch_related("schedules")
    )
    schedules = list({s.pk: s for step in steps for s in step.schedules.all()}.values())
    if is_phone(source):
        head = f"{service.name} pages {first} first."
        return Reply(f"{head} {_summary(schedules, source)}" if schedules else head)
    head = (
        f"**{escape(service.name)}** pages **{escape(first)}** first "
        f"(policy {escape(binding.policy.name)})."
    )
    return Reply(f"{head}\n\n{_summary(schedules, source)}" if schedules else head)


def _summary(schedules: list[Schedule], source: str, *, more: bool = False) -> str:
    rows = on_call_summary(schedules)
    if is_phone(source):
        return "; ".join(_short(row) for row in rows)
    lines = ["| Schedule | On call now | Until | Next |", "| --- | --- | --- | --- |"]
    lines += [_row(row) for row in rows]
    if more:
        lines += ["", f"The first {TABLE_ROWS} schedules; name one to see it."]
    return "\n".join(lines)


def _row(row: OnCall) -> str:
    now = ", ".join(p.get_username() for p in row.people) or "nobody"
    upcoming = row.next_person.get_username() if row.next_person else "nobody"
    if row.next_person is not None:
        upcoming = f"{_cell(upcoming)} from {_when(row.next_start)}"
    until = _when(row.until) if row.people else "-"
    return f"| {_cell(row.schedule.name)} | {_cell(now)} | {until} | {upcoming} |"


def _short(row: OnCall) -> str:
    now = ", ".join(p.get_username() for p in row.people) or "nobody"
    upcoming = f", then {row.next_person.get_username()}" if row.next_person else ""
    return f"{row.schedule.name}: {now}{upcoming}"


# --- incidents -------------------------------------------------------------------------------


def incidents(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`incidents`: the open incidents, most severe first, as a table."""
    open_incidents = Incident.objects.open().select_related("service", "assignee")
    shown = list(open_incidents.order_by("severity", "-number")[:TABLE_ROWS])
    if not shown:
        return Reply("No open incidents.")
    if is_phone(source):
        listed = ", ".join(f"#{i.number} sev{i.severity}" for i in shown)
        return Reply(f"{len(shown)} open: {listed}")
    lines = [
        "| Incident | Sev | Status | Service | Assignee | Title |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for incident in shown:
        assignee = incident.assignee.get_username() if incident.assignee else "-"
        title = incident.title if len(incident.title) <= 80 else incident.title[:77] + "..."
        lines.append(
            f"| {link(incident.number, source)} | {incident.severity} | {incident.status} "
            f"| {_cell(incident.service.name)} | {_cell(assignee)} | {_cell(title)} |"
        )
    total = open_incidents.count()
    if total > len(shown):
        lines += ["", f"{len(shown)} of {total} open incidents; all: [incidents](/incidents/)."]
    return Reply("\n".join(lines))


# --- silence ---------------------------------------------------------------------------------


def silence(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`silence <matchers> for <duration>`: matching alerts open no incident for that long."""
    number = context.number if context is not None else None
    if not command.matchers or command.duration is None:
        return Reply("Which alerts, and for how long? e.g. silence alertname=DiskFull for 2h")
    if command.duration > SILENCE_MAX:
        return Reply(f"A silence lasts at most {SILENCE_MAX.days}d.", incident=number)
    now = timezone.now()
    created = Silence.objects.create(
        matchers=[m.to_dict() for m in command.matchers],
        starts_at=now,
        ends_at=now + command.duration,
        created_by=user,
        comment=_comment(command, user, source, context),
    )
    firing = Alert.objects.filter(status=AlertStatus.FIRING).values_list("labels", flat=True)
    matching = sum(
        1
        for labels in firing[:ALERTS_CHECKED]
        if isinstance(labels, dict) and all_match(list(command.matchers), labels)
    )
    until = _when(created.ends_at)
    if is_phone(source):
        return Reply(f"Silence {created.pk} until {until}.", True, number)
    written = " ".join(_code(str(m)) for m in command.matchers)
    already = (
        f" It matches {matching} firing alert{'s' if matching != 1 else ''}; "
        "their incidents stay open."
        if matching
        else ""
    )
    return Reply(f"Silenced {written} until {until} (silence {created.pk}).{already}", True, number)


def _comment(command: Command, user: User, source: str, context: Incident | None) -> str:
    via = source_label(source)
    where = f"from #{context.number} {context.title}, " if context is not None else ""
    said = f"{command.text} " if command.text else ""
    return f"{said}({where}by {user.get_username()} via {via})"[:2000]


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else escape(text)

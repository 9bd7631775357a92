"""The command `oncall [schedule|service]`: who is on call now and who is next."""

from __future__ import annotations

from accounts.models import User
from core.text import escape_markdown
from incidents.models import Incident, Service
from oncall.models import EscalationStep, Schedule, ServicePolicy
from oncall.schedules import OnCall, on_call_for_service, on_call_summary
from warroom.commands.specs import Command
from warroom.handlers.names import by_name
from warroom.replies import TABLE_ROWS, Reply, is_phone, table_cell, utc_time


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
        f"**{escape_markdown(service.name)}** pages **{escape_markdown(first)}** first "
        f"(policy {escape_markdown(binding.policy.name)})."
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
        upcoming = f"{table_cell(upcoming)} from {utc_time(row.next_start)}"
    until = utc_time(row.until) if row.people else "-"
    return f"| {table_cell(row.schedule.name)} | {table_cell(now)} | {until} | {upcoming} |"


def _short(row: OnCall) -> str:
    now = ", ".join(p.get_username() for p in row.people) or "nobody"
    upcoming = f", then {row.next_person.get_username()}" if row.next_person else ""
    return f"{row.schedule.name}: {now}{upcoming}"

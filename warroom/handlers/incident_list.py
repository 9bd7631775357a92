"""The command `incidents`: the open incidents, most severe first."""

from __future__ import annotations

from django.urls import reverse

from accounts.models import User
from incidents.models import Incident
from warroom.commands.specs import Command
from warroom.replies import TABLE_ROWS, Reply, incident_link, is_phone, table_cell


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
            f"| {incident_link(incident.number, source)} | {incident.severity} "
            f"| {incident.status} | {table_cell(incident.service.name)} | {table_cell(assignee)} "
            f"| {table_cell(title)} |"
        )
    total = open_incidents.count()
    if total > len(shown):
        every = reverse("web-incidents")
        lines += ["", f"{len(shown)} of {total} open incidents; all: [incidents]({every})."]
    return Reply("\n".join(lines))

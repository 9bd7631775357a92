"""Run a parsed command for a person: check their role, call the command's handler, reply.

Every surface (chat, Slack, Mattermost, SMS, the phone keypad) parses with
`warroom.commands.parser` and calls `run`; `HANDLERS` maps each command to its handler in
`warroom.handlers`, and the verbs in `incidents.services` (and `oncall`, `alerts`, `runbooks`) do
the changing. Replies by SMS and voice fit one SMS.
"""

from __future__ import annotations

from dataclasses import replace

from accounts.models import Role, User
from incidents.models import Incident
from warroom.commands.specs import Command, spec_for
from warroom.handlers import (
    incident_list,
    incident_verbs,
    on_call,
    paging,
    postmortem,
    runbook,
    silences,
    status,
)
from warroom.handlers.help import show_help
from warroom.replies import Handler, Reply, fit, is_phone

# Anything that changes an incident, pages, silences or runs an action needs a responder;
# anyone (an observer too) may ask for help, who is on call, the incidents, runbooks, graphs,
# and subscribe to status updates.
RESPONDER_COMMANDS = frozenset(
    {
        "acknowledge",
        "acknowledge_all",
        "resolve",
        "escalate",
        "assign",
        "page",
        "status",
        "note",
        "severity",
        "silence",
        "unsilence",
        "run",
    }
)

# What each command does. `stop` and `start` are not here: the SMS surface answers them itself.
HANDLERS: dict[str, Handler] = {
    "acknowledge": incident_verbs.acknowledge_or_resolve,
    "resolve": incident_verbs.acknowledge_or_resolve,
    "escalate": incident_verbs.escalate,
    "acknowledge_all": incident_verbs.acknowledge_all,
    "assign": incident_verbs.assign,
    "note": incident_verbs.note,
    "severity": incident_verbs.severity,
    "page": paging.page,
    "status": status.status,
    "subscribe": status.subscribe,
    "unsubscribe": status.unsubscribe,
    "oncall": on_call.oncall,
    "incidents": incident_list.incidents,
    "silence": silences.silence,
    "unsilence": silences.unsilence,
    "runbook": runbook.runbook,
    "graph": runbook.graph,
    "run": runbook.run_action,
    "postmortem": postmortem.postmortem,
    "help": show_help,
}


def run(command: Command, *, user: User, source: str, incident: Incident | None = None) -> Reply:
    """Do `command` as `user`, recording `source`; `incident` is the one in context, if any.

    Without a number in the command, the context incident is meant; on SMS and voice without
    one either, the open incident the person was most recently paged for.
    """
    handler = HANDLERS.get(command.name)
    if handler is None:
        return Reply(f'"{spec_for(command.name).word}" does not work here.')
    needed = needed_role(command)
    if not user.has_role(needed):
        named = command.incident
        if named is None and incident is not None:
            named = incident.number
        return Reply(refusal(user, needed), incident=named)
    reply = handler(command, user, source, incident)
    if is_phone(source):
        reply = replace(reply, text=fit(reply.text, ""))
    return reply


def needed_role(command: Command) -> str:
    """The role `command` needs: responder to change anything, else observer. A bare `run` only
    lists the runbook's actions."""
    if command.name == "run" and not command.action:
        return Role.OBSERVER
    return Role.RESPONDER if command.name in RESPONDER_COMMANDS else Role.OBSERVER


def refusal(user: User, needed: str) -> str:
    """Say why `user` may not do something that needs the `needed` role."""
    if not user.is_active:
        return f"{user.get_username()} is deactivated."
    return f"This needs the {needed} role; {user.get_username()} is {user.role}."

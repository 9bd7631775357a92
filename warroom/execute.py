"""Run a parsed command for a person: find the incident, check their role, call the verb, reply.

Every surface (chat, Slack, Mattermost, SMS, the phone keypad) parses with `warroom.commands`
and calls `run`; the verbs in `incidents.services` (and `oncall`, `alerts`, `runbooks`) do the
changing. Replies by SMS and voice fit one SMS; replies in chat are Markdown, with links to
incidents and tables for lists. The ack/resolve/escalate family lives here; the chat commands
live in `warroom.handlers` (and `warroom.handlers_runbooks`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from accounts.models import Role, User
from incidents import services
from incidents.models import OPEN_STATUSES, Incident, Status
from incidents.selectors import IncidentNotFound, NotAllowed, access_incident
from incidents.services import IncidentError
from oncall import escalation
from oncall.models import Page
from warroom.commands import (
    CHAT_SURFACES,
    PHONE_SURFACES,
    SURFACES,
    Command,
    help_markdown,
    help_text,
    spec_for,
)
from warroom.markdown import escape

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
        "run",
    }
)


def run(command: Command, *, user: User, source: str, incident: Incident | None = None) -> Reply:
    """Do `command` as `user`, recording `source`; `incident` is the one in context, if any.

    Without a number in the command, the context incident is meant; on SMS and voice without
    one either, the open incident the person was most recently paged for.
    """
    handler = _handlers().get(command.name)
    if handler is None:
        return Reply(f'"{spec_for(command.name).word}" does not work here.')
    needed = needed_role(command)
    if not user.has_role(needed):
        named = command.incident
        if named is None and incident is not None:
            named = incident.number
        return Reply(refusal(user, needed), incident=named)
    reply = handler(command, user, source, incident)
    if is_phone(source) and len(reply.text) > REPLY_MAX:
        reply = replace(reply, text=fit(reply.text, ""))
    return reply


# --- what handlers share ---------------------------------------------------------------------


def needed_role(command: Command) -> str:
    """The role `command` needs: responder to change anything, else observer. A bare `run` only
    lists the runbook's actions."""
    if command.name == "run" and not command.action:
        return Role.OBSERVER
    return Role.RESPONDER if command.name in RESPONDER_COMMANDS else Role.OBSERVER


def is_phone(source: str) -> bool:
    """Whether replies to `source` must be short plain text (SMS and voice)."""
    return source in PHONE_SURFACES


def refusal(user: User, needed: str) -> str:
    """Say why `user` may not do something that needs the `needed` role."""
    if not user.is_active:
        return f"{user.get_username()} is deactivated."
    return f"This needs the {needed} role; {user.get_username()} is {user.role}."


def link(number: int, source: str) -> str:
    """An incident as a reply names it: a Markdown link in chat, `#N` by phone."""
    return f"#{number}" if is_phone(source) else f"[#{number}](/incidents/{number}/)"


def fit(head: str, tail: str) -> str:
    """Return `head + tail`, `tail` cut so that the whole fits one SMS."""
    if len(head) > REPLY_MAX:
        head, tail = "", head
    room = REPLY_MAX - len(head)
    if len(tail) > room:
        tail = tail[: max(0, room - 3)].rstrip() + "..."
    return head + tail


def target_number(
    command: Command, user: User, source: str, context: Incident | None
) -> int | None:
    """Return the incident meant: named, else in context, else (by phone) the latest page's."""
    if command.incident is not None:
        return command.incident
    if context is not None:
        return context.number
    if is_phone(source):
        return (
            Page.objects.filter(person=user, incident__status__in=OPEN_STATUSES)
            .order_by("-created_at", "-id")
            .values_list("incident__number", flat=True)
            .first()
        )
    return None


def which_incident(command: Command) -> Reply:
    """Ask for the incident's number, with the command's example showing where it goes."""
    spec = spec_for(command.name)
    example = spec.example
    if not any(part.isdigit() and len(part) >= 4 for part in example.split()):
        example = f"{spec.word} #1042{example[len(spec.word) :]}"
    return Reply(f"Which incident? Add its number, e.g. {example}")


def incident_for(
    command: Command, user: User, source: str, context: Incident | None, *, role: str
) -> Incident | Reply:
    """Return the incident the command means, if `user` holds `role`; else the Reply saying why
    not (no number, no such incident, not allowed)."""
    number = target_number(command, user, source, context)
    if number is None:
        return which_incident(command)
    try:
        return access_incident(user, number, role=role)
    except (NotAllowed, IncidentNotFound) as exc:
        return Reply(str(exc), incident=number)


# --- ack, resolve, escalate, ack all, help ---------------------------------------------------


def _incident_verb(command: Command, user: User, source: str, context: Incident | None) -> Reply:
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
        f"{done} {link(number, source)}: {escape(incident.title)}", changed=True, incident=number
    )


def _escalate(command: Command, user: User, source: str, context: Incident | None) -> Reply:
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
        f"Escalated {link(number, source)}: {escape(incident.title)}. {escape(outcome.describe())}",
        changed=True,
        incident=number,
    )


def _acknowledge_all(command: Command, user: User, source: str, context: Incident | None) -> Reply:
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
        return Reply(f"Acknowledged {link(acked[0], source)}.", changed=True, incident=acked[0])
    if not is_phone(source):
        links = ", ".join(link(n, source) for n in acked)
        return Reply(f"Acknowledged {len(acked)} incidents: {links}", changed=True)
    return Reply(fit(f"Acknowledged {len(acked)} incidents: ", _numbers(acked)), changed=True)


def _numbers(numbers: list[int], room: int = REPLY_MAX // 2) -> str:
    listed = ", ".join(f"#{n}" for n in numbers)
    shown = numbers
    while len(listed) > room and len(shown) > 1:
        shown = shown[:-1]
        listed = ", ".join(f"#{n}" for n in shown) + f" and {len(numbers) - len(shown)} more"
    return listed


def _help(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    surface = source if source in SURFACES else "chat"
    if surface in CHAT_SURFACES:
        return Reply(help_markdown(command.topic, surface=surface))
    return Reply(help_text(command.topic, surface=surface))


# --- the table -------------------------------------------------------------------------------

_RUNBOOKS_MODULE = "warroom.handlers_runbooks"


def _runbooks(function: str) -> Handler:
    """Return a handler calling `warroom.handlers_runbooks.<function>`, imported when first
    called (it imports this module for `Reply`), with a named incident looked up for it."""

    def handler(command: Command, user: User, source: str, context: Incident | None) -> Reply:
        try:
            module = importlib.import_module(_RUNBOOKS_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != _RUNBOOKS_MODULE:
                raise
            return Reply(f'"{spec_for(command.name).word}" is not available yet.')
        if command.incident is not None:
            named = incident_for(command, user, source, context, role=Role.OBSERVER)
            if isinstance(named, Reply):
                return named
            context = named
        return getattr(module, function)(command, user, source, context)

    return handler


@cache
def _handlers() -> dict[str, Handler]:
    from warroom import handlers, handlers_postmortem  # import this module: bound on first use

    return {
        "acknowledge": _incident_verb,
        "resolve": _incident_verb,
        "escalate": _escalate,
        "acknowledge_all": _acknowledge_all,
        "help": _help,
        "assign": handlers.assign,
        "page": handlers.page,
        "oncall": handlers.oncall,
        "status": handlers.status,
        "note": handlers.note,
        "severity": handlers.severity,
        "silence": handlers.silence,
        "incidents": handlers.incidents,
        "subscribe": handlers.subscribe,
        "unsubscribe": handlers.unsubscribe,
        "runbook": _runbooks("runbook"),
        "graph": _runbooks("graph"),
        "run": _runbooks("run_action"),
        "postmortem": handlers_postmortem.postmortem,
    }

"""The chat commands beyond ack/resolve/escalate: each runs as the person who typed it.

`warroom.execute.run` checks the role each command needs before calling these; a handler finds
its incident (with the role checked again by `access_incident`), calls the owning app's service
and answers with a `Reply`: Markdown in chat, one short line by phone. An error changes nothing
and says why. `oncall`, `incidents` and `silence` live in `warroom.handlers_ops`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from accounts.models import Role, User
from incidents import services, timeline
from incidents.models import EntryKind, Incident, Source, Status, source_label
from incidents.services import IncidentError
from oncall import delivery, paging
from oncall.channels.base import DeliveryError
from oncall.channels.email import send_email
from oncall.models import Schedule
from oncall.schedules import on_call_now
from warroom.commands import Command
from warroom.execute import Reply, fit, incident_for, is_phone, link
from warroom.handlers_ops import by_name, incidents, oncall, silence
from warroom.markdown import escape
from warroom.models import MessageKind, Subscription

__all__ = [
    "StatusDelivery",
    "assign",
    "deliver_status_update",
    "incidents",
    "note",
    "oncall",
    "page",
    "severity",
    "silence",
    "status",
    "subscribe",
    "unsubscribe",
]

log = logging.getLogger(__name__)

# A status update, like a note, is a paragraph, not a document.
STATUS_MAX = 10_000


def person_named(name: str, me: User) -> User | None:
    """Return the active person `name` stands for ("me" is whoever typed it); a username's case
    only matters when two people differ by it."""
    if name == "me":
        return me
    people = list(User.objects.filter(username__iexact=name, is_active=True)[:5])
    exact = [p for p in people if p.username == name]
    if exact:
        return exact[0]
    return people[0] if len(people) == 1 else None


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
    if not person.has_role(Role.RESPONDER):
        return Reply(f"{name} is an {person.role} and cannot act on incidents.", incident=number)
    if incident.assignee_id == person.pk:
        return Reply(f"{link(number, source)} is already assigned to {name}.", incident=number)
    was_acknowledged = incident.status == Status.ACKNOWLEDGED
    try:
        incident = services.reassign_incident(incident, to=person, by=user, source=source)
    except IncidentError as exc:
        return Reply(str(exc), incident=number)
    if is_phone(source):
        return Reply(fit(f"Assigned #{number} to {name}: ", incident.title), True, number)
    again = " It is triggered again, so escalation pages them." if was_acknowledged else ""
    return Reply(f"Assigned {link(number, source)} to **{escape(name)}**.{again}", True, number)


# --- page ------------------------------------------------------------------------------------


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
        paged.append(name if is_phone(source) else f"**{escape(name)}** ({', '.join(channels)})")
    parts = []
    if paged:
        parts.append(f"Paging {', '.join(paged)}{via} about {link(number, source)}.")
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
        return people, f" (on call for {escape(schedule.name)})", ""
    if close:
        return [], "", f"Which schedule: {', '.join(close)}?"
    return [], "", f'There is no schedule or person called "{name[:60]}".'


# --- status updates --------------------------------------------------------------------------


def status(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`status <text>`: record a status update and send it to the incident's subscribers."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    text = command.text.strip()[:STATUS_MAX]
    if not text:
        return Reply("A status update needs some text.", incident=number)
    with transaction.atomic():
        timeline.record(
            incident,
            EntryKind.STATUS_UPDATE,
            message=f"Status update by {user.get_username()} via {source_label(source)}: {text}",
            source=source,
            by=user,
            data={"text": text},
        )
        sent = deliver_status_update(incident, text, by=user)
    return Reply(_sent_text(sent, number, source), changed=True, incident=number)


@dataclass
class StatusDelivery:
    """Who a status update went to: usernames by email, and mentioned in the room."""

    email: list[str] = field(default_factory=list)
    chat: list[str] = field(default_factory=list)


def deliver_status_update(incident: Incident, text: str, *, by: User) -> StatusDelivery:
    """Send a status update to the incident's and its service's subscribers, once each per
    channel: email (after commit, one message per person) and chat (one bot post in the
    incident's room naming them)."""
    subscriptions = (
        Subscription.objects.filter(Q(incident=incident) | Q(service_id=incident.service_id))
        .filter(user__is_active=True)
        .select_related("user")
        .order_by("user__username")
    )
    emailed: dict[int, User] = {}
    chatting: dict[int, User] = {}
    for subscription in subscriptions:
        person = subscription.user
        if subscription.channel == Subscription.EMAIL and person.email:
            emailed.setdefault(person.pk, person)
        elif subscription.channel == Subscription.CHAT:
            chatting.setdefault(person.pk, person)
    # Always in the room (the bot does not echo STATUS_UPDATE entries), naming chat subscribers.
    _post_to_room(incident, text, by, list(chatting.values()))
    if emailed:
        addresses = [(p.get_username(), p.email) for p in emailed.values()]
        subject, body = _status_mail(incident, text, by)
        # Robust: a mail that fails must not skip the commit's other hooks (broadcasts).
        transaction.on_commit(lambda: _mail(subject, body, addresses), robust=True)
    return StatusDelivery(
        email=[p.get_username() for p in emailed.values()],
        chat=[p.get_username() for p in chatting.values()],
    )


def _post_to_room(incident: Incident, text: str, by: User, people: list[User]) -> None:
    from warroom import services  # imports warroom.execute, which imports this module

    quoted = "\n".join(f"> {line}" for line in text.splitlines() or [""])
    cc = " ".join(f"@{p.get_username()}" for p in people)
    body = (
        f"**Status update** on {link(incident.number, Source.CHAT)} "
        f"from {escape(by.get_username())}:\n\n{quoted}"
    )
    if cc:
        body += f"\n\ncc {escape(cc)}"
    room = services.incident_room(incident)
    services.post(room, body, kind=MessageKind.BOT, data={"status_update": True})


def _status_mail(incident: Incident, text: str, by: User) -> tuple[str, str]:
    subject = f"[Muster] #{incident.number} status update: {incident.title}"
    body = (
        f"{text}\n\n"
        f"-- {by.get_username()}, on incident #{incident.number} ({incident.status}, severity "
        f"{incident.severity}) on {incident.service.name}: {incident.title}\n"
        f"{settings.PUBLIC_URL}/incidents/{incident.number}/\n\n"
        "You get this because you subscribed to this incident's or its service's status "
        'updates; type "unsubscribe" in the incident\'s room to stop.\n'
    )
    return subject, body


def _mail(subject: str, body: str, addresses: list[tuple[str, str]]) -> None:
    # One message each: a shared To: line would show every stakeholder's address to the others.
    for username, address in addresses:
        try:
            send_email(address, subject, body)
        except DeliveryError:
            log.warning("status update not mailed to %s", username, exc_info=True)


def _sent_text(sent: StatusDelivery, number: int, source: str) -> str:
    where = []
    if sent.email:
        where.append(f"{len(sent.email)} by email")
    if sent.chat:
        where.append(f"{len(sent.chat)} in chat")
    if not where:
        return f"Status update recorded on {link(number, source)}; nobody has subscribed yet."
    return f"Status update on {link(number, source)} sent to {' and '.join(where)}."


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
    return Reply(f"Noted on {link(incident.number, source)}.", True, incident.number)


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
        f"{link(number, source)} is now severity {incident.severity} ({incident.urgency} urgency).",
        True,
        number,
    )


# --- subscriptions ---------------------------------------------------------------------------


def subscribe(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`subscribe [email|chat]`: get this incident's status updates (chat: in its room)."""
    incident = incident_for(command, user, source, context, role=Role.OBSERVER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    channel = command.channel or (Subscription.EMAIL if is_phone(source) else Subscription.CHAT)
    how = "by email" if channel == Subscription.EMAIL else "in its room"
    if channel == Subscription.EMAIL and not user.email:
        return Reply(
            "You have no email address in Muster; add one to your profile, or subscribe chat.",
            incident=number,
        )
    _, created = Subscription.objects.get_or_create(user=user, incident=incident, channel=channel)
    if channel == Subscription.CHAT:
        from warroom import services  # imports warroom.execute, which imports this module

        services.invite(services.incident_room(incident), user, "subscribed")
    updates = f"{link(number, source)}'s status updates {how}"
    if not created:
        return Reply(f"You already get {updates}.", False, number)
    return Reply(f"Subscribed: you get {updates}.", True, number)


def unsubscribe(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`unsubscribe [email|chat]`: stop this incident's status updates (both ways if unsaid)."""
    incident = incident_for(command, user, source, context, role=Role.OBSERVER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    mine = Subscription.objects.filter(user=user, incident=incident)
    if command.channel is not None:
        mine = mine.filter(channel=command.channel)
    removed, _ = mine.delete()
    service = incident.service
    still = Subscription.objects.filter(user=user, service=service).exists()
    tail = f" You still get every {service.name} incident's updates." if still else ""
    if not removed:
        return Reply(f"You are not subscribed to {link(number, source)}.{tail}", False, number)
    return Reply(f"Unsubscribed from {link(number, source)}.{tail}", True, number)

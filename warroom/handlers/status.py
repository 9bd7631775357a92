"""The commands about status updates: `status <text>`, `subscribe`, `unsubscribe`."""

from __future__ import annotations

from accounts.models import Role, User
from incidents.models import Incident
from warroom import services
from warroom.commands.specs import Command
from warroom.models import Subscription
from warroom.replies import Reply, incident_for, incident_link, is_phone
from warroom.status_updates import StatusDelivery, post_status_update

# A status update, like a note, is a paragraph, not a document.
STATUS_MAX = 10_000


def status(command: Command, user: User, source: str, context: Incident | None) -> Reply:
    """`status <text>`: record a status update and send it to the incident's subscribers."""
    incident = incident_for(command, user, source, context, role=Role.RESPONDER)
    if isinstance(incident, Reply):
        return incident
    number = incident.number
    text = command.text.strip()[:STATUS_MAX]
    if not text:
        return Reply("A status update needs some text.", incident=number)
    sent = post_status_update(incident, text, by=user, source=source)
    return Reply(_sent_text(sent, number, source), changed=True, incident=number)


def _sent_text(sent: StatusDelivery, number: int, source: str) -> str:
    where = []
    if sent.email:
        where.append(f"{len(sent.email)} by email")
    if sent.chat:
        where.append(f"{len(sent.chat)} in chat")
    link = incident_link(number, source)
    if not where:
        return f"Status update recorded on {link}; nobody has subscribed yet."
    return f"Status update on {link} sent to {' and '.join(where)}."


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
        services.invite(services.incident_room(incident), user.pk, "subscribed")
    updates = f"{incident_link(number, source)}'s status updates {how}"
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
    link = incident_link(number, source)
    if not removed:
        return Reply(f"You are not subscribed to {link}.{tail}", False, number)
    return Reply(f"Unsubscribed from {link}.{tail}", True, number)

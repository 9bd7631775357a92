"""Status updates: recorded on the incident's timeline, posted in its room, and sent to whoever
subscribed to the incident or its service (by email, or mentioned in the room)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from celery import signature
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from accounts.models import User
from core import pools, slots
from core.text import escape_markdown
from incidents.models import EntryKind, Incident, Source, source_label
from incidents.timeline import record
from oncall.channels.base import DeliveryError
from oncall.channels.email import send_email
from warroom import services
from warroom.models import MessageKind, Subscription
from warroom.replies import incident_link

log = logging.getLogger(__name__)

MAIL_TASK = "warroom.mail_status_update"  # warroom.tasks, on the "bot" queue


@dataclass
class StatusDelivery:
    """Who a status update went to: usernames by email, and mentioned in the room."""

    email: list[str] = field(default_factory=list)
    chat: list[str] = field(default_factory=list)


def post_status_update(incident: Incident, text: str, *, by: User, source: str) -> StatusDelivery:
    """Record `by`'s status update on the incident's timeline and send it to its subscribers,
    in one transaction."""
    with transaction.atomic():
        record(
            incident,
            EntryKind.STATUS_UPDATE,
            message=f"Status update by {by.get_username()} via {source_label(source)}: {text}",
            source=source,
            by=by,
            data={"text": text},
        )
        return deliver_status_update(incident, text, by=by)


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
        transaction.on_commit(lambda: _mail_later(subject, body, addresses), robust=True)
    return StatusDelivery(
        email=[p.get_username() for p in emailed.values()],
        chat=[p.get_username() for p in chatting.values()],
    )


def _post_to_room(incident: Incident, text: str, by: User, people: list[User]) -> None:
    quoted = "\n".join(f"> {line}" for line in text.splitlines() or [""])
    cc = " ".join(f"@{p.get_username()}" for p in people)
    body = (
        f"**Status update** on {incident_link(incident.number, Source.CHAT)} "
        f"from {escape_markdown(by.get_username())}:\n\n{quoted}"
    )
    if cc:
        body += f"\n\ncc {escape_markdown(cc)}"
    room = services.incident_room(incident)
    services.post(room, body, kind=MessageKind.BOT, data={"status_update": True})


def _status_mail(incident: Incident, text: str, by: User) -> tuple[str, str]:
    subject = f"[Muster] #{incident.number} status update: {incident.title}"
    page = settings.PUBLIC_URL + reverse("web-incident", args=[incident.number])
    body = (
        f"{text}\n\n"
        f"-- {by.get_username()}, on incident #{incident.number} ({incident.status}, severity "
        f"{incident.severity}) on {incident.service.name}: {incident.title}\n"
        f"{page}\n\n"
        "You get this because you subscribed to this incident's or its service's status "
        'updates; type "unsubscribe" in the incident\'s room to stop.\n'
    )
    return subject, body


def _mail_later(subject: str, body: str, addresses: list[tuple[str, str]]) -> None:
    """Hand the mails to a worker: a mail server that is slow, or hangs (EMAIL_TIMEOUT, 10 s a
    message), must hold no web request (sent here, 20 subscribers took up to 200 s). Sent now,
    here, only if the broker cannot take them."""
    try:
        signature(MAIL_TASK, args=(subject, body, addresses, uuid.uuid4().hex)).apply_async()
        return
    except Exception:
        log.warning("could not hand a status update's mail to a worker; sending it now")
    send_mails(subject, body, addresses)


def mail(subject: str, body: str, addresses: list[tuple[str, str]], key: str) -> None:
    """Send a status update's mails on one of this worker process's threads for the mail
    server (core.pools: MUSTER_CHAT_THREADS of them, as for each chat platform, and as many
    waiting), so that a mail server that hangs holds none of the worker's task threads; when
    those are all taken, ask again shortly. `key`: this update's (taken once while it waits)."""
    if pools.submit("CHAT_THREADS", "status-mail", send_mails, subject, body, addresses, key=key):
        return
    slots.ask_again_later(
        f"{MAIL_TASK}:{key}",
        lambda countdown: signature(MAIL_TASK, args=(subject, body, addresses, key)).apply_async(
            countdown=countdown
        ),
    )


def send_mails(subject: str, body: str, addresses: list[tuple[str, str]]) -> None:
    # One message each: a shared To: line would show every stakeholder's address to the others.
    for username, address in addresses:
        try:
            send_email(address, subject, body)
        except DeliveryError:
            log.warning("status update not mailed to %s", username, exc_info=True)

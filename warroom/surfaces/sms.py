"""Inbound SMS: Twilio posts each text sent to our number; every message is a command.

Twilio answers the opt-out keywords (STOP, START, …) itself and blocks our texts to a number that
opted out; we only remember it on the person's SMS contact methods so paging knows.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import User
from incidents.models import Source
from oncall.channels.twilio import empty_twiml, sms_reply_twiml, twiml_response, verify_request
from oncall.messages import gsm_text
from oncall.models import ContactKind, ContactMethod
from warroom import replay
from warroom.commands.parser import parse
from warroom.commands.specs import Command
from warroom.execute import run

SOURCE = Source.SMS

log = logging.getLogger(__name__)

UNKNOWN_NUMBER = (
    "This number is not registered with Muster. Add it as a contact method in your Muster "
    "profile and verify it, then text HELP."
)
SHARED_NUMBER = (
    "This number belongs to more than one person in Muster, so texts cannot tell who you are. "
    "Use the Muster app."
)


@csrf_exempt
@require_POST
def inbound_sms(request: HttpRequest) -> HttpResponse:
    """Answer Twilio's incoming-message webhook with TwiML, once per MessageSid: a replayed
    message gets an empty answer (so Twilio does not retry) and changes nothing."""
    if not verify_request(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    sid = request.POST.get("MessageSid") or request.POST.get("SmsSid", "")
    if not sid:
        return HttpResponseBadRequest("MessageSid is missing.")
    # Remembered in the transaction that acts: a message that fails is not remembered.
    with transaction.atomic():
        if not replay.first_time(replay.sms_key(sid)):
            log.warning("SMS %s was already acted on; a replay, ignored", sid[:40])
            return twiml_response(empty_twiml())
        return _act(request)


def _act(request: HttpRequest) -> HttpResponse:
    number = request.POST.get("From", "").strip()
    command = parse(request.POST.get("Body", ""), surface="sms")
    if isinstance(command, Command) and command.name in ("stop", "start"):
        changed = set_sms_opt_out(number, opted_out=command.name == "stop")
        log.info("SMS %s from ...%s: %d contact methods", command.name, number[-4:], changed)
        # Twilio confirms both itself; after STOP it would not deliver ours anyway.
        return _answer("")
    people = people_for_number(number)
    if len(people) != 1:
        return _answer(SHARED_NUMBER if people else UNKNOWN_NUMBER)
    if not isinstance(command, Command):
        # Its message names the closest command, or lists them all.
        return _answer(gsm_text(command.message))
    reply = run(command, user=people[0], source=SOURCE)
    return _answer(gsm_text(reply.text))


def _answer(text: str) -> HttpResponse:
    """Return the TwiML answer that texts `text` back (nothing, if empty)."""
    return twiml_response(sms_reply_twiml(text))


def people_for_number(number: str) -> list[User]:
    """Return the active people whose verified SMS or voice number is `number` (E.164); two at
    most, which is enough to tell that it is not one person's."""
    if not number:
        return []
    return list(
        User.objects.filter(
            is_active=True,
            contact_methods__kind__in=(ContactKind.SMS, ContactKind.VOICE),
            contact_methods__address=number,
            contact_methods__verified_at__isnull=False,
        )
        .distinct()
        .order_by("pk")[:2]
    )


def set_sms_opt_out(number: str, *, opted_out: bool) -> int:
    """Record that `number` texted STOP (or START): Twilio blocks (or unblocks) our texts to it.

    Only SMS methods change: Twilio's opt-out covers messages, not calls.
    """
    if not number:
        return 0
    return ContactMethod.objects.filter(kind=ContactKind.SMS, address=number).update(
        opted_out=opted_out
    )

"""The phone keypad: a paging call gathers one key and Twilio posts it here.

The page in the URL names the person and the incident; the key goes through the same parser as
any text (4 acknowledge, 6 resolve, 5 escalate) and the same verbs, recorded as voice. The call
crosses apps twice: oncall's call (oncall.twilio_views.voice_twiml) points its Gather here by
URL name (oncall.channels.twilio.keypress_url), and this view tells oncall that the call was
heard before it runs the command.
"""

from __future__ import annotations

from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from incidents.models import Source
from oncall import callbacks, messages
from oncall.channels.twilio import (
    empty_twiml,
    keypress_url,
    twiml_response,
    verify_request,
    voice_gather_twiml,
    voice_say_twiml,
)
from oncall.models import Page
from warroom import replay
from warroom.commands.help import help_text
from warroom.commands.parser import parse
from warroom.commands.specs import Command
from warroom.execute import run
from warroom.replies import PAST_TENSE

SOURCE = Source.VOICE


@csrf_exempt
@require_POST
def keypress(request: HttpRequest, page_id: int) -> HttpResponse:
    """Answer a Gather's action with TwiML: do what the key asks, or offer the keys again."""
    if not verify_request(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    call_sid = request.POST.get("CallSid", "")
    step = request.GET.get("step", "0")
    if not call_sid or not step.isdigit() or len(step) > 3:
        return HttpResponseBadRequest("CallSid is missing, or the gather step is not a number.")
    # Once per (CallSid, gather step), remembered in the transaction that acts: a replayed key
    # gets an empty answer (Twilio does not retry) and changes nothing (warroom.replay).
    with transaction.atomic():
        if not replay.first_time(replay.keypress_key(call_sid, int(step))):
            return twiml_response(empty_twiml())
        return _act(request, page_id, int(step))


def _act(request: HttpRequest, page_id: int, step: int) -> HttpResponse:
    page = Page.objects.select_related("person", "incident").filter(pk=page_id).first()
    if page is None or page.created_at < timezone.now() - replay.window():
        return twiml_response(voice_say_twiml(messages.CALL_NO_LONGER_VALID))
    digits = request.POST.get("Digits", "").strip()
    if digits:
        callbacks.record_keypress(page.pk)  # a key was pressed: a person heard the call
    command = parse(digits, surface="voice")
    again = keypress_url(page.pk, step=step + 1)  # the next Gather: a new step
    if len(callbacks.carried_incidents(page)) > 1:
        return _bundle_keypress(page, command, digits, again)
    if not isinstance(command, Command) or command.name not in PAST_TENSE:
        options = f"Sorry, {_spoken(digits)} is not an option. {help_text(surface='voice')}"
        return twiml_response(voice_gather_twiml(options, again))
    reply = run(command, user=page.person, source=SOURCE, incident=page.incident)
    if reply.changed:
        speech = f"Incident {reply.incident} {PAST_TENSE[command.name]}. Goodbye."
    else:
        speech = f"{reply.text.replace('#', '')} Goodbye."
    return twiml_response(voice_say_twiml(speech))


def _bundle_keypress(
    page: Page, command: Command | object, digits: str, again: str
) -> HttpResponse:
    """A bundle's call offers one key: 4 acknowledges every incident the call named."""
    if not isinstance(command, Command) or command.name != "acknowledge":
        options = f"Sorry, {_spoken(digits)} is not an option. Press 4 to acknowledge all."
        return twiml_response(voice_gather_twiml(options, again))
    acked = [
        incident.number
        for incident in callbacks.carried_incidents(page)
        if run(
            Command(name="acknowledge", incident=incident.number), user=page.person, source=SOURCE
        ).changed
    ]
    said = f"Acknowledged {len(acked)} incidents." if acked else "Nothing was left to acknowledge."
    return twiml_response(voice_say_twiml(f"{said} Goodbye."))


def _spoken(digits: str) -> str:
    return " ".join(digits) if digits else "no key"

"""Twilio's webhooks for pages: delivery-status callbacks, and what a paging call says.

Every request must carry Twilio's signature (403 otherwise). A valid status callback is always
answered 200, even for a page that no longer exists: Twilio does not retry them.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from incidents.models import Status
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

FORBIDDEN = "Invalid Twilio signature."


@csrf_exempt
@require_POST
def sms_status(request: HttpRequest, page_id: int) -> HttpResponse:
    """Record an SMS's MessageStatus (queued, sent, delivered, undelivered, failed)."""
    if not verify_request(request):
        return HttpResponseForbidden(FORBIDDEN)
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus", "")
    if status:
        callbacks.record_provider_status(
            page_id,
            kind="sms",
            status=status,
            error_code=request.POST.get("ErrorCode", ""),
            sid=request.POST.get("MessageSid") or request.POST.get("SmsSid", ""),
        )
    return twiml_response(empty_twiml())


@csrf_exempt
@require_POST
def voice_status(request: HttpRequest, page_id: int) -> HttpResponse:
    """Record a call's CallStatus (initiated, ringing, in-progress, completed, busy, …)."""
    if not verify_request(request):
        return HttpResponseForbidden(FORBIDDEN)
    status = request.POST.get("CallStatus", "")
    # AnsweredBy comes only with answering-machine detection: human, machine_*, fax, unknown.
    answered_by = request.POST.get("AnsweredBy", "")
    answered = None if answered_by in ("", "unknown") else answered_by == "human"
    if status:
        callbacks.record_provider_status(
            page_id,
            kind="voice",
            status=status,
            error_code=request.POST.get("ErrorCode", ""),
            answered=answered,
            sid=request.POST.get("CallSid", ""),
        )
    return twiml_response(empty_twiml())


@csrf_exempt
@require_http_methods(["GET", "POST"])
def voice_twiml(request: HttpRequest, page_id: int) -> HttpResponse:
    """Answer a paging call that was picked up: read the incident and offer the keys."""
    if not verify_request(request):
        return HttpResponseForbidden(FORBIDDEN)
    page = Page.objects.select_related("incident__service").filter(pk=page_id).first()
    if page is None:
        return twiml_response(voice_say_twiml(messages.CALL_NO_LONGER_VALID))
    incidents = callbacks.carried_incidents(page)
    action = keypress_url(page.pk)
    if len(incidents) > 1:  # a bundle: one call for every incident held for this person
        speech = messages.for_bundle(incidents).speech + " Press 4 to acknowledge all of them."
        return twiml_response(voice_gather_twiml(speech, action))
    incident = page.incident
    message = messages.for_incident(incident)
    if incident.status == Status.RESOLVED:
        number = " ".join(str(incident.number))
        return twiml_response(
            voice_say_twiml(f"Muster. Incident {number} has been resolved meanwhile. Goodbye.")
        )
    speech = message.speech
    if incident.status == Status.ACKNOWLEDGED:
        speech += " It has been acknowledged."
    return twiml_response(voice_gather_twiml(speech, action))

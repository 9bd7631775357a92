"""Twilio: SMS and voice pages, webhook signatures and TwiML. The only module that imports the
Twilio SDK; surfaces and views use the helpers here.

The real `twilio.rest.Client` is pointed at `TWILIO_API_BASE_URL` (Twilio, a Twilio-compatible
provider, or tests/fakes/twilio.py) by an HTTP client that rewrites the API's origin.
"""

from __future__ import annotations

import hmac
import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, add_port, remove_port
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse
from urllib3.exceptions import MaxRetryError, NewConnectionError

from oncall.channels.base import Delivery, DeliveryError, Message

if TYPE_CHECKING:
    from django.http import HttpRequest

CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 10.0
RING_SECONDS = 30  # Twilio's default of 60 mostly reaches voicemail
GATHER_SECONDS = 10
KEYS = "Press 4 to acknowledge, 6 to resolve, 5 to escalate."
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
# api.twilio.com, or a regional edge (api.dublin.ie1.twilio.com) when TWILIO_EDGE is set.
_TWILIO_ORIGIN = re.compile(r"^https://api(?:\.[a-z0-9-]+)*\.twilio\.com(?=/|$)")


# --- the client ------------------------------------------------------------------------------


def rebase(url: str, base_url: str) -> str:
    """Return the SDK's `url` with Twilio's origin replaced by `base_url` (which may carry a
    path, as SignalWire's does)."""
    return _TWILIO_ORIGIN.sub(lambda _: base_url.rstrip("/"), url, count=1)


class RebasedHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending to `base_url` instead of https://api.twilio.com."""

    def __init__(self, base_url: str, timeout: float):
        super().__init__(pool_connections=True)
        self.base_url = base_url
        # requests takes (connect, read); the SDK's constructor check takes a single number.
        self.timeout = (min(CONNECT_TIMEOUT_SECONDS, timeout), timeout)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        return super().request(method, rebase(url, self.base_url), *args, **kwargs)


_local = threading.local()


def client() -> Client:
    """Return this thread's Twilio client for the current settings (its connections stay open
    between pages)."""
    key = (
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_BASE_URL,
        float(getattr(settings, "TWILIO_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)),
    )
    cached = getattr(_local, "client", None)
    if cached is None or cached[0] != key:
        if cached is not None:
            cached[1].http_client.session.close()
        http_client = RebasedHttpClient(key[2], key[3])
        cached = (key, Client(key[0], key[1], http_client=http_client))
        _local.client = cached
    return cached[1]


def delivery_error(exc: Exception) -> DeliveryError:
    """Translate what the SDK raised: Twilio's 4xx refusals are permanent (invalid number,
    opted out, bad credentials); 5xx, 429 and network trouble are worth retrying — unless the
    request may have reached Twilio, which has no idempotency key."""
    status = getattr(exc, "status", None)
    if isinstance(exc, TwilioException):
        code = getattr(exc, "code", None)
        text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or type(exc).__name__
        what = f"Twilio error {code}: {text}" + (f" (HTTP {status})" if status else "")
        retryable = isinstance(status, int) and (status >= 500 or status in (408, 429))
        return DeliveryError(what, permanent=not retryable)
    if _never_sent(exc):
        return DeliveryError(f"Twilio unreachable: {exc}")
    return DeliveryError(f"no answer from Twilio: {exc}", maybe_sent=True)


def _never_sent(exc: Exception) -> bool:
    if isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)
    # A bad TWILIO_API_BASE_URL and the like fail before anything is sent.
    return not isinstance(
        exc, requests.Timeout | requests.exceptions.ChunkedEncodingError | requests.ConnectionError
    )


def _create(resource: Any, **params: Any) -> str:
    try:
        return resource.create(**params).sid
    except (TwilioException, requests.RequestException) as exc:
        raise delivery_error(exc) from exc


# --- the channels ----------------------------------------------------------------------------


def status_callback_url(kind: str, page_id: int) -> str:
    return settings.PUBLIC_URL + reverse(f"twilio-status-{kind}", args=[page_id])


def voice_url(page_id: int) -> str:
    return settings.PUBLIC_URL + reverse("twilio-voice", args=[page_id])


def keypress_url(page_id: int, step: int = 0) -> str:
    """Return the absolute URL a paging call's Gather posts its key to. The view behind it is
    warroom's keypad surface (warroom.surfaces.voice): the key is a command, which oncall does
    not run; the URL name is the only tie, since oncall never imports warroom. `step` counts
    the call's Gathers (a key acts once per call and step); the signature covers it."""
    return settings.PUBLIC_URL + reverse("twilio-voice-keypress", args=[page_id]) + f"?step={step}"


class SmsChannel:
    name = "sms"
    provider = "twilio"

    def send(self, delivery: Delivery, message: Message) -> str:
        """Text the message; return the message SID."""
        sender = settings.TWILIO_FROM_NUMBER
        params: dict[str, Any] = {"to": delivery.address, "body": message.sms}
        if sender.startswith("MG"):
            params["messaging_service_sid"] = sender
        else:
            params["from_"] = sender
        if delivery.page_id is not None:  # a verification code has no status to report
            params["status_callback"] = status_callback_url("sms", delivery.page_id)
        return _create(client().messages, **params)


class VoiceChannel:
    name = "voice"
    provider = "twilio"

    def send(self, delivery: Delivery, message: Message) -> str:
        """Call; for a page Twilio fetches what to say from `voice_url` when the phone is
        answered (so the call reads the incident as it is then). Return the call SID."""
        params: dict[str, Any] = {"to": delivery.address, "from_": settings.TWILIO_FROM_NUMBER}
        if delivery.page_id is not None:
            params.update(
                url=voice_url(delivery.page_id),
                method="POST",
                status_callback=status_callback_url("voice", delivery.page_id),
                status_callback_method="POST",
                status_callback_event=CALL_EVENTS,
            )
        else:
            params["twiml"] = voice_say_twiml(message.speech)
        return _create(client().calls, timeout=RING_SECONDS, **params)


# --- webhooks --------------------------------------------------------------------------------


def verify_request(request: HttpRequest) -> bool:
    """Return whether `request` carries Twilio's signature for the URL it was sent to (under
    PUBLIC_URL) and its POST parameters. Without an auth token nothing is verified."""
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = settings.PUBLIC_URL + request.get_full_path()
    params = request.POST if request.method == "POST" else {}
    validator = RequestValidator(token)
    # Twilio signs the URL as given, but some of its requests add or drop the default port.
    candidates = {url, add_port(urlparse(url)), remove_port(urlparse(url))}
    matches = [
        hmac.compare_digest(validator.compute_signature(c, params).encode(), signature.encode())
        for c in sorted(candidates)
    ]
    return any(matches)


def voice_gather_twiml(speech: str, action_url: str) -> str:
    """Return TwiML that reads `speech` and the keys, twice, gathering one key for
    `action_url`, then hangs up. Speech that already offers the keys is not given them again."""
    text = speech if KEYS in speech else f"{speech} {KEYS}"
    response = VoiceResponse()
    gather = response.gather(action=action_url, method="POST", num_digits=1, timeout=GATHER_SECONDS)
    # Read twice: the first reading is often what wakes the person up. A key interrupts it.
    gather.say(text, loop=2)
    response.hangup()
    return response.to_xml()


def voice_say_twiml(text: str) -> str:
    """Return TwiML that says `text` and hangs up."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return response.to_xml()


def sms_reply_twiml(text: str) -> str:
    """Return TwiML that answers an incoming SMS with `text` (nothing, if empty)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return response.to_xml()


def empty_twiml() -> str:
    """Return an empty TwiML answer (for status callbacks)."""
    return VoiceResponse().to_xml()


def twiml_response(twiml: str) -> HttpResponse:
    """Return the HTTP answer to a Twilio webhook that carries `twiml`."""
    return HttpResponse(twiml, content_type="text/xml; charset=utf-8")

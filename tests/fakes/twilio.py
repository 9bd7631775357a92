"""A Twilio-REST-compatible server on loopback, and the webhooks Twilio would send back.

Muster's real `twilio.rest.Client` talks to it (`TWILIO_API_BASE_URL`), the way GoAlert's
devtools/mocktwilio stands in for Twilio: no network, nothing patched.

It serves what the SDK calls to page people, with HTTP basic auth (account SID : auth token):

- `POST /2010-04-01/Accounts/{AC…}/Messages.json` (To, From or MessagingServiceSid, Body,
  StatusCallback) and `POST …/Calls.json` (To, From, Url or Twiml, Method, StatusCallback,
  StatusCallbackEvent, Timeout, MachineDetection, …), answered `201` with Twilio's JSON;
- `GET …/Messages/{SM…}.json`, `GET …/Calls/{CA…}.json`, and `POST …/Calls/{CA…}.json` (Status)
  to hang up;
- Twilio's error JSON (`code`, `message`, `more_info`, `status`) for what Twilio refuses: a `To`
  that is not E.164 (21211), missing parameters, bad credentials (20003), and whatever a test
  asks for (`fail_number`, `fail_next`), plus requests held open (`hold_next`) or accepted and
  never answered (`hang_next`).

It records every message, call and request (`received_at` is `time.time()` on arrival), and
sends Muster what Twilio would, signed with `X-Twilio-Signature` by the SDK's own
`RequestValidator`: delivery-status callbacks, a call fetching its TwiML and pressing keys on
its `<Gather>`, and inbound SMS.

In a test: the `fake_twilio` fixture (tests/oncall/conftest.py), or `with FakeTwilio() as fake:`.
As a process, for benchmarks and crash tests:

    python -m tests.fakes.twilio --port 0 --auth-token T [--muster-url http://127.0.0.1:8000]

prints `FAKE_TWILIO_URL=http://127.0.0.1:<port>` and serves until SIGTERM or Ctrl-C; the same
knobs and records are then reached over HTTP under `/_fake/` (see `_CONTROL`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from twilio.request_validator import RequestValidator

from tests.fakes.loopback import LoopbackServer

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "f" * 32
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ROUTE = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/(?P<resource>Messages|Calls)"
    r"(?:/(?P<sid>[^/]+))?\.json$"
)
# Twilio sends a call's progress to its StatusCallback only for the events it asked for.
CALL_STATUS_EVENT = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    "completed": "completed",
    "busy": "completed",
    "no-answer": "completed",
    "failed": "completed",
    "canceled": "completed",
}
_DEFAULT_ERRORS = {
    400: (21211, "Invalid 'To' Phone Number"),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


class FakeTwilioError(AssertionError):
    """The fake was asked for something the recorded state cannot give (no such call, no
    Gather in the TwiML, …)."""


def new_sid(prefix: str) -> str:
    """Return a Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def _twilio_date(at: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(at))


@dataclass(frozen=True)
class Failure:
    """An error answer, as Twilio shapes it."""

    status: int
    code: int
    message: str

    def json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def failure(status: int, code: int | None = None, message: str | None = None) -> Failure:
    default_code, default_message = _DEFAULT_ERRORS.get(status, (status, "Error"))
    return Failure(status, code if code is not None else default_code, message or default_message)


class Hold(threading.Event):
    """A request held open: `arrived` is set when it reaches the fake (already recorded);
    `set()` (or `release()`) lets the fake answer it."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()

    release = threading.Event.set


@dataclass
class FakeMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    messaging_service_sid: str
    params: dict[str, str]
    received_at: float
    status: str = "queued"
    error_code: str = ""


@dataclass
class FakeCall:
    sid: str
    account_sid: str
    to: str
    from_: str
    url: str
    method: str
    twiml: str
    status_callback: str
    status_callback_method: str
    status_callback_events: list[str]
    timeout: int | None
    machine_detection: str
    params: dict[str, str]
    received_at: float
    status: str = "queued"


@dataclass
class FakeRequest:
    """One request to the REST API, whatever became of it."""

    method: str
    path: str
    params: dict[str, list[str]]
    received_at: float
    status: int = 0  # what the fake answered; 0 while held, or when it never answered
    account_sid: str = ""


@dataclass
class Reply:
    """What Muster answered to a request the fake sent it."""

    url: str
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def xml(self) -> ET.Element:
        """Return the TwiML document of the answer."""
        return ET.fromstring(self.body)  # noqa: S314 - Muster's own answer, in tests

    @property
    def text(self) -> str:
        """Return everything the TwiML says or texts, as one string."""
        return " ".join(t.strip() for t in self.xml().itertext() if t.strip())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # answer the 3xx itself: a redirected webhook is a bug to see


# No proxies from the environment: the fake only ever talks to loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


class FakeTwilio(LoopbackServer):
    """Twilio's REST API on 127.0.0.1, in a thread; see the module docstring."""

    thread_name = "fake-twilio"

    def __init__(
        self,
        *,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        account_sid: str | None = DEFAULT_ACCOUNT_SID,
        host: str = "127.0.0.1",
        port: int = 0,
        muster_url: str = "",
    ):
        # account_sid None: any AC… SID is accepted, as long as it is also the username.
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.muster_url = muster_url.rstrip("/")
        self.latency = 0.0  # seconds added before every API answer
        self._lock = threading.Condition()
        self._messages: list[FakeMessage] = []
        self._calls: list[FakeCall] = []
        self._requests: list[FakeRequest] = []
        self._failing_numbers: dict[str, Failure] = {}
        self._next: deque[Failure | Hold | str] = deque()
        self._holds: list[Hold] = []
        self._stopping = threading.Event()
        self._bind(host, port)

    # --- lifecycle (start, url, the context manager: LoopbackServer) ---------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def stop(self) -> None:
        """Stop serving; held and hung requests are let go (a hung one is closed unanswered)."""
        self._stopping.set()
        self.release_all()
        super().stop()

    def serve_forever(self) -> None:
        assert self._server is not None
        try:
            self._server.serve_forever()
        finally:
            self._stopping.set()
            self.release_all()
            self._server.server_close()

    # --- what the API does next --------------------------------------------------------------

    def fail_number(
        self, number: str, *, code: int = 21211, status: int = 400, message: str | None = None
    ) -> None:
        """Refuse every message and call to `number` (21211 invalid number by default; 21610
        opted out, 21614 not a mobile number, …)."""
        with self._lock:
            self._failing_numbers[number] = failure(
                status, code, message or f"The 'To' number {number} is not a valid phone number."
            )

    def fail_next(
        self, count: int = 1, *, status: int = 500, code: int | None = None, message: str = ""
    ) -> None:
        """Answer the next `count` API requests with an error (500 by default, or 429, 503…)."""
        with self._lock:
            self._next.extend(failure(status, code, message or None) for _ in range(count))

    def hold_next(self) -> Hold:
        """Hold the next API request open, once recorded, until the returned event is set."""
        hold = Hold()
        with self._lock:
            self._next.append(hold)
            self._holds.append(hold)
        return hold

    def hang_next(self, count: int = 1) -> None:
        """Accept (and record) the next `count` API requests but never answer them."""
        with self._lock:
            self._next.extend("hang" for _ in range(count))

    def release_all(self) -> None:
        with self._lock:
            holds, self._holds = self._holds, []
        for hold in holds:
            hold.set()

    def reset(self) -> None:
        """Forget records and configured failures; let held requests go."""
        self.release_all()
        with self._lock:
            self._messages.clear()
            self._calls.clear()
            self._requests.clear()
            self._failing_numbers.clear()
            self._next.clear()
            self.latency = 0.0

    # --- records -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[FakeMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def calls(self) -> list[FakeCall]:
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[FakeRequest]:
        with self._lock:
            return list(self._requests)

    def message(self, sid: str) -> FakeMessage:
        with self._lock:
            for message in self._messages:
                if message.sid == sid:
                    return message
        raise FakeTwilioError(f"no message {sid}")

    def call(self, sid: str) -> FakeCall:
        with self._lock:
            for call in self._calls:
                if call.sid == sid:
                    return call
        raise FakeTwilioError(f"no call {sid}")

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[FakeMessage]:
        """Return the messages once there are at least `count` (raise after `timeout`)."""
        return self._wait(lambda: self._messages, count, timeout, "messages")

    def wait_for_calls(self, count: int = 1, timeout: float = 10.0) -> list[FakeCall]:
        """Return the calls once there are at least `count` (raise after `timeout`)."""
        return self._wait(lambda: self._calls, count, timeout, "calls")

    def _wait(self, records: Callable[[], list], count: int, timeout: float, what: str) -> list:
        with self._lock:
            if not self._lock.wait_for(lambda: len(records()) >= count, timeout=timeout):
                raise FakeTwilioError(f"{len(records())} {what} after {timeout} s, not {count}")
            return list(records())

    # --- what Twilio sends Muster ------------------------------------------------------------

    def signed_request(self, url: str, params: dict[str, str], *, method: str = "POST") -> Reply:
        """Send `params` to `url` (absolute, or a path under `muster_url`) as Twilio does:
        form-encoded (in the query string for GET), signed with X-Twilio-Signature."""
        url = self._absolute(url)
        data = None
        if method.upper() == "GET":
            if params:
                sep = "&" if urllib.parse.urlsplit(url).query else "?"
                url = url + sep + urllib.parse.urlencode(params)
            signature = RequestValidator(self.auth_token).compute_signature(url, {})
        else:
            data = urllib.parse.urlencode(params).encode()
            signature = RequestValidator(self.auth_token).compute_signature(url, params)
        if not url.startswith(("http://", "https://")):
            raise FakeTwilioError(f"Twilio only requests http(s) URLs, not {url}")
        request = urllib.request.Request(url, data=data, method=method.upper())  # noqa: S310
        request.add_header("X-Twilio-Signature", signature)
        request.add_header("I-Twilio-Idempotency-Token", str(uuid.uuid4()))
        request.add_header("User-Agent", "TwilioProxy/1.1")
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with _opener.open(request, timeout=15) as response:
                return Reply(url, response.status, response.read().decode(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Reply(url, exc.code, exc.read().decode(errors="replace"), dict(exc.headers))

    def send_message_status(self, sid: str, status: str, *, error_code: str | int = "") -> Reply:
        """Post a message's delivery status (queued, sent, delivered, undelivered, failed) to
        its StatusCallback, as Twilio does."""
        message = self.message(sid)
        if not message.status_callback:
            raise FakeTwilioError(f"message {sid} has no StatusCallback")
        with self._lock:
            message.status = status
            message.error_code = str(error_code or "")
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "To": message.to,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code:
            params["ErrorCode"] = str(error_code)
        return self.signed_request(message.status_callback, params)

    def send_call_status(
        self, sid: str, status: str, *, answered_by: str = "", duration: int = 0
    ) -> Reply | None:
        """Post a call's progress (initiated, ringing, in-progress, completed, busy,
        no-answer, failed, canceled) to its StatusCallback if the call asked for that event
        (Twilio sends `completed` only, unless told otherwise); return None if it did not."""
        call = self.call(sid)
        with self._lock:
            call.status = status
        events = call.status_callback_events or ["completed"]
        if not call.status_callback or CALL_STATUS_EVENT.get(status) not in events:
            return None
        params = self._call_params(call, status)
        params["CallbackSource"] = "call-progress-events"
        params["SequenceNumber"] = str(list(CALL_STATUS_EVENT).index(status))
        params["Timestamp"] = _twilio_date(time.time())
        if answered_by:
            params["AnsweredBy"] = answered_by
        if CALL_STATUS_EVENT.get(status) == "completed":
            params["CallDuration"] = params["Duration"] = str(duration)
        return self.signed_request(
            call.status_callback, params, method=call.status_callback_method or "POST"
        )

    def fetch_twiml(self, sid: str) -> Reply:
        """Answer the call: fetch its TwiML from its Url, as Twilio does when the phone is
        picked up (or return the inline Twiml it was given)."""
        call = self.call(sid)
        with self._lock:
            call.status = "in-progress"
        if call.twiml:
            return Reply("", 200, call.twiml, {"Content-Type": "text/xml"})
        return self.signed_request(
            call.url, self._call_params(call, "in-progress"), method=call.method or "POST"
        )

    def press_keys(self, sid: str, digits: str, *, twiml: Reply | None = None) -> Reply:
        """Press `digits` on the call: post them to the `<Gather>`'s action in its TwiML
        (fetched now unless given), as Twilio does."""
        call = self.call(sid)
        twiml = twiml or self.fetch_twiml(sid)
        if twiml.status != 200:
            raise FakeTwilioError(f"the call's TwiML answered {twiml.status}: {twiml.body[:200]}")
        gather = twiml.xml().find(".//Gather")
        if gather is None:
            raise FakeTwilioError(f"the call's TwiML has no <Gather>: {twiml.body[:500]}")
        # Without an action, Twilio posts the digits to the document's own URL.
        action = urllib.parse.urljoin(twiml.url or call.url, gather.get("action") or "")
        params = self._call_params(call, "in-progress")
        params["Digits"] = digits
        params["FinishedOnKey"] = ""
        return self.signed_request(action, params, method=gather.get("method") or "POST")

    def answer_call(self, sid: str, digits: str = "") -> Reply:
        """Play a whole call: ringing, answered (TwiML fetched), `digits` pressed if any, then
        completed. Return the TwiML answer, or the keypress answer."""
        self.send_call_status(sid, "ringing")
        self.send_call_status(sid, "in-progress", answered_by="human" if digits else "")
        reply = self.fetch_twiml(sid)
        if digits:
            reply = self.press_keys(sid, digits, twiml=reply)
        self.send_call_status(sid, "completed", duration=20)
        return reply

    def send_inbound_sms(
        self, from_: str, body: str, *, to: str = "", url: str = "/twilio/sms/"
    ) -> Reply:
        """Post an SMS someone sent to our number to Muster's incoming-message URL."""
        sid = new_sid("SM")
        params = {
            "AccountSid": self.account_sid or DEFAULT_ACCOUNT_SID,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "From": from_,
            "To": to or self._our_number(),
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
        }
        return self.signed_request(url, params)

    def _our_number(self) -> str:
        with self._lock:
            for record in [*self._messages, *self._calls]:
                if record.from_:
                    return record.from_
        return "+15005550006"

    def _call_params(self, call: FakeCall, status: str) -> dict[str, str]:
        return {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Direction": "outbound-api",
            "From": call.from_,
            "Caller": call.from_,
            "To": call.to,
            "Called": call.to,
        }

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        if not self.muster_url:
            raise FakeTwilioError(f"{url} is relative and the fake has no muster_url")
        return self.muster_url + "/" + url.lstrip("/")

    # --- the REST API ------------------------------------------------------------------------

    def _api(self, method: str, path: str, headers, body: bytes) -> tuple[Any, Any]:
        """Answer one API request: return (status, JSON), or ("hang", None)."""
        received_at = time.time()
        params = urllib.parse.parse_qs(body.decode(errors="replace"), keep_blank_values=True)
        record = FakeRequest(method, path, params, received_at)
        with self._lock:
            self._requests.append(record)
            self._lock.notify_all()
        status, payload = self._answer(record, headers)
        record.status = status if isinstance(status, int) else 0
        return status, payload

    def _answer(self, record: FakeRequest, headers) -> tuple[Any, Any]:
        route = _ROUTE.match(urllib.parse.urlsplit(record.path).path)
        if route is None:
            return 404, failure(404, 20404, f"The requested resource {record.path} was not found")
        record.account_sid = account = route["account"]
        if not self._authenticated(account, headers.get("Authorization", "")):
            return 401, failure(401)
        with self._lock:
            rule = self._next.popleft() if self._next else None
        if isinstance(rule, Failure):
            return rule.status, rule
        one = {k: v[-1] for k, v in record.params.items()}
        resource, sid = route["resource"], route["sid"]
        if record.method == "GET" and sid:
            found = self._find(resource, sid)
            return (200, found) if found else (404, failure(404))
        if record.method != "POST":
            return 405, failure(405, 20004, "Method not allowed")
        if sid:
            return self._update(resource, sid, one)
        refused = self._refusal(resource, one)
        if refused is not None:
            return refused.status, refused
        created = self._create(resource, account, one, record)
        self._wait_as_told(rule)
        if rule == "hang":
            return "hang", None
        return 201, created

    def _authenticated(self, account: str, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        expected_account = self.account_sid or account
        return (
            user == account == expected_account
            and account.startswith("AC")
            and hmac.compare_digest(password.encode(), self.auth_token.encode())
        )

    def _refusal(self, resource: str, params: dict[str, str]) -> Failure | None:
        to, from_ = params.get("To", ""), params.get("From", "")
        if resource == "Messages":
            if not to:
                return failure(400, 21604, "A 'To' phone number is required.")
            if not from_ and not params.get("MessagingServiceSid"):
                return failure(400, 21603, "A 'From' phone number is required.")
            if not params.get("Body") and not params.get("MediaUrl"):
                return failure(400, 21602, "Message body is required.")
            if len(params.get("Body", "")) > 1600:
                return failure(
                    400, 21617, "The concatenated message body exceeds the 1600 character limit."
                )
        else:
            if not to:
                return failure(400, 21201, "No 'To' number is specified")
            if not from_:
                return failure(400, 21213, "No 'From' number is specified")
            url = params.get("Url", "")
            instructed = params.get("Twiml") or params.get("ApplicationSid")
            if not instructed and not url.startswith(("http://", "https://")):
                return failure(400, 21205, f"Url is not a valid URL: {url}")
        with self._lock:
            refused = self._failing_numbers.get(to)
        if refused is not None:
            return refused
        if not E164.match(to):
            return failure(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        return None

    def _create(
        self, resource: str, account: str, params: dict[str, str], record: FakeRequest
    ) -> dict[str, Any]:
        if resource == "Messages":
            message = FakeMessage(
                sid=new_sid("SM"),
                account_sid=account,
                to=params["To"],
                from_=params.get("From", ""),
                body=params.get("Body", ""),
                status_callback=params.get("StatusCallback", ""),
                messaging_service_sid=params.get("MessagingServiceSid", ""),
                params=params,
                received_at=record.received_at,
                status="accepted" if params.get("MessagingServiceSid") else "queued",
            )
            with self._lock:
                self._messages.append(message)
                self._lock.notify_all()
            return _message_json(message)
        timeout = params.get("Timeout", "")
        call = FakeCall(
            sid=new_sid("CA"),
            account_sid=account,
            to=params["To"],
            from_=params["From"],
            url=params.get("Url", ""),
            method=params.get("Method", "POST"),
            twiml=params.get("Twiml", ""),
            status_callback=params.get("StatusCallback", ""),
            status_callback_method=params.get("StatusCallbackMethod", "POST"),
            status_callback_events=record.params.get("StatusCallbackEvent", []),
            timeout=int(timeout) if timeout.isdigit() else None,
            machine_detection=params.get("MachineDetection", ""),
            params=params,
            received_at=record.received_at,
        )
        with self._lock:
            self._calls.append(call)
            self._lock.notify_all()
        return _call_json(call)

    def _find(self, resource: str, sid: str) -> dict[str, Any] | None:
        with contextlib.suppress(FakeTwilioError):
            if resource == "Messages":
                return _message_json(self.message(sid))
            return _call_json(self.call(sid))
        return None

    def _update(self, resource: str, sid: str, params: dict[str, str]) -> tuple[int, Any]:
        if resource != "Calls":
            return 405, failure(405, 20004, "Method not allowed")
        try:
            call = self.call(sid)
        except FakeTwilioError:
            return 404, failure(404)
        if params.get("Status") in ("canceled", "completed"):
            with self._lock:
                call.status = params["Status"]
        return 200, _call_json(call)

    def _wait_as_told(self, rule: Failure | Hold | str | None) -> None:
        if self.latency:
            time.sleep(self.latency)
        if isinstance(rule, Hold):
            rule.arrived.set()
            while not rule.is_set() and not self._stopping.is_set():
                rule.wait(0.05)
        elif rule == "hang":
            self._stopping.wait()

    # --- control over HTTP, for the standalone process ---------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        action = path.removeprefix("/_fake/").strip("/")
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        if method == "GET" and action in ("messages", "calls", "requests"):
            return 200, [asdict(r) for r in getattr(self, action)]
        handler = _CONTROL.get(action) if method == "POST" else None
        if handler is None:
            return 404, {"error": f"no {method} /_fake/{action}", "actions": sorted(_CONTROL)}
        try:
            return 200, handler(self, **args)
        except (TypeError, FakeTwilioError) as exc:
            return 400, {"error": str(exc)}


def _reply_json(reply: Reply | None) -> dict[str, Any] | None:
    return None if reply is None else {"status": reply.status, "body": reply.body}


def _hold_over_http(fake: FakeTwilio) -> dict[str, Any]:
    fake.hold_next()
    return {"held": len(fake._holds)}


# POST /_fake/<action> with a JSON object of keyword arguments.
_CONTROL: dict[str, Callable[..., Any]] = {
    "reset": lambda fake: fake.reset(),
    "fail-next": lambda fake, **kw: fake.fail_next(**kw),
    "fail-number": lambda fake, number, **kw: fake.fail_number(number, **kw),
    "hold-next": _hold_over_http,
    "release": lambda fake: fake.release_all(),
    "hang-next": lambda fake, count=1: fake.hang_next(count),
    "latency": lambda fake, seconds: setattr(fake, "latency", float(seconds)),
    "message-status": lambda fake, sid, status, error_code="": _reply_json(
        fake.send_message_status(sid, status, error_code=error_code)
    ),
    "call-status": lambda fake, sid, status, answered_by="": _reply_json(
        fake.send_call_status(sid, status, answered_by=answered_by)
    ),
    "press": lambda fake, sid, digits: _reply_json(fake.press_keys(sid, digits)),
    "answer": lambda fake, sid, digits="": _reply_json(fake.answer_call(sid, digits)),
    "inbound-sms": lambda fake, body, url="/twilio/sms/", to="", **kw: _reply_json(
        fake.send_inbound_sms(kw["from"], body, to=to, url=url)
    ),
}


# GSM 03.38, in which Twilio counts a message unless one character forces UCS-2: its basic
# alphabet, and the extension table whose characters cost two septets (an escape and itself).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


def num_segments(body: str) -> int:
    """How many segments Twilio bills `body` as: GSM-7 (160 septets alone, 153 a segment when
    concatenated, an escape pair never split) or else UCS-2 (70, 67 UTF-16 units)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in body):
        units = [2 if c in _GSM_EXTENSION else 1 for c in body]
        single, part = 160, 153
    else:
        units = [2 if ord(c) > 0xFFFF else 1 for c in body]
        single, part = 70, 67
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for unit in units:
        if used + unit > part:
            count, used = count + 1, 0
        used += unit
    return count


def _message_json(message: FakeMessage) -> dict[str, Any]:
    created = _twilio_date(message.received_at)
    uri = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": created,
        "date_sent": None,
        "date_updated": created,
        "direction": "outbound-api",
        "error_code": int(message.error_code) if message.error_code else None,
        "error_message": None,
        "from": message.from_ or None,
        "messaging_service_sid": message.messaging_service_sid or None,
        "num_media": "0",
        "num_segments": str(num_segments(message.body)),
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def _call_json(call: FakeCall) -> dict[str, Any]:
    created = _twilio_date(call.received_at)
    uri = f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}"
    return {
        "account_sid": call.account_sid,
        "annotation": None,
        "answered_by": None,
        "api_version": API_VERSION,
        "caller_name": None,
        "date_created": created,
        "date_updated": created,
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": call.from_,
        "from_formatted": call.from_,
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": "PN" + "0" * 32,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": call.sid,
        "start_time": None,
        "status": call.status,
        "subresource_uris": {
            "notifications": f"{uri}/Notifications.json",
            "recordings": f"{uri}/Recordings.json",
        },
        "to": call.to,
        "to_formatted": call.to,
        "trunk_sid": None,
        "uri": f"{uri}.json",
    }


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled session expects
        server_version = "FakeTwilio/1.0"

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/_fake/"):
                status, payload = fake._control(self.command, self.path, body)
            else:
                status, payload = fake._api(self.command, self.path, self.headers, body)
            if status == "hang":
                self.close_connection = True  # closed unanswered when the fake stops
                return
            if isinstance(payload, Failure):
                payload = payload.json()
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests read the records, not a log

    return Handler


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeTwilio]:
    """Run a fake for the duration of a `with` block."""
    with FakeTwilio(**kwargs) as fake:
        yield fake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.twilio", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument(
        "--account-sid", default="", help="the one account accepted (default: any AC… SID)"
    )
    parser.add_argument("--muster-url", default="", help="where relative webhook paths go")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API answer")
    args = parser.parse_args(argv)
    fake = FakeTwilio(
        auth_token=args.auth_token,
        account_sid=args.account_sid or None,
        host=args.host,
        port=args.port,
        muster_url=args.muster_url,
    )
    fake.latency = args.latency

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it must not run in the serving thread.
        threading.Thread(target=fake._server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"FAKE_TWILIO_URL={fake.url}", flush=True)
    fake.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Twilio fake itself: Twilio's REST contract for the real SDK, failures on demand, and
webhooks signed exactly as Twilio signs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from oncall.channels.twilio import RebasedHttpClient
from tests.fakes.twilio import DEFAULT_ACCOUNT_SID, FakeTwilio, FakeTwilioError

SID = DEFAULT_ACCOUNT_SID
TOKEN = "fake-test-token"
US = "+15005550006"
THEM = "+14155550101"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(auth_token=TOKEN) as fake:
        yield fake


def sdk(fake: FakeTwilio, token: str = TOKEN, timeout: float = 5.0) -> Client:
    return Client(SID, token, http_client=RebasedHttpClient(fake.url, timeout))


def raw_post(fake: FakeTwilio, resource: str, params: dict, token: str = TOKEN):
    return requests.post(
        f"{fake.url}/2010-04-01/Accounts/{SID}/{resource}.json",
        data=params,
        auth=(SID, token),
        timeout=5,
    )


# --- the REST API ------------------------------------------------------------------------------


def test_a_message_is_created_recorded_and_answered_as_twilio_does(fake):
    before = time.time()
    sent = sdk(fake).messages.create(
        to=THEM, from_=US, body="Muster #1042", status_callback="http://muster/cb/"
    )
    [message] = fake.messages
    assert sent.sid == message.sid and sent.sid.startswith("SM") and len(sent.sid) == 34
    assert (sent.status, sent.to, sent.from_, sent.body) == ("queued", THEM, US, "Muster #1042")
    assert sent.account_sid == SID and sent.direction == "outbound-api"
    assert (message.to, message.from_, message.body) == (THEM, US, "Muster #1042")
    assert message.status_callback == "http://muster/cb/"
    assert before <= message.received_at <= time.time()
    assert sdk(fake).messages(sent.sid).fetch().body == "Muster #1042"


def test_a_call_is_created_with_its_instructions_and_events(fake):
    call = sdk(fake).calls.create(
        to=THEM,
        from_=US,
        url="http://muster/voice/1/",
        status_callback="http://muster/status/1/",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        timeout=30,
        machine_detection="Enable",
    )
    [recorded] = fake.calls
    assert call.sid == recorded.sid and call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    assert recorded.url == "http://muster/voice/1/" and recorded.method == "POST"
    assert recorded.status_callback_events == ["initiated", "ringing", "answered", "completed"]
    assert (recorded.timeout, recorded.machine_detection) == (30, "Enable")


def test_twilio_error_json_for_an_invalid_number(fake):
    response = raw_post(fake, "Messages", {"To": "555-0101", "From": US, "Body": "hi"})
    assert response.status_code == 400
    assert response.json() == {
        "code": 21211,
        "message": "The 'To' number 555-0101 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    assert fake.messages == []


@pytest.mark.parametrize(
    ("resource", "params", "code"),
    [
        ("Messages", {"From": US, "Body": "hi"}, 21604),
        ("Messages", {"To": THEM, "Body": "hi"}, 21603),
        ("Messages", {"To": THEM, "From": US}, 21602),
        ("Messages", {"To": THEM, "From": US, "Body": "x" * 1601}, 21617),
        ("Calls", {"From": US, "Url": "http://muster/"}, 21201),
        ("Calls", {"To": THEM, "Url": "http://muster/"}, 21213),
        ("Calls", {"To": THEM, "From": US}, 21205),
    ],
)
def test_missing_or_invalid_parameters_are_refused(fake, resource, params, code):
    response = raw_post(fake, resource, params)
    assert (response.status_code, response.json()["code"]) == (400, code)


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_credentials_get_twilios_401(fake, token):
    with pytest.raises(TwilioRestException) as caught:
        sdk(fake, token=token).messages.create(to=THEM, from_=US, body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert fake.messages == [] and [r.status for r in fake.requests] == [401]


def test_another_account_sid_is_refused(fake):
    other = "AC" + "1" * 32
    response = requests.post(
        f"{fake.url}/2010-04-01/Accounts/{other}/Messages.json",
        data={"To": THEM, "From": US, "Body": "hi"},
        auth=(other, TOKEN),
        timeout=5,
    )
    assert response.status_code == 401


def test_a_number_can_be_made_to_fail_always(fake):
    fake.fail_number(THEM, code=21610, message="Attempt to send to unsubscribed recipient")
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            sdk(fake).messages.create(to=THEM, from_=US, body="hi")
        assert (caught.value.status, caught.value.code) == (400, 21610)
    sdk(fake).messages.create(to="+14155550102", from_=US, body="hi")
    assert [m.to for m in fake.messages] == ["+14155550102"]


def test_the_next_requests_can_fail_then_twilio_recovers(fake):
    fake.fail_next(2, status=500)
    fake.fail_next(1, status=429)
    answers = []
    for _ in range(4):
        try:
            sdk(fake).messages.create(to=THEM, from_=US, body="hi")
            answers.append(201)
        except TwilioRestException as exc:
            answers.append((exc.status, exc.code))
    assert answers == [(500, 20500), (500, 20500), (429, 20429), 201]
    assert len(fake.messages) == 1
    assert [r.status for r in fake.requests] == [500, 500, 429, 201]


def test_a_held_request_is_recorded_on_arrival_and_answered_on_release(fake):
    hold = fake.hold_next()
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            sid=sdk(fake).messages.create(to=THEM, from_=US, body="held").sid
        )
    )
    thread.start()
    assert hold.arrived.wait(5)
    [message] = fake.messages
    assert fake.requests[0].status == 0  # not answered yet
    assert thread.is_alive()
    hold.set()
    thread.join(5)
    assert result["sid"] == message.sid
    assert fake.requests[0].status == 201


def test_a_hung_request_is_accepted_and_never_answered(fake):
    fake.hang_next()
    with pytest.raises(requests.ReadTimeout):
        sdk(fake, timeout=0.5).messages.create(to=THEM, from_=US, body="lost answer")
    assert [m.body for m in fake.messages] == ["lost answer"]
    # The next request is answered as usual.
    assert sdk(fake).messages.create(to=THEM, from_=US, body="next").status == "queued"


def test_latency_delays_every_answer(fake):
    fake.latency = 0.2
    started = time.monotonic()
    sdk(fake).messages.create(to=THEM, from_=US, body="slow")
    assert time.monotonic() - started >= 0.2


def test_wait_for_messages_returns_once_they_arrive(fake):
    threading.Timer(0.1, lambda: sdk(fake).messages.create(to=THEM, from_=US, body="later")).start()
    [message] = fake.wait_for_messages(1, timeout=5)
    assert message.body == "later"
    with pytest.raises(FakeTwilioError):
        fake.wait_for_calls(1, timeout=0.1)


# --- what the fake sends back --------------------------------------------------------------------


class Receiver:
    """A stand-in for Muster: records what it is sent and answers with TwiML."""

    def __init__(self):
        self.received: list[dict] = []
        self.twiml = "<Response/>"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer(b"")

            def do_POST(self):
                self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _answer(self, body: bytes):
                receiver.received.append(
                    {
                        "method": self.command,
                        "url": receiver.url + self.path,
                        "path": self.path,
                        "params": dict(
                            urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
                        ),
                        "signature": self.headers.get("X-Twilio-Signature"),
                    }
                )
                data = receiver.twiml.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def signed_correctly(self, request: dict) -> bool:
        return RequestValidator(TOKEN).validate(
            request["url"], request["params"], request["signature"]
        )


@pytest.fixture
def muster() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_message_status_callbacks_are_signed_as_twilio_signs_them(fake, muster):
    sent = sdk(fake).messages.create(
        to=THEM, from_=US, body="hi", status_callback=muster.url + "/status/sms/7/"
    )
    assert fake.send_message_status(sent.sid, "sent").status == 200
    assert fake.send_message_status(sent.sid, "undelivered", error_code=30003).status == 200
    first, second = muster.received
    assert all(muster.signed_correctly(r) for r in muster.received)
    assert first["path"] == "/status/sms/7/"
    assert first["params"]["MessageStatus"] == "sent" and "ErrorCode" not in first["params"]
    assert (
        second["params"].items()
        >= {
            "MessageSid": sent.sid,
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
            "AccountSid": SID,
            "From": US,
            "To": THEM,
        }.items()
    )
    assert fake.message(sent.sid).status == "undelivered"


def test_a_tampered_callback_would_not_verify(fake, muster):
    sent = sdk(fake).messages.create(
        to=THEM, from_=US, body="hi", status_callback=muster.url + "/status/sms/7/"
    )
    fake.send_message_status(sent.sid, "delivered")
    [request] = muster.received
    request["params"]["MessageStatus"] = "failed"
    assert not muster.signed_correctly(request)


def test_call_status_callbacks_only_for_the_events_asked_for(fake, muster):
    call = sdk(fake).calls.create(
        to=THEM,
        from_=US,
        url=muster.url + "/voice/1/",
        status_callback=muster.url + "/status/voice/1/",
        status_callback_event=["ringing", "completed"],
    )
    assert fake.send_call_status(call.sid, "initiated") is None
    assert fake.send_call_status(call.sid, "ringing").status == 200
    assert fake.send_call_status(call.sid, "in-progress") is None
    assert fake.send_call_status(call.sid, "no-answer").status == 200
    assert [r["params"]["CallStatus"] for r in muster.received] == ["ringing", "no-answer"]
    assert all(muster.signed_correctly(r) for r in muster.received)


def test_a_call_fetches_its_twiml_and_presses_keys_on_the_gather(fake, muster):
    muster.twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/keys/?page=1" '
        'numDigits="1"><Say loop="2">Muster alert.</Say></Gather><Hangup/></Response>'
    )
    call = sdk(fake).calls.create(to=THEM, from_=US, url=muster.url + "/voice/1/")
    reply = fake.press_keys(call.sid, "4")
    fetch, press = muster.received
    assert (fetch["method"], fetch["path"]) == ("POST", "/voice/1/")
    assert fetch["params"]["CallSid"] == call.sid
    assert fetch["params"]["CallStatus"] == "in-progress"
    # A relative action resolves against the TwiML's URL; the query string is signed too.
    assert (press["path"], press["params"]["Digits"]) == ("/keys/?page=1", "4")
    assert all(muster.signed_correctly(r) for r in muster.received)
    assert reply.status == 200 and reply.text == "Muster alert."


def test_pressing_keys_on_twiml_without_gather_is_an_error(fake, muster):
    call = sdk(fake).calls.create(to=THEM, from_=US, url=muster.url + "/voice/1/")
    with pytest.raises(FakeTwilioError, match="no <Gather>"):
        fake.press_keys(call.sid, "4")


def test_a_get_voice_url_is_signed_with_its_query(fake, muster):
    call = sdk(fake).calls.create(to=THEM, from_=US, url=muster.url + "/voice/1/", method="GET")
    fake.fetch_twiml(call.sid)
    [request] = muster.received
    assert request["method"] == "GET" and "CallSid=" in request["path"]
    assert muster.signed_correctly(request)


def test_inbound_sms_goes_to_the_given_base_url(fake, muster):
    fake.muster_url = muster.url
    fake.send_inbound_sms(THEM, "ack 1042")
    [request] = muster.received
    assert request["path"] == "/twilio/sms/"
    expected = {"From": THEM, "Body": "ack 1042", "SmsStatus": "received"}
    assert request["params"].items() >= expected.items()
    assert request["params"]["MessageSid"].startswith("SM")
    assert muster.signed_correctly(request)


# --- as a process ------------------------------------------------------------------------------


def control(url: str, action: str, **args):
    """GET a record list, or POST an action with keyword arguments, to the fake's /_fake/."""
    get = action in ("messages", "calls", "requests")
    request = urllib.request.Request(  # noqa: S310 - the fake, on loopback
        f"{url}/_fake/{action}",
        data=None if get else json.dumps(args).encode(),
        method="GET" if get else "POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def test_the_fake_runs_as_a_process_with_control_over_http(tmp_path, muster):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.twilio",
            "--port",
            "0",
            "--auth-token",
            TOKEN,
            "--muster-url",
            muster.url,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("FAKE_TWILIO_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        client = Client(SID, TOKEN, http_client=RebasedHttpClient(url, 5))
        control(url, "fail-next", count=1, status=503)
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=THEM, from_=US, body="first")
        assert caught.value.status == 503
        sent = client.messages.create(
            to=THEM, from_=US, body="second", status_callback=muster.url + "/status/sms/1/"
        )
        [message] = control(url, "messages")
        assert (message["sid"], message["body"]) == (sent.sid, "second")
        assert control(url, "message-status", sid=sent.sid, status="delivered")["status"] == 200
        control(url, "inbound-sms", **{"from": THEM, "body": "4"})
        assert [r["path"] for r in muster.received] == ["/status/sms/1/", "/twilio/sms/"]
        assert all(muster.signed_correctly(r) for r in muster.received)
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0

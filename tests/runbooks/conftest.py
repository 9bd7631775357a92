"""Incidents with alerts to match against, and a real HTTP endpoint on loopback for actions."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertStatus, Integration, Kind
from incidents import opening
from incidents.models import Incident, Service, Source
from runbooks.models import Action, Runbook


@pytest.fixture
def integration(db, service) -> Integration:
    return Integration.objects.create(name="prometheus", kind=Kind.ALERTMANAGER, service=service)


@pytest.fixture
def make_incident(integration) -> Callable[..., Incident]:
    """Open an incident on `on` (default: the checkout service) with one alert per label set."""

    def make(*label_sets: dict, on: Service | None = None, links: list | None = None) -> Incident:
        on = on or integration.service
        incident = opening.open_incident(on, title="Disk full", severity=2, source=Source.ALERT)
        for index, labels in enumerate(label_sets):
            now = timezone.now()
            Alert.objects.create(
                integration=integration,
                fingerprint=f"{incident.number}-{index}",
                status=AlertStatus.FIRING,
                service=on,
                incident=incident,
                summary="Disk full",
                labels=labels,
                links=links if (links is not None and index == 0) else [],
                first_seen=now,
                last_seen=now,
            )
        return incident

    return make


@pytest.fixture
def make_runbook(alice) -> Callable[..., Runbook]:
    def make(title: str = "Disk full", **fields) -> Runbook:
        runbook = Runbook(title=title, body=fields.pop("body", f"# {title}\n\n1. Look."), **fields)
        runbook.save(author=alice)
        return runbook

    return make


# --- a real HTTP endpoint ----------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Endpoint:
    """An HTTP server on 127.0.0.1 that records every request and answers by path:

    /ok → 200 JSON; /fail → 500 "boom"; /slow?seconds=N → sleeps, then 200; /drip → sends its
    status line one byte every 0.2 s; /redirect → 302 to another host; /big → 10 KiB.
    """

    base: str
    received: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _handler(endpoint: Endpoint):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            endpoint.received.append(
                Received(self.command, self.path, dict(self.headers.items()), body)
            )
            parts = urlsplit(self.path)
            if parts.path.startswith("/ok"):
                self._answer(200, b'{"ok": true, "build": 17}')
            elif parts.path == "/fail":
                self._answer(500, b"boom: the job failed")
            elif parts.path == "/slow":
                time.sleep(float(parse_qs(parts.query).get("seconds", ["3"])[0]))
                self._answer(200, b"late")
            elif parts.path == "/drip":
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            elif parts.path == "/redirect":
                self._answer(302, b"", {"Location": "http://elsewhere.invalid/steal"})
            elif parts.path == "/big":
                self._answer(200, b"x" * 10_240)
            else:
                self._answer(404, b"no such path")

        do_POST = do_PUT = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the client hung up on a slow answer: expected in timeout tests


@contextlib.contextmanager
def serving(host: str = "127.0.0.1", port: int = 0) -> Iterator[Endpoint]:
    """Run an Endpoint on `host` (any 127/8 address is loopback on Linux)."""
    server = _Server((host, port), None)  # type: ignore[arg-type]
    found = Endpoint(base=f"http://{host}:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(found)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with serving() as found:
        yield found


@pytest.fixture(autouse=True)
def loopback_allowed(settings) -> None:
    """The test endpoints live on loopback, which actions may not call by default: allowed
    here as an admin would (tests/runbooks/test_destinations.py checks the default)."""
    settings.ACTION_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def make_action(make_runbook, service) -> Callable[..., Action]:
    def make(url: str, **fields) -> Action:
        runbook = fields.pop("runbook", None) or make_runbook("Database down", service=service)
        fields.setdefault("name", "restart-db")
        fields.setdefault(
            "payload_template",
            '{"host": "{{labels.instance}}", "incident": "{{incident.number}}", '
            '"by": "{{run.requested_by}}"}',
        )
        return Action.objects.create(runbook=runbook, url=url, **fields)

    return make

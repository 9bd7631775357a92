"""Request bodies are capped before they are read (review L10): a real daphne serving muster.asgi
as the embedded mode does, on loopback, answers a body over MAX_BODY_BYTES with 413 before it
arrives, declared or streamed; and the ASGI wrapper does the same for any other server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator

import pytest

from muster.body_limit import BodyLimit
from muster_services import free_port
from tests.helpers.system import ROOT, kill_group, start_logged, wait_for

DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")
CAP = 64 * 1024


@pytest.fixture(scope="module")
def daphne_port(tmp_path_factory) -> Iterator[int]:
    """daphne with muster.asgi in the embedded mode (no DATABASE_URL), capped at CAP bytes."""
    data = tmp_path_factory.mktemp("embedded")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "MUSTER_", "DATABASE_", "REDIS_", "SECRET_KEY"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        MUSTER_DATA_DIR=str(data),
        MUSTER_MAX_BODY_BYTES=str(CAP),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    log_path = data / "daphne.log"
    process = start_logged(
        [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "muster.asgi:application"], env, log_path
    )
    try:
        wait_for(
            lambda: _listening(port) or process.poll() is not None,
            timeout=30,
            what="daphne to listen",
        )
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield port
    finally:
        kill_group(process)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _head(port: int, extra: str) -> bytes:
    return (
        f"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/octet-stream\r\n{extra}\r\n"
    ).encode()


def _response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read one response (headers and a Content-Length body), or what came before the close."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            if length and len(body) >= int(length.group(1)):
                break
    return data


def test_a_declared_body_over_the_cap_is_refused_before_it_is_sent(daphne_port):
    with socket.create_connection(("127.0.0.1", daphne_port), timeout=5) as sock:
        # A gigabyte announced, not one byte of it sent: the answer must not wait for it.
        started = time.monotonic()
        sock.sendall(_head(daphne_port, f"Content-Length: {1024**3}\r\n"))
        answer = _response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["status"] == 413 and str(CAP) in body["error"]["message"]


def test_a_streamed_body_is_cut_off_at_the_cap(daphne_port):
    sent = 0
    with socket.create_connection(("127.0.0.1", daphne_port), timeout=5) as sock:
        sock.sendall(_head(daphne_port, "Transfer-Encoding: chunked\r\n"))
        chunk = b"x" * 16384
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 64 * CAP:  # 4 MiB offered; the server stops reading at 64 KiB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        answer = _response(sock)
    assert answer.startswith(b"HTTP/1.1 413") or answer == b"", answer[:200]
    assert sent < 64 * CAP, "the server read the whole stream"


def test_a_body_under_the_cap_is_served(daphne_port):
    body = b"y" * (CAP - 1024)
    with socket.create_connection(("127.0.0.1", daphne_port), timeout=5) as sock:
        sock.sendall(_head(daphne_port, f"Content-Length: {len(body)}\r\n") + body)
        answer = _response(sock)
    # Through to Django, which refuses a POST without a CSRF token: the body got in whole.
    assert answer.startswith(b"HTTP/1.1 403"), answer[:300]
    assert b"CSRF" in answer


# --- the ASGI wrapper alone (other ASGI servers) -------------------------------------------


def _run(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[list, list]:
    """Run an ASGI app on one HTTP request; return the messages it sent and the body it read."""
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict] = []
    read: list[bytes] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def inner(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # as Django's read_body does: RequestAborted, no response
            read.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(app(inner, 1000)(scope, receive, send))
    return sent, read


def test_the_asgi_wrapper_refuses_a_declared_length_without_reading():
    sent, read = _run(BodyLimit, [(b"content-length", b"5000")], [b"x" * 5000])
    assert sent[0]["status"] == 413 and read == []


def test_the_asgi_wrapper_stops_a_stream_at_the_cap():
    sent, read = _run(BodyLimit, [], [b"x" * 600, b"x" * 600, b"x" * 600])
    assert sum(map(len, read)) == 600
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]


def test_the_asgi_wrapper_lets_a_body_under_the_cap_through():
    sent, read = _run(BodyLimit, [(b"content-length", b"900")], [b"x" * 500, b"x" * 400])
    assert sent[0]["status"] == 200 and sum(map(len, read)) == 900

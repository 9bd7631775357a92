"""A cap on request bodies for muster.asgi, enforced before the body is read.

Daphne (Twisted) reads a whole request body into a temporary file before it calls the
application, and Django, under ASGI, spools it again before any view runs and checks a size only
then (an attachment's, for one): an unauthenticated client could fill the disk of an instance
served by daphne alone (the embedded mode). So there are two caps, both at MAX_BODY_BYTES:

- in daphne, where the bytes arrive (`install_daphne_cap`): a declared Content-Length over the cap
  is answered 413 before a byte of the body is read, and a body sent without one (chunked) is
  cut off, 413 and connection closed, once it passes the cap;
- around the Django application (`BodyLimit`), for any other ASGI server: the same refusal, and a
  streamed body that passes the cap makes Django hear that the client left, and the client 413.

Production's nginx caps bodies before either (deploy/nginx.conf).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from daphne import server as daphne_server
from daphne.http_protocol import HTTPFactory, WebRequest

from core.api_errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


def _refusal(status: int, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(error_body(status, message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return headers, body


def _too_large(max_bytes: int) -> str:
    return f"the request body is larger than this server takes ({max_bytes} bytes)"


class CappedWebRequest(WebRequest):
    """daphne's request, refusing a body over `max_bytes` as it arrives."""

    max_bytes = 0  # set by install_daphne_cap

    def gotLength(self, length: int | None) -> None:
        self.muster_received = 0
        self.muster_refused = False
        super().gotLength(length)
        if length is not None and length > self.max_bytes:
            self._refuse_now()

    def handleContentChunk(self, data: bytes) -> None:
        if self.muster_refused:
            return
        self.muster_received += len(data)
        if self.muster_received > self.max_bytes:
            self._refuse_now()
            return
        super().handleContentChunk(data)

    def _refuse_now(self) -> None:
        """Answer 413 on the raw connection and close it: nothing more of the body is read."""
        self.muster_refused = True
        headers, body = _refusal(413, _too_large(self.max_bytes))
        head = b"HTTP/1.1 413 Content Too Large\r\n" + b"".join(
            name + b": " + value + b"\r\n" for name, value in headers
        )
        transport = self.channel.transport
        transport.write(head + b"\r\n" + body)
        transport.loseConnection()  # stops reading at once, sends what was written, closes


class CappedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CappedWebRequest
        return protocol


def install_daphne_cap(max_bytes: int) -> None:
    """Make daphne, in this process, refuse bodies over `max_bytes` as they arrive.

    daphne has no setting for it: its Server builds `daphne.server.HTTPFactory`, whose requests
    buffer everything; that name is pointed at a factory of capped requests. Only a daphne
    serving muster.asgi (the embedded mode, production's websocket tier) runs this, before it
    starts. tests/system/test_body_limit.py proves it against a real daphne.
    """
    CappedWebRequest.max_bytes = max_bytes
    daphne_server.HTTPFactory = CappedHTTPFactory


class BodyLimit:
    """ASGI middleware: at most `max_bytes` of request body per HTTP request."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            await self._refuse(send, declared)
            return
        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True  # the app hears the client left; the client hears 413
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if over and not started:
            await self._refuse(send, received)

    async def _refuse(self, send: Send, size: int) -> None:
        if size < 0:
            status, message = 400, "the Content-Length header is not a number"
        else:
            status, message = 413, _too_large(self.max_bytes)
        headers, body = _refusal(status, message)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

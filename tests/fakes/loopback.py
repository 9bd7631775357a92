"""The loopback HTTP server the fakes share: bound on 127.0.0.1 (port 0: any free one), serving
in a daemon thread, stopped with `stop()`, usable as a context manager.

A subclass implements `_handler()` (the `BaseHTTPRequestHandler` class to serve with) and calls
`_bind()` when it wants its socket: in `__init__` if its `url` must be known before `start()`,
else `start()` binds on first use.

"Down" is `stop()`: the socket is closed, so a client's connection is refused, and the
connections a client kept alive are dropped, as a server going down drops them. `start()` again
binds the same address (same `url`) and serves on, with everything the fake had recorded.
`_pause(seconds)` sleeps in a handler thread but wakes as soon as the fake stops, so that a
request held past a client's timeout never holds up a test's teardown.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class _Server(ThreadingHTTPServer):
    """Remembers its open connections, to drop them when the fake goes down."""

    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for connection in open_now:
            with contextlib.suppress(OSError):  # closed by the client meanwhile
                connection.shutdown(socket.SHUT_RDWR)


class LoopbackServer:
    thread_name = "fake"
    _server: _Server | None = None
    _thread: threading.Thread | None = None
    _address: tuple[str, int] = ("127.0.0.1", 0)
    _halted: threading.Event | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _bind(self, host: str | None = None, port: int | None = None) -> _Server:
        address = (host or self._address[0], self._address[1] if port is None else port)
        self._server = _Server(address, self._handler())
        self._address = self._server.server_address[:2]
        return self._server

    @property
    def url(self) -> str:
        assert self._address[1], "start the fake first"
        host, port = self._address
        return f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> Self:
        if self._server is None:
            self._bind()
        assert self._server is not None
        self._halted = threading.Event()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._halted is not None:
            self._halted.set()
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever, so only once it ran
            self._thread.join(timeout=5)
            self._thread = None
        self._server.drop_connections()
        self._server.server_close()
        self._server = None

    def _pause(self, seconds: float) -> None:
        """Sleep `seconds` in a handler thread, or until the fake stops."""
        halted = self._halted or threading.Event()
        halted.wait(seconds)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

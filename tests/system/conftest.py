"""Shared pieces of the system tests: real servers, real HTTP, everything on 127.0.0.1."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from django.db import connection

# pytest-django's live server listens on "localhost" unless told otherwise; keep it on IPv4
# loopback, where the other processes of these tests (Alertmanager) reach it. Read when the
# session-scoped live_server fixture starts, which is after collection has imported this file.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


def require_postgresql() -> None:
    """Fail (never skip) unless the tests run on PostgreSQL, as `./musterctl test` arranges."""
    assert connection.vendor == "postgresql", (
        f"this test proves behaviour under real concurrency and needs PostgreSQL, but the "
        f"database is {connection.vendor}: run ./musterctl test"
    )


def wait_for(
    condition: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = ""
) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or condition!r}")
        time.sleep(interval)


def fire_at_once(
    base_url: str, path: str, bodies: list[dict], *, timeout: float = 30.0
) -> list[httpx.Response]:
    """POST each body from its own client and thread, all released at the same instant."""
    clients = [httpx.Client(base_url=base_url, timeout=timeout) for _ in bodies]
    barrier = threading.Barrier(len(bodies), timeout=timeout)
    responses: list[httpx.Response | BaseException | None] = [None] * len(bodies)

    def send(i: int) -> None:
        try:
            barrier.wait()
            responses[i] = clients[i].post(path, json=bodies[i])
        except BaseException as exc:  # reported below, in the test's thread
            barrier.abort()
            responses[i] = exc

    try:
        # Connect first (keep-alive): pytest-django's live server listens with a backlog of
        # 10 connections, so 32 connecting at once would be spread out by SYN retries.
        for client in clients:
            assert client.get("/healthz").status_code == 200
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout + 5)
        assert not any(t.is_alive() for t in threads), "a request thread did not finish"
    finally:
        for client in clients:
            client.close()
    failures = [r for r in responses if not isinstance(r, httpx.Response)]
    assert not failures, f"{len(failures)} requests failed: {failures[:3]}"
    return responses  # type: ignore[return-value]

"""A Celery worker outlives a Redis restart (muster.broker), holding tasks that wait to run.

A real `celery worker` (the threads pool, as deployed) on its own throwaway Redis receives
two tasks with a countdown, which it holds unacknowledged until their time. Redis is then
SIGKILLed and started again, empty, on the same port. Without muster.broker the worker exited
with "Unrecoverable error: AttributeError(...'hostname')" three times in three; it must instead
reconnect and run a task sent through the new Redis.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from muster.broker import Transport
from muster.celery import app as celery_app
from muster_services import find_redis_server, free_port
from tests.helpers.system import (
    database_url_of_tests,
    kill_group,
    require_postgresql,
    start_logged,
    wait_for,
)

STARTUP_TIMEOUT = 60.0
RECONNECT_TIMEOUT = 30.0


def test_redis_and_rediss_urls_name_the_mended_transport_and_rediss_keeps_tls():
    for scheme in ("redis", "rediss"):
        with celery_app.connection_for_write(f"{scheme}://127.0.0.1:9/0") as conn:
            assert conn.transport_cls == scheme  # the URL's scheme still decides
            assert isinstance(conn.transport, Transport)
    with celery_app.connection_for_write("rediss://127.0.0.1:9/0") as conn:
        assert conn.ssl  # kombu's TLS for rediss://, as without muster.broker


class Redis:
    """A redis-server of this test's own, on a port it keeps across restarts."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(str(find_redis_server()), "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--dir", str(self.directory), "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=STARTUP_TIMEOUT, what="redis-server to answer")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _answers(self) -> bool:
        address = ("127.0.0.1", self.port)
        with contextlib.suppress(OSError), socket.create_connection(address, 1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
        return False


@pytest.fixture
def redis(tmp_path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_a_worker_holding_countdown_tasks_reconnects_after_redis_restarts(
    transactional_db, redis, tmp_path
):
    require_postgresql()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MUSTER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=redis.url,
        MUSTER_ALLOW_CONSOLE_DELIVERY="1",  # no provider: nothing is paged here
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "worker.log"
    worker = start_logged(
        [
            *(sys.executable, "-m", "celery", "-A", "muster", "worker", "--pool", "threads"),
            *("--concurrency", "2", "--loglevel", "INFO"),
        ],
        env,
        log_path,
    )

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        wait_for(
            lambda: " ready." in output() or worker.poll() is not None,
            timeout=STARTUP_TIMEOUT,
            what="the worker to start",
        )
        assert worker.poll() is None, f"the worker did not start:\n{output()[-3000:]}"
        with celery_app.connection_for_write(redis.url) as conn:
            for _ in range(2):  # the tick, told to run in five minutes: held, unacknowledged
                celery_app.send_task("muster.tick", countdown=300, connection=conn)
        wait_for(
            lambda: output().count("Task muster.tick[") >= 2,
            timeout=RECONNECT_TIMEOUT,
            what="the worker to receive both tasks",
        )

        redis.kill()
        redis.start()

        wait_for(
            lambda: "Connection to broker lost" in output() or worker.poll() is not None,
            timeout=RECONNECT_TIMEOUT,
            what="the worker to notice",
        )
        # Working again: a task sent through the new Redis runs.
        wait_for(
            lambda: worker.poll() is not None or "Connected to" in output().split("lost")[-1],
            timeout=RECONNECT_TIMEOUT,
            what="the worker to reconnect",
        )
        assert worker.poll() is None, f"the worker exited:\n{output()[-3000:]}"
        with celery_app.connection_for_write(redis.url) as conn:
            sent = celery_app.send_task("muster.tick", connection=conn)
        ran = f"Task muster.tick[{sent.id}] succeeded"
        wait_for(
            lambda: worker.poll() is not None or ran in output(),
            timeout=RECONNECT_TIMEOUT,
            what="a task sent after the restart to run",
        )
        assert worker.poll() is None, f"the worker exited:\n{output()[-3000:]}"
        assert "Unrecoverable error" not in output()
    finally:
        kill_group(worker)

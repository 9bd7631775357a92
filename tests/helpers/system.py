"""Shared pieces of the system tests (and the browser tests): real servers and processes, real
HTTP, everything on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

from alerts.pending import pending_requests
from alerts.processor import process_pending
from muster_services import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_logged(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start `argv` in the repository with `env`, its output to `log_path`, in a process group
    of its own (so `kill_group` ends all of it, as a machine dying would)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGKILL `process`'s group (no cleanup, no handlers) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout)


def require_postgresql() -> None:
    """Fail (never skip) unless the tests run on PostgreSQL, as `./musterctl test` arranges."""
    assert connection.vendor == "postgresql", (
        f"this test proves behaviour under real concurrency and needs PostgreSQL, but the "
        f"database is {connection.vendor}: run ./musterctl test"
    )


def database_url_of_tests() -> str:
    """Return a URL for the database this test runs on (pytest-django's test_… database), for
    the real processes a test starts (workers, daphne) to share it."""
    db = connection.settings_dict
    credentials = quote(db["USER"], safe="") + (
        ":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else ""
    )
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


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


# --- `./musterctl up`, the embedded default, as a subprocess ---------------------------------

START_TIMEOUT = 90.0  # migrating a fresh SQLite database included
LISTEN_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# What must not leak from the test run into the embedded process.
DROPPED_ENV = (
    "DJANGO_SETTINGS_MODULE",  # the tests' settings: `./musterctl up` runs muster.settings
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "MUSTER_TEST_SERVICES",
    "MUSTER_PUBLIC_URL",
    "PYTEST_XDIST_WORKER",
    "DJANGO_LIVE_TEST_SERVER_ADDRESS",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_API_BASE_URL",
)

PASSWORD_LINE = re.compile(r"Created the demo admin: user '([^']+)', password '([^']+)'")
ALERTMANAGER_LINE = re.compile(r"Alertmanager webhook URL:\s*(\S+)")
GENERIC_LINE = re.compile(r"Generic JSON URL:\s*(\S+)")
UP_LINE = "Muster is up at"


@dataclass
class Muster:
    """A running `./musterctl up` and what it printed on stdout (read as it comes)."""

    process: subprocess.Popen
    port: int
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    _printed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _closed: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        with self._printed:
            return "\n".join(self.lines)

    def printed(self, pattern: re.Pattern[str]) -> re.Match[str]:
        match = pattern.search(self.output)
        assert match, f"`./musterctl up` did not print {pattern.pattern!r}:\n{self.output}"
        return match

    def wait_printed(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Wait for a line of stdout matching `pattern`; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._printed:
            while True:
                for line in self.lines:
                    if match := pattern.search(line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._printed.wait(left)
        pytest.fail(
            f"no line matching {pattern.pattern!r} within {timeout:.1f}s\n{self.diagnostics()}"
        )

    def diagnostics(self) -> str:
        tail = self.stderr_path.read_text(errors="replace")[-4000:]
        return f"stdout:\n{self.output}\nstderr (end):\n{tail}"

    def stop(self) -> int:
        """Ctrl-C it, as a person would; return its exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not exit within {STOP_TIMEOUT:.0f}s of SIGINT\n{self.diagnostics()}")

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._printed:
                self.lines.append(line.rstrip("\n"))
                self._printed.notify_all()
        with self._printed:
            self._closed = True
            self._printed.notify_all()


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(MUSTER_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def musters(logs_dir: Path) -> Iterator[Callable[[Path], Muster]]:
    """Yield a function that starts `./musterctl up` on a free port, its stderr kept in
    `logs_dir`; every process started is killed on exit. Shared with tests/browser."""
    started: list[Muster] = []

    def start(data_dir: Path) -> Muster:
        port = free_port()
        stderr_path = logs_dir / f"muster-up-{len(started)}.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                ["./musterctl", "up", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT,
                env=_embedded_env(data_dir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,  # its own group: the finalizer kills all of it
            )
        muster = Muster(process, port, stderr_path)
        started.append(muster)
        threading.Thread(target=muster._read, name="muster-stdout", daemon=True).start()
        with muster._printed:
            muster._printed.wait_for(
                lambda: muster._closed or any(UP_LINE in line for line in muster.lines),
                timeout=START_TIMEOUT,
            )
        if not any(UP_LINE in line for line in muster.lines):
            if muster._closed:
                process.wait(5)
                pytest.fail(f"exited with {process.returncode}\n{muster.diagnostics()}")
            pytest.fail(f"no {UP_LINE!r} within {START_TIMEOUT:.0f}s\n{muster.diagnostics()}")
        wait_for(
            lambda: _listening(port) or process.poll() is not None,
            timeout=LISTEN_TIMEOUT,
            what=f"Muster to listen on 127.0.0.1:{port}",
        )
        assert process.poll() is None, f"exited early\n{muster.diagnostics()}"
        return muster

    try:
        yield start
    finally:
        for muster in started:
            if muster.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(muster.process.pid, signal.SIGKILL)
                muster.process.wait(10)
            if muster.process.stdout:
                muster.process.stdout.close()


def log_in(client: httpx.Client, username: str, password: str) -> None:
    """Sign in through the Django admin's own login form, CSRF token and all."""
    form = client.get("/admin/login/", params={"next": "/admin/"})
    assert form.status_code == 200, form.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token and "csrftoken" in client.cookies, "the login form has no CSRF token"
    response = client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, f"login failed: {response.status_code} {response.text}"
    assert response.headers["location"] == "/admin/"
    assert "sessionid" in client.cookies


def processed_results(
    client: httpx.Client, ingest_url: str, response: httpx.Response, *, timeout: float = 10.0
) -> list[dict]:
    """Wait until a running server has processed an accepted ingest request; return its results.

    Through the API a user has: the integration's list of requests and the state of each.
    """
    request_id = response.json()["request"]
    listed = client.get("/api/v1/integrations/")
    assert listed.status_code == 200, listed.text
    [integration] = [i for i in listed.json()["results"] if i["ingest_url"] == ingest_url]
    requests_url = f"/api/v1/integrations/{integration['id']}/requests/"

    def done() -> list[dict] | None:
        for request in client.get(requests_url, params={"page_size": 200}).json()["results"]:
            if request["id"] == request_id and request["state"] != "pending":
                assert request["state"] == "processed", request
                return request["results"]
        return None

    return wait_for(done, timeout=timeout, interval=0.05, what=f"ingest request {request_id}")


def run_at_once(work: Callable[[], object], threads: int) -> None:
    """Run `work` in `threads` threads released at the same instant, each on its own database
    connection; fail with whatever any of them raised."""
    barrier = threading.Barrier(threads, timeout=30)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # reported below, not lost in a thread
            failures.append(exc)
        finally:
            connection.close()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=60)
    assert not failures, failures


def process_with_racing_processors(processors: int = 4) -> None:
    """Run several processors at the same instant, each on its own connection, as workers do."""
    run_at_once(process_pending, processors)
    assert not pending_requests().exists()

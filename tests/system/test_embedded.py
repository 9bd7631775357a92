"""The README's own command: `./musterctl up`, the whole service embedded in one process.

No DATABASE_URL, no REDIS_URL, no SECRET_KEY: SQLite in a fresh data dir, the in-memory
channel layer, and a Celery worker and beat in threads on the in-memory broker. The test reads
what `up` prints, as a person would, and drives it over real HTTP.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from muster_services import free_port
from tests.system.conftest import fire_at_once, wait_for

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0  # migrating a fresh SQLite database included
LISTEN_TIMEOUT = 20.0
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
BURST = 16
# What must not leak from the test run into the embedded process.
DROPPED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "MUSTER_TEST_SERVICES",
    "MUSTER_PUBLIC_URL",
    "PYTEST_XDIST_WORKER",
    "DJANGO_LIVE_TEST_SERVER_ADDRESS",
)

PASSWORD_LINE = re.compile(r"Created the demo admin: user '([^']+)', password '([^']+)'")
ALERTMANAGER_LINE = re.compile(r"Alertmanager webhook URL:\s*(\S+)")
GENERIC_LINE = re.compile(r"Generic JSON URL:\s*(\S+)")
UP_LINE = "Muster is up at"


@dataclass
class Muster:
    """A running `./musterctl up` and what it printed."""

    process: subprocess.Popen
    port: int
    stderr_path: Path
    lines: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def printed(self, pattern: re.Pattern[str]) -> re.Match[str]:
        match = pattern.search(self.output)
        assert match, f"`./musterctl up` did not print {pattern.pattern!r}:\n{self.output}"
        return match

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


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(MUSTER_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture
def start_muster(tmp_path) -> Iterator[Callable[[Path], Muster]]:
    """Start `./musterctl up` on a free port; every process started is killed at the end."""
    started: list[Muster] = []

    def start(data_dir: Path) -> Muster:
        port = free_port()
        stderr_path = tmp_path / f"muster-up-{len(started)}.stderr"
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
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not any(UP_LINE in line for line in muster.lines):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {UP_LINE!r} within {START_TIMEOUT:.0f}s\n{muster.diagnostics()}")
            if line is None:
                process.wait(5)
                pytest.fail(f"exited with {process.returncode}\n{muster.diagnostics()}")
            muster.lines.append(line)
        wait_for(
            lambda: _listening(port) or process.poll() is not None,
            timeout=LISTEN_TIMEOUT,
            what=f"Muster to listen on 127.0.0.1:{port}",
        )
        assert process.poll() is None, f"exited early\n{muster.diagnostics()}"
        return muster

    yield start
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


def incidents(client: httpx.Client) -> list[dict]:
    response = client.get("/api/v1/incidents/")
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_musterctl_up_runs_everything_in_one_process(start_muster, tmp_path):
    data_dir = tmp_path / "data"
    muster = start_muster(data_dir)
    username, password = muster.printed(PASSWORD_LINE).groups()
    alertmanager_url = muster.printed(ALERTMANAGER_LINE).group(1)
    generic_url = muster.printed(GENERIC_LINE).group(1)
    assert generic_url.startswith(f"{muster.base_url}/integrations/generic/")
    assert alertmanager_url.startswith(f"{muster.base_url}/integrations/alertmanager/")
    summary = "Disk full on db-1 (embedded system test)"

    with httpx.Client(base_url=muster.base_url, timeout=10) as client:
        # An alert, over HTTP, to the URL it printed.
        response = httpx.post(
            generic_url,
            json={"summary": summary, "severity": "critical", "labels": {"host": "db-1"}},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        [result] = response.json()["alerts"]
        assert result["action"] == "opened"
        number = result["incident"]
        response = httpx.post(
            alertmanager_url,
            json={
                "version": "4",
                "status": "firing",
                "groupKey": '{}:{alertname="HighLatency"}',
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "HighLatency", "severity": "warning"},
                        "annotations": {"summary": "Checkout latency is high"},
                        "startsAt": "2026-01-01T12:00:00Z",
                    }
                ],
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text

        # Anonymous API reads are refused; the printed admin signs in and sees the incident.
        assert client.get("/api/v1/incidents/").status_code in (401, 403)
        log_in(client, username, password)
        found = {i["number"]: i for i in incidents(client)}
        assert found[number]["title"] == summary
        assert found[number]["status"] == "triggered"
        assert found[number]["severity"] == 1
        assert {i["title"] for i in found.values()} == {summary, "Checkout latency is high"}
        assert client.get("/static/admin/css/base.css").status_code == 200  # no collectstatic
        shown = client.get("/api/v1/integrations/").json()["results"]
        assert {i["ingest_url"] for i in shown} == {generic_url, alertmanager_url}

        # A burst of one alert at the same instant, on SQLite: concurrent writers wait for
        # each other (IMMEDIATE transactions, a busy timeout) instead of failing.
        burst = {"summary": "Queue backlog", "dedup_key": "queue-backlog", "severity": "error"}
        path = generic_url.removeprefix(muster.base_url)
        responses = fire_at_once(muster.base_url, path, [burst] * BURST)
        assert [r.status_code for r in responses] == [200] * BURST, [r.text for r in responses]
        actions = sorted(r.json()["alerts"][0]["action"] for r in responses)
        assert actions == ["deduplicated"] * (BURST - 1) + ["opened"]
        response = client.get("/api/v1/alerts/", params={"fingerprint": "queue-backlog"})
        [alert] = response.json()["results"]
        assert alert["occurrences"] == BURST
        assert len(incidents(client)) == 3

        # Ready means the database, the broker and the beat tick answer: the in-process beat
        # sent the tick through the in-memory broker and the in-process worker ran it.
        def ready() -> httpx.Response | None:
            response = client.get("/readyz")
            return response if response.status_code == 200 else None

        response = wait_for(ready, timeout=READY_TIMEOUT, interval=0.25, what="/readyz 200")
        assert response.json()["problems"] == []
        assert client.get("/healthz").status_code == 200
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        text = metrics.text
        assert 'muster_open_incidents{status="triggered"} 3.0' in text
        assert 'muster_incidents_opened_total{service="Demo service"} 3.0' in text
        lag = re.search(r"^muster_tick_lag_seconds (\S+)$", text, re.MULTILINE)
        assert lag and 0 <= float(lag.group(1)) < 5, text
        assert re.search(r"^muster_task_queue_depth \d", text, re.MULTILINE), text
        cookies = dict(client.cookies)

    assert muster.stop() == 0, muster.diagnostics()

    # A second start on the same data: no new admin, the same URLs, the incident kept, and
    # the session (the secret key lives in the data dir) still signed in.
    again = start_muster(data_dir)
    assert "password" not in again.output, again.output
    assert not PASSWORD_LINE.search(again.output)
    base = again.base_url
    assert again.printed(GENERIC_LINE).group(1) == generic_url.replace(muster.base_url, base)
    with httpx.Client(base_url=base, timeout=10, cookies=cookies) as client:
        found = {i["number"]: i for i in incidents(client)}
        assert found[number]["title"] == summary
    assert again.stop() == 0, again.diagnostics()

"""The production web tier, `python -m muster.webserver` (granian), as deploy/ runs it.

A real granian on loopback against the test's PostgreSQL and Redis: it takes alerts over one
kept-alive connection, starts /metrics afresh, replaces a worker that dies, reloads on SIGHUP
and stops on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from alerts.models import IngestRequest, Kind, Outcome
from muster.webserver import bind_address
from muster_services import free_port
from tests.alerts.payloads import am_alert, am_batch
from tests.helpers.system import database_url_of_tests, require_postgresql, wait_for

pytestmark = pytest.mark.usefixtures("transactional_db")


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def webserver(tmp_path) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    require_postgresql()
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"an earlier run's worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MUSTER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=settings.REDIS_URL,  # this xdist worker's Redis database
        MUSTER_ALLOW_CONSOLE_DELIVERY="1",  # no Twilio nor mail server here, on purpose
        MUSTER_WEB_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "webserver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "muster.webserver"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base) or process.poll() is not None, timeout=60, what="granian")
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        yield process, base, metrics_dir
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_alerts_are_taken_over_one_kept_alive_connection(webserver, make_integration):
    _, base, metrics_dir = webserver
    am = make_integration(Kind.ALERTMANAGER, name="prometheus")
    peers = set()

    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(5):
            body = json.dumps(am_batch(am_alert(f"fp-{i}"), group_key=f"g{i}"))
            response = client.post(
                f"/integrations/alertmanager/{am.token}/",
                content=body,
                headers={"Content-Type": "application/json"},
                extensions={"trace": lambda name, info: _peer(name, info, peers)},
            )
            assert response.status_code == 200, response.text
            assert response.json()["received"] == 1

    assert len(peers) == 1  # one TCP connection carried all five requests
    stored = IngestRequest.objects.filter(integration=am, outcome=Outcome.ACCEPTED)
    assert stored.count() == 5
    # The earlier run's counter file is gone; this run's workers wrote their own.
    assert not (metrics_dir / "counter_99999.db").exists()
    assert any(metrics_dir.iterdir())


def _peer(name: str, info: dict, peers: set) -> None:
    if name == "connection.connect_tcp.complete":
        peers.add(info["return_value"].get_extra_info("socket").getsockname())


def test_a_worker_that_dies_is_replaced_and_sighup_reloads(webserver, make_integration):
    process, base, _ = webserver
    am = make_integration(Kind.GENERIC, name="script")
    url = f"{base}/integrations/generic/{am.token}/"
    body = {"alerts": [{"fingerprint": "fp", "summary": "disk full", "status": "firing"}]}
    workers = wait_for(
        lambda: len(_children(process.pid)) >= 2 and _children(process.pid), timeout=30
    )

    os.kill(min(workers), signal.SIGKILL)

    replaced = wait_for(
        lambda: (now := _children(process.pid)) - workers and len(now) >= 2 and now,
        timeout=30,
        what="a new worker in place of the killed one",
    )
    assert min(workers) not in replaced
    assert httpx.post(url, json=body, timeout=10).status_code == 200

    process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: not (_children(process.pid) & replaced) and len(_children(process.pid)) >= 2,
        timeout=60,
        what="every worker replaced after SIGHUP",
    )
    assert wait_for(lambda: _healthy(base), timeout=30)
    assert httpx.post(url, json=body, timeout=10).status_code == 200

    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert process.wait(30) == 0
    assert time.monotonic() - started < 30


def test_bind_address_is_host_and_port():
    assert bind_address("127.0.0.1:8001") == ("127.0.0.1", 8001)
    assert bind_address("0.0.0.0:80") == ("0.0.0.0", 80)  # noqa: S104
    assert bind_address("[::1]:8001") == ("::1", 8001)
    with pytest.raises(ValueError, match="host:port"):
        bind_address("8001")


def _call(path: str, *, method: str = "GET", body: bytes = b"") -> tuple[str, dict, bytes]:
    """Call muster.wsgi.application as a WSGI server would; return status, headers, body."""
    import io

    from muster.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8001",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=dict(headers))

    chunks = application(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        chunks.close()
    return started["status"], started["headers"], content


def test_ingest_urls_skip_the_middleware_and_the_rest_keep_it(make_integration):
    am = make_integration(Kind.ALERTMANAGER, name="prometheus")
    body = json.dumps(am_batch(am_alert("fp-lean"))).encode()

    status, headers, content = _call(
        f"/integrations/alertmanager/{am.token}/", method="POST", body=body
    )

    assert status.startswith("200"), content
    assert json.loads(content)["received"] == 1
    assert IngestRequest.objects.filter(integration=am, outcome=Outcome.ACCEPTED).count() == 1
    # No middleware ran: XFrameOptionsMiddleware and SecurityMiddleware add these everywhere else.
    assert "X-Frame-Options" not in headers and "X-Content-Type-Options" not in headers
    status, headers, _ = _call("/v2/enqueue", method="POST", body=b'{"routing_key": "nope"}')
    assert status.startswith("400") and "X-Frame-Options" not in headers

    status, headers, _ = _call("/healthz")
    assert status.startswith("200")
    assert headers["X-Frame-Options"] == "DENY"

"""A real Prometheus Alertmanager notifying a live Muster, through both of its doors.

One receiver is Alertmanager's `webhook_configs` pointed at Muster's Alertmanager integration;
the other is `pagerduty_configs` with `url` pointed at Muster's `/v2/enqueue`, which is how an
Alertmanager already set up for PagerDuty moves to Muster without any other change. Alerts are
posted to Alertmanager's own API, fired and then resolved; Muster must open, then resolve, one
incident per integration.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alerts.models import Alert, AlertStatus, Integration, Kind, Outcome
from alerts.processor import process_pending
from incidents.models import EntryKind, Incident, Service, Status
from muster_services import free_port
from tests.helpers.system import require_postgresql, wait_for

PACKAGE = "prometheus-alertmanager"
START_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 30.0

pytestmark = pytest.mark.usefixtures("transactional_db")


def alertmanager_binary() -> str:
    found = shutil.which(PACKAGE) or shutil.which("alertmanager")
    for candidate in (found, f"/usr/bin/{PACKAGE}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"the Alertmanager binary was not found: install the Debian package {PACKAGE} "
        f"(apt-get install {PACKAGE}; .ci/run does it)"
    )


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def post_alerts(self, alerts: list[dict]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        assert response.status_code == 200, response.text


def alertmanager_config(webhook_url: str, pagerduty_url: str, routing_key: str) -> dict:
    """Both receivers get every alert: the first route continues to the second."""
    return {
        "route": {
            "receiver": "muster-webhook",
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [
                {"receiver": "muster-webhook", "continue": True},
                {"receiver": "muster-pagerduty"},
            ],
        },
        "receivers": [
            {
                "name": "muster-webhook",
                "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
            },
            {
                "name": "muster-pagerduty",
                "pagerduty_configs": [
                    {"routing_key": routing_key, "url": pagerduty_url, "send_resolved": True}
                ],
            },
        ],
    }


@pytest.fixture
def start_alertmanager(tmp_path) -> Iterator:
    """Start Alertmanager on loopback with its own storage; it is stopped even on failure."""
    binary = alertmanager_binary()
    processes: list[subprocess.Popen] = []

    def start(config: dict) -> Alertmanager:
        # JSON is YAML: no YAML library needed to write the configuration.
        config_path = tmp_path / "alertmanager.yml"
        config_path.write_text(json.dumps(config, indent=2))
        storage = tmp_path / "alertmanager-data"
        storage.mkdir()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = tmp_path / "alertmanager.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.path={storage}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--web.external-url={url}/",
                    "--cluster.listen-address=",  # no clustering: no gossip port, no peers
                    "--log.level=debug",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        manager = Alertmanager(url, process, log_path)

        def ready() -> bool:
            assert process.poll() is None, f"Alertmanager exited:\n{manager.log_tail()}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            return False

        wait_for(ready, timeout=START_TIMEOUT, what="Alertmanager to be ready")
        return manager

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _diagnostics(manager: Alertmanager, integrations: list[Integration]) -> str:
    lines = []
    for integration in integrations:
        for request in integration.requests.order_by("received_at"):
            detail = request.reason or bytes(request.body)[:300].decode(errors="replace")
            lines.append(
                f"{integration.name}: {request.outcome} {request.status_code} {detail[:300]}"
            )
    received = "\n".join(lines) or "(Muster received nothing)"
    return f"Muster received:\n{received}\nAlertmanager log (end):\n{manager.log_tail()}"


def test_alertmanager_webhook_and_pagerduty_receivers_reach_muster_unchanged(
    live_server, start_alertmanager
):
    require_postgresql()
    service = Service.objects.create(name="storage")
    webhook = Integration.objects.create(
        name="alertmanager-webhook", kind=Kind.ALERTMANAGER, service=service
    )
    pagerduty = Integration.objects.create(
        name="alertmanager-pagerduty", kind=Kind.PAGERDUTY, service=service
    )
    manager = start_alertmanager(
        alertmanager_config(
            webhook_url=f"{live_server.url}{webhook.ingest_path}",
            pagerduty_url=f"{live_server.url}/v2/enqueue",
            routing_key=pagerduty.token,
        )
    )
    integrations = [webhook, pagerduty]
    started = datetime.now(UTC) - timedelta(minutes=1)
    alert = {
        "labels": {
            "alertname": "DiskAlmostFull",
            "instance": "db-1:9100",
            "severity": "critical",
            "team": "storage",
        },
        "annotations": {
            "summary": "Disk on db-1 is 97% full",
            "runbook_url": "https://runbooks.example/disk-full",
        },
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=disk_used",
        "startsAt": _iso(started),
        "endsAt": _iso(datetime.now(UTC) + timedelta(hours=1)),
    }

    manager.post_alerts([alert])

    def one_open_incident_each() -> bool:
        process_pending()  # what the worker each request kicked does (none runs here)
        return all(
            Incident.objects.filter(alerts__integration=i, status=Status.TRIGGERED).exists()
            for i in integrations
        )

    try:
        wait_for(one_open_incident_each, timeout=DELIVERY_TIMEOUT, what="both incidents")
    except pytest.fail.Exception:
        pytest.fail(f"Muster did not get both notifications\n{_diagnostics(manager, integrations)}")

    assert Incident.objects.count() == 2
    for integration in integrations:
        assert not integration.requests.filter(outcome=Outcome.REJECTED).exists(), _diagnostics(
            manager, integrations
        )
    # The webhook: Alertmanager's own fingerprint, labels, annotations and links.
    from_webhook = Alert.objects.get(integration=webhook)
    assert from_webhook.status == AlertStatus.FIRING
    assert from_webhook.summary == "Disk on db-1 is 97% full"
    assert from_webhook.labels["instance"] == "db-1:9100"
    assert from_webhook.severity == 1
    assert {link["kind"] for link in from_webhook.links} >= {"generator", "runbook"}
    assert from_webhook.incident.title == "Disk on db-1 is 97% full"
    assert from_webhook.incident.severity == 1
    # PagerDuty's Events API v2 as Alertmanager speaks it: its subject as the summary.
    from_pagerduty = Alert.objects.get(integration=pagerduty)
    assert from_pagerduty.status == AlertStatus.FIRING
    assert "DiskAlmostFull" in from_pagerduty.summary, from_pagerduty.summary
    assert from_pagerduty.incident_id != from_webhook.incident_id
    assert from_pagerduty.incident.timeline.filter(kind=EntryKind.OPENED).count() == 1

    # Resolved: the same alert, ended a moment ago.
    manager.post_alerts([{**alert, "endsAt": _iso(datetime.now(UTC) - timedelta(seconds=1))}])

    def both_resolved() -> bool:
        process_pending()
        return Incident.objects.filter(status=Status.RESOLVED).count() == 2

    try:
        wait_for(both_resolved, timeout=DELIVERY_TIMEOUT, what="both incidents to resolve")
    except pytest.fail.Exception:
        pytest.fail(f"Muster's incidents did not resolve\n{_diagnostics(manager, integrations)}")

    assert Incident.objects.count() == 2  # resolving opened nothing new
    assert not Alert.objects.filter(status=AlertStatus.FIRING).exists()
    for incident in Incident.objects.all():
        kinds = list(incident.timeline.values_list("kind", flat=True))
        assert kinds[0] == EntryKind.OPENED and kinds[-1] == EntryKind.RESOLVED, kinds
        assert EntryKind.ALERT_RESOLVED in kinds
    for integration in integrations:
        assert not integration.requests.filter(outcome=Outcome.REJECTED).exists(), _diagnostics(
            manager, integrations
        )

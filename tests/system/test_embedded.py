"""The README's own command: `./musterctl up`, the whole service embedded in one process.

No DATABASE_URL, no REDIS_URL, no SECRET_KEY: SQLite in a fresh data dir, the in-memory
channel layer, and a Celery worker and beat in threads on the in-memory broker. The test reads
what `up` prints, as a person would, and drives it over real HTTP.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3

import httpx

from tests.helpers.system import (
    ALERTMANAGER_LINE,
    GENERIC_LINE,
    PASSWORD_LINE,
    fire_at_once,
    log_in,
    processed_results,
    wait_for,
)

READY_TIMEOUT = 15.0
BURST = 16


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
        # Anonymous API reads are refused; the printed admin signs in.
        assert client.get("/api/v1/incidents/").status_code in (401, 403)
        log_in(client, username, password)

        # An alert, over HTTP, to the URL it printed; the in-process worker processes it.
        response = httpx.post(
            generic_url,
            json={"summary": summary, "severity": "critical", "labels": {"host": "db-1"}},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        [result] = processed_results(client, generic_url, response)
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
        processed_results(client, alertmanager_url, response)

        # The admin sees both incidents.
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
        actions = sorted(processed_results(client, generic_url, r)[0]["action"] for r in responses)
        assert actions == ["deduplicated"] * (BURST - 1) + ["opened"]
        response = client.get("/api/v1/alerts/", params={"fingerprint": "queue-backlog"})
        [alert] = response.json()["results"]
        assert alert["occurrences"] == BURST
        assert len(incidents(client)) == 3

        # Ready as a worker means the database, the broker and the beat tick answer: the
        # in-process beat took the lease (the SQLite row, as production's PostgreSQL one), sent
        # the tick through the in-memory broker and the in-process worker ran it.
        def ready() -> httpx.Response | None:
            response = client.get("/readyz", params={"role": "worker"})
            return response if response.status_code == 200 else None

        response = wait_for(ready, timeout=READY_TIMEOUT, interval=0.25, what="/readyz 200")
        assert response.json()["problems"] == []
        assert client.get("/readyz").json()["problems"] == []
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
    # Its beat held production's lease, on the SQLite row, and gave it up as it stopped.
    with contextlib.closing(sqlite3.connect(data_dir / "muster.sqlite3")) as db:
        rows = db.execute(
            "SELECT name, holder, expires_at, renewed_at FROM muster_lease"
        ).fetchall()
    [(name, holder, expires_at, renewed_at)] = rows
    assert (name, holder, expires_at) == ("beat", "", None) and renewed_at, rows

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

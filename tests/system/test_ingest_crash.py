"""A processor killed mid-batch loses nothing and doubles nothing.

A real process runs the ingest processor against the test's PostgreSQL database and is
SIGKILLed (`MUSTER_FAULT=ingest_before_commit`, core/faults.py) after it has processed a
whole batch but before it commits, the way a machine dies. Everything it did rolls back;
the requests stay pending; the next processor does them exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django.test import Client

from alerts.models import Alert, Kind
from alerts.pending import pending_requests
from alerts.processor import process_pending
from incidents.models import EntryKind, Incident, TimelineEntry
from tests.alerts.payloads import am_alert, am_batch
from tests.helpers.system import database_url_of_tests, require_postgresql

pytestmark = pytest.mark.usefixtures("transactional_db")

PROCESS = (
    "import django; django.setup(); from alerts.processor import process_pending; process_pending()"
)


def run_processor(fault: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MUSTER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        DATABASE_URL=database_url_of_tests(),
        MUSTER_FAULT=fault,
    )
    return subprocess.run(
        [sys.executable, "-c", PROCESS], env=env, capture_output=True, timeout=60, check=False
    )


def test_a_processor_killed_before_commit_leaves_everything_to_the_next(make_integration):
    require_postgresql()
    am = make_integration(Kind.ALERTMANAGER, name="prometheus")
    path = f"/integrations/alertmanager/{am.token}/"
    client = Client()
    bodies = [
        am_batch(am_alert("fp-1"), am_alert("fp-2")),
        am_batch(am_alert("fp-1"), am_alert("fp-3")),
        am_batch(am_alert("fp-9"), group_key="other"),
    ]
    for body in bodies:
        response = client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code == 200

    killed = run_processor("ingest_before_commit")

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert pending_requests().count() == 3
    assert Alert.objects.count() == 0
    assert Incident.objects.count() == 0

    assert process_pending() == 3

    assert not pending_requests().exists()
    assert Incident.objects.count() == 2
    assert dict(Alert.objects.values_list("fingerprint", "occurrences")) == {
        "fp-1": 2,
        "fp-2": 1,
        "fp-3": 1,
        "fp-9": 1,
    }
    assert TimelineEntry.objects.filter(kind=EntryKind.OPENED).count() == 2

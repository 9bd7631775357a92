"""A real worker takes a page's task before ingest processing queued ahead of it, and the war
room's posts last: muster.queues' order, as kombu's "priority" strategy applies it on Redis."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from django.conf import settings

from muster.celery import app as celery_app
from tests.helpers.system import kill_group, start_logged

RECEIVED = re.compile(r"unregistered task of type '([\w.]+)'")


def _worker_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)  # the worker receives only: no database needed
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        MUSTER_DATA_DIR=str(tmp_path),
        SECRET_KEY="queue-order-test",
        REDIS_URL=settings.CELERY_BROKER_URL,  # this test process's own Redis database
    )
    return env


def test_a_worker_takes_paging_then_ingest_then_the_bot(tmp_path):
    celery_app.control.purge()
    # Published in the reverse of the order they must be taken in. By name, with no task of
    # that name in the worker: it logs each as it takes it, in the order taken, and runs none.
    for n in range(3):
        celery_app.send_task(f"warroom.follow_entry_probe{n}", queue="bot")
    for n in range(3):
        celery_app.send_task(f"alerts.process_probe{n}")  # the default queue: ingest's
    celery_app.send_task("oncall.deliver_probe")  # routed as every oncall task: paging

    log = tmp_path / "worker.log"
    worker = start_logged(
        [
            *(sys.executable, "-m", "celery", "-A", "muster", "worker"),
            *("--pool", "solo", "--concurrency", "1", "--loglevel", "INFO"),
            *("--hostname", f"order-{os.getpid()}@%h"),
            *("--without-heartbeat", "--without-mingle", "--without-gossip"),
        ],
        _worker_env(tmp_path),
        log,
    )
    try:
        deadline = time.monotonic() + 60
        taken: list[str] = []
        while len(taken) < 7 and time.monotonic() < deadline:
            time.sleep(0.2)
            taken = RECEIVED.findall(log.read_text(errors="replace"))
    finally:
        kill_group(worker)
        celery_app.control.purge()
    assert taken == [
        "oncall.deliver_probe",
        *(f"alerts.process_probe{n}" for n in range(3)),
        *(f"warroom.follow_entry_probe{n}" for n in range(3)),
    ], log.read_text(errors="replace")[-3000:]

"""Every process finds the one Celery app: a Django process queues on the configured broker, and
`celery -A muster` (the command line of deploy/, bench/ and `./musterctl`) loads the same app.

Each check runs in a fresh interpreter, where nothing has imported muster.celery yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.system import ROOT

# What a web process does: set Django up, then queue a task through the task's own app.
DJANGO_PROCESS = """
import json
import django
django.setup()
from celery import current_app
from django.conf import settings
from oncall.tasks import deliver_page
print(json.dumps({
    "current": current_app.main,
    "task_app": deliver_page.app.main,
    "broker": deliver_page.app.conf.broker_url,
    "setting": settings.CELERY_BROKER_URL,
}))
"""


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "MUSTER_", "DJANGO_")) and k not in ("REDIS_URL",)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        MUSTER_DATA_DIR=str(tmp_path),
        SECRET_KEY="celery-app-test",
        **extra,
    )
    return env


@pytest.mark.parametrize(
    ("redis_url", "broker"),
    [
        # Nothing connects: the URL only has to reach the app's configuration.
        ("redis://127.0.0.1:9/7", "redis://127.0.0.1:9/7"),
        ("", "memory://localhost/"),  # embedded
    ],
)
def test_a_django_process_queues_tasks_on_the_configured_broker(tmp_path, redis_url, broker):
    extra = {"REDIS_URL": redis_url} if redis_url else {}
    done = subprocess.run(
        [sys.executable, "-c", DJANGO_PROCESS],
        cwd=ROOT,
        env=_environment(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"current": "muster", "task_app": "muster", "broker": broker, "setting": broker}


@pytest.mark.parametrize("app", ["muster", "muster.celery"])
def test_the_celery_command_line_finds_the_app_with_its_settings(tmp_path, app):
    celery = str(Path(sys.executable).with_name("celery"))
    done = subprocess.run(
        [celery, "-A", app, "report"],
        cwd=ROOT,
        env=_environment(tmp_path, REDIS_URL="redis://127.0.0.1:9/7"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Celery's default app would say amqp: this is the app configured from Django's settings.
    assert "transport:redis" in done.stdout, done.stdout
    assert "CELERY_BROKER_URL: 'redis://127.0.0.1:9/7'" in done.stdout, done.stdout

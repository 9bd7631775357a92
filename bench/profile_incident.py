"""What a new incident costs the workers: every task it causes, in one process, with cProfile.

    python bench/profile_incident.py [--incidents 40] [--chat off|on] [--cprofile] [--by-task]
                                      [--sql] [--fast-db]

In-process, against throwaway PostgreSQL and Redis and the Twilio fake (and, with `--chat on`,
the Slack and Mattermost fakes, both configured, every service in `channel-per-incident`): each
of `--incidents` services (bench/paging_setup.py: a person with a verified SMS number, paged at
once by step 1) gets one new alert through Django's test client, then the processor runs, with
Celery in eager mode, so every task the incident causes (escalation, the page's delivery to the
fake, the war room's opening post and invitations, the chat outbox) runs here, inline. Redis
stays the broker for nothing and the cache and channel layer for everything, as in production.

It prints, per new incident: worker CPU (this thread's: processing plus every task), the CPU of
each task apart (its own, not the tasks it started), the statements by kind and their count,
and with --cprofile the functions with the most cumulative and own CPU (the profile is also
written to bench/results/). The same for a repeat of an open alert (no new incident), which is
processing alone, and for another alert joining an open incident (a storm's usual alert: the
room and the chat are told of it). Bench/paging.py
measures the same cost from outside (a real worker's CPU), with the web tier and the queues.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

from profile_ingest import Statements, _kind  # noqa: E402

from muster_services import running_services  # noqa: E402

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "bench-incident-" + os.urandom(8).hex()


def alert_body(service: int, n: int) -> str:
    return json.dumps(
        {
            "summary": f"disk full on db-{service}-{n}",
            "severity": "critical",
            "dedup_key": f"bench-{service}-{n}",
            "labels": {"host": f"db-{service}", "alertname": "DiskFull"},
        }
    )


class TaskTimes:
    """Thread CPU per Celery task (eager: nested in whatever enqueued it), exclusive of the
    tasks it ran in turn, through Celery's task_prerun/task_postrun signals."""

    def __init__(self) -> None:
        self.cpu: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._stack: list[list] = []  # [name, started, nested]

    def prerun(self, sender=None, **kwargs) -> None:
        self._stack.append([sender.name, time.thread_time(), 0.0])

    def postrun(self, sender=None, **kwargs) -> None:
        name, started, nested = self._stack.pop()
        spent = time.thread_time() - started
        self.cpu[name] += spent - nested
        self.calls[name] += 1
        if self._stack:
            self._stack[-1][2] += spent

    def clear(self) -> None:
        self.cpu.clear()
        self.calls.clear()

    def current(self) -> str:
        """The task running now (the innermost), or "processor" outside every task."""
        return self._stack[-1][0] if self._stack else "processor"


class StatementsByTask(Statements):
    """Statements as profile_ingest counts them, and also by the task that ran each."""

    def __init__(self) -> None:
        super().__init__()
        self.by_task: Counter[tuple[str, str]] = Counter()
        self.trail: list[str] | None = None  # with --sql: each statement, its task and caller

    def __call__(self, execute, sql, params, many, context):
        self.by_task[(TASKS.current(), _kind(sql))] += 1  # _kind is cached: cheap the 2nd time
        if self.trail is not None:
            self.trail.append(f"{TASKS.current():<22} {_caller():<44} {sql[:150]}")
        return super().__call__(execute, sql, params, many, context)


def _caller() -> str:
    """The innermost frame of Muster's own code (not Django's, Celery's or this bench's)."""
    for frame in traceback.extract_stack()[::-1]:
        path = Path(frame.filename)
        ours = path.is_relative_to(ROOT) and not path.is_relative_to(ROOT / ".venv")
        if ours and not path.is_relative_to(BENCH):
            return f"{path.relative_to(ROOT)}:{frame.lineno}"
    return "?"


TASKS = TaskTimes()


def measure(label: str, before, run, count: int, opts) -> dict:
    """For i in range(count): `before(i)` untimed, then `run()` under the timers; print and
    return the figures."""
    from django.db import connection

    statements = StatementsByTask()
    profile = cProfile.Profile(time.thread_time) if opts.cprofile else None  # CPU, not wall
    cpu = wall = 0.0
    TASKS.clear()
    for i in range(count):
        before(i)
        if opts.sql and i == count - 1:
            statements.trail = []
        with connection.execute_wrapper(statements):
            c0, w0 = time.thread_time(), time.perf_counter()
            if profile is not None:
                profile.enable()
            run()
            if profile is not None:
                profile.disable()
            cpu += time.thread_time() - c0
            wall += time.perf_counter() - w0
    queries = sum(statements.count.values())
    print(f"\n=== {label}: {count} times")
    print(
        f"per time: {1000 * cpu / count:.1f} ms CPU in this thread, {1000 * wall / count:.1f}"
        f" ms wall, {queries / count:.1f} statements"
    )
    for key, n in statements.count.most_common(25):
        print(f"  {n / count:6.2f} × {key:<60} {1000 * statements.wall[key] / count:7.2f} ms")
    tasks = sum(TASKS.cpu.values())
    print(f"  outside tasks (the processor itself): {1000 * (cpu - tasks) / count:.1f} ms CPU")
    for name, spent in TASKS.cpu.most_common():
        print(
            f"  task {name:<40} {TASKS.calls[name] / count:5.2f} × "
            f"{1000 * spent / count:6.1f} ms CPU (its own, not the tasks it ran)"
        )
    if opts.by_task:
        print("  statements by task (the innermost running):")
        for (task, key), n in sorted(statements.by_task.items()):
            print(f"    {task:<28} {n / count:5.2f} × {key}")
    if statements.trail is not None:
        print("  the last time's statements, in order (task, Muster's line that ran it, SQL):")
        for line in statements.trail:
            print(f"    {line}")
    if profile is not None:
        (BENCH / "results").mkdir(exist_ok=True)
        profile.dump_stats(BENCH / "results" / f"profile-incident-{label.split(',')[0]}.pstats")
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(30)
            print(out.getvalue())
    return {
        "cpu_ms": round(1000 * cpu / count, 2),
        "wall_ms": round(1000 * wall / count, 2),
        "statements": round(queries / count, 1),
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--incidents", type=int, default=40)
    p.add_argument("--chat", choices=["off", "on"], default="off", help="the chat platforms' fakes")
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--by-task", action="store_true", help="list the statements of each task")
    p.add_argument(
        "--sql", action="store_true", help="list the last time's statements, with their callers"
    )
    p.add_argument("--fast-db", action="store_true", help="PostgreSQL without fsync")
    opts = p.parse_args(argv)
    f = run(opts, opts.chat == "on")
    print(
        f"\nchat {opts.chat}: a new incident {f['new']['cpu_ms']} ms CPU"
        f" ({f['new']['statements']} statements); a repeat {f['repeat']['cpu_ms']} ms;"
        f" another alert of an open incident {f['attach']['cpu_ms']} ms"
    )
    return 0


def run(opts, chat: bool) -> dict:
    twilio = subprocess.Popen(
        [str(VENV_PYTHON), "-m", "tests.fakes.twilio", "--port", "0", "--auth-token", TWILIO_TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = twilio.stdout.readline() if twilio.stdout else ""
        while line and "FAKE_TWILIO_URL=" not in line:
            line = twilio.stdout.readline() if twilio.stdout else ""
        twilio_url = line.strip().split("=", 1)[1]
        with running_services(durable=not opts.fast_db) as services:
            return _run(opts, chat, services, twilio_url)
    finally:
        twilio.terminate()
        twilio.wait(10)


def _run(opts, chat: bool, services, twilio_url: str) -> dict:
    env = {
        **services.env(),
        "SECRET_KEY": "bench-incident-" + os.urandom(32).hex(),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "MUSTER_DATA_DIR": tempfile.mkdtemp(prefix="muster-incident-"),
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": twilio_url,
    }
    os.environ.update(env)
    os.environ.pop("MUSTER_TEST_SERVICES", None)
    subprocess.run(
        [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "muster.settings"
    import django

    django.setup()
    from celery.signals import task_postrun, task_prerun
    from django.conf import settings
    from django.test import Client

    from muster.celery import app

    task_prerun.connect(TASKS.prerun, weak=False)
    task_postrun.connect(TASKS.postrun, weak=False)

    app.conf.task_always_eager = True
    app.loader.import_default_modules()  # every app's tasks, as a worker has them (by name)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    fakes = []
    if chat:
        from tests.fakes.mattermost import FakeMattermost
        from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack

        slack = FakeSlack().start()
        slack.limits.clear()  # the bench measures CPU, not Slack's pace
        mattermost = FakeMattermost(per_second=100_000).start()
        mattermost.add_team("ops")
        fakes = [slack, mattermost]
        settings.SLACK_BOT_TOKEN = DEFAULT_TOKEN
        settings.SLACK_SIGNING_SECRET = os.urandom(16).hex()
        settings.SLACK_API_BASE_URL = slack.api_url
        settings.MATTERMOST_URL = mattermost.url
        settings.MATTERMOST_BOT_TOKEN = mattermost.bot_token
        settings.MATTERMOST_TEAM = "ops"
        settings.MATTERMOST_COMMAND_TOKENS = ["bench"]
    try:
        sys.path.insert(0, str(BENCH))
        from paging_setup import setup

        from alerts.models import Integration, Kind
        from alerts.processor import process_pending

        made = setup(opts.incidents + 1, 0, 10)
        paths = [
            Integration.objects.get(service_id=s["service_id"], kind=Kind.GENERIC).ingest_path
            for s in made
        ]
        client = Client()

        def post(path: str, body: str) -> None:
            response = client.post(path, body, content_type="application/json")
            assert response.status_code == 200, response.content[:300]

        # Warm up: the first incident pays for imports, connections and caches.
        post(paths[-1], alert_body(opts.incidents, 0))
        process_pending()

        def alert(i: int) -> None:
            post(paths[i], alert_body(i, 0))

        label = "chat on (Slack and Mattermost)" if chat else "chat off"

        def another(i: int) -> None:
            post(paths[i], alert_body(i, 1))

        return {
            "new": measure(f"new incident, {label}", alert, process_pending, opts.incidents, opts),
            "repeat": measure(f"a repeat, {label}", alert, process_pending, opts.incidents, opts),
            "attach": measure(
                f"another alert of an open incident, {label}",
                another,
                process_pending,
                opts.incidents,
                opts,
            ),
        }
    finally:
        for fake in fakes:
            fake.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

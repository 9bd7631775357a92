"""Where an ingest request's time goes: the statements it runs and the cost of each step.

    python bench/profile_ingest.py [--requests 300] [--scenarios single,batch] [--sql] [--cprofile]
                                   [--process]

In-process, against throwaway PostgreSQL and Redis: Django's test client drives the real
middleware, URL resolver, view, parser and the accept (everything but the HTTP server), one
request at a time. For each scenario of bench/ingest.py it prints

- the SQL statements of one request, by kind, with their round-trip times;
- CPU and wall time per request, and per step of the path: each step is wrapped in a timer
  (two clock reads: no profiler distortion), so the figures add up to the request's own;
- with --cprofile, the functions with the most own time (cProfile inflates Python-heavy code
  such as the ORM against C code, so read it for ranking, not for absolute figures), of the
  requests and, with --process too, of processing them;
- with --process, the same for processing what the scenario stored (alerts.processor's batches,
  as the Celery worker runs them), per request and per step (the wall time includes the
  processor's last look for requests, twice INGEST_KICK_MEMO_SECONDS after the queue drained,
  and after a small batch its gather, MUSTER_INGEST_GATHER_SECONDS: wait, not CPU).

Steps that the code no longer has are reported as missing rather than failing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

from payloads import Shape, body, pool_alerts, request_body  # noqa: E402

from muster_services import running_services  # noqa: E402

SHAPES = {
    "single": (1, False, 25),
    "single-dup": (1, True, 25),
    "batch": (100, False, 90),
    "batch-dup": (100, True, 90),
}

# (label, module, attribute path); nested labels are indented by their depth.
STEPS = [
    ("view: find_integration", "alerts.ingest", "find_integration", 1),
    ("view: read_body", "alerts.ingest", "read_body", 1),
    ("view: parse (JSON + parser)", "alerts.ingest", "parse", 1),
    ("accept: INSERT … SELECT by token", "alerts.pending", "accept_by_token", 1),
    ("kick: the processor's debounce key", "alerts.pending", "kick", 1),
    ("view: JsonResponse", "alerts.ingest", "JsonResponse", 1),
]
# The same for processing stored requests (--process), from alerts.processor.process_pending.
PROCESS_STEPS = [
    ("claim: the oldest pending requests", "alerts.processor", "_claim", 1),
    ("parse again (JSON + parser)", "alerts.processor", "parse", 1),
    ("process_alerts", "alerts.pipeline", "process_alerts", 1),
    ("upsert: INSERT … ON CONFLICT", "alerts.pipeline", "upsert_firing", 2),
    ("upsert one alert (or its row upserted ahead)", "alerts.pipeline", "upsert", 2),
    ("find_or_open_incident", "alerts.pipeline", "find_or_open_incident", 2),
    ("record (timeline, batched)", "alerts.pipeline", "record", 2),
    ("link_alerts: one UPDATE per incident", "alerts.context", "Context.link_alerts", 1),
    ("mark processed", "alerts.processor", "_mark_processed", 1),
    ("COMMIT", "django.db.backends.base.base", "BaseDatabaseWrapper.commit", 1),
]


class Timers:
    def __init__(self):
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.missing: list[str] = []

    def wrap(self, label: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            c0, w0 = time.process_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu[label] += time.process_time() - c0
                self.wall[label] += time.perf_counter() - w0
                self.calls[label] += 1

        return timed

    def install(self, steps: list[tuple[str, str, str, int]]) -> None:
        import importlib

        for label, module_name, attr, _depth in steps:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                self.missing.append(label)
                continue
            owner, _, name = attr.rpartition(".")
            target = getattr(module, owner, None) if owner else module
            original = getattr(target, name, None) if target is not None else None
            if original is None:
                self.missing.append(label)
            elif isinstance(original, dict):  # PARSERS: wrap each format's parser
                for kind, fn in list(original.items()):
                    original[kind] = self.wrap(label, fn)
            else:
                setattr(target, name, self.wrap(label, original))

    def reset(self) -> None:
        self.cpu.clear()
        self.wall.clear()
        self.calls.clear()


class Statements:
    """A connection.execute_wrapper that times each statement, by kind."""

    def __init__(self):
        self.count: Counter[str] = Counter()
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.texts: list[str] = []
        self.long: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):
        w0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = _kind(sql)
            self.count[key] += 1
            self.wall[key] += time.perf_counter() - w0
            self.texts.append(sql)
            if len(sql) > 4096 or (not many and params is not None and len(params) > 50):
                # psycopg parses such a statement afresh each time (it caches shorter ones)
                self.long[key] += 1


@functools.lru_cache(maxsize=4096)  # the same texts come again and again; the regexes cost
def _kind(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql.strip())
    if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
        return sql.split(' "')[0]
    m = re.match(r'(INSERT INTO|UPDATE|DELETE FROM) "?(\w+)"?', sql)
    if m:
        extra = " ON CONFLICT" if "ON CONFLICT" in sql else ""
        return f"{m.group(1)} {m.group(2)}{extra}"
    m = re.match(r'SELECT .*? FROM "?(\w+)"?', sql)
    if m:
        lock = " FOR UPDATE" if "FOR UPDATE" in sql else ""
        return f"SELECT {m.group(1)}{lock}"
    return sql[:60]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=300, help="timed requests per scenario")
    p.add_argument("--scenarios", default=",".join(SHAPES))
    p.add_argument("--sql", action="store_true", help="print each statement's text")
    p.add_argument("--cprofile", action="store_true", help="also print cProfile's top functions")
    p.add_argument(
        "--process", action="store_true", help="also time processing what each scenario stored"
    )
    p.add_argument(
        "--fast-db", action="store_true", help="PostgreSQL without fsync (default: durable)"
    )
    opts = p.parse_args(argv)
    with running_services(durable=not opts.fast_db) as services:
        env = {
            **services.env(),
            "SECRET_KEY": "bench-profile-" + os.urandom(32).hex(),
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "MUSTER_DATA_DIR": tempfile.mkdtemp(prefix="muster-profile-"),
        }
        env.pop("MUSTER_TEST_SERVICES", None)
        os.environ.update(env)
        os.environ.pop("MUSTER_TEST_SERVICES", None)
        subprocess.run(
            [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
        )
        os.environ["DJANGO_SETTINGS_MODULE"] = "muster.settings"
        import warnings

        warnings.filterwarnings("ignore", message="No directory at")
        import django

        django.setup()
        from django.db import connection
        from django.test import Client

        from alerts.models import Integration, Kind
        from alerts.processor import process_pending
        from incidents.models import Service

        timers = Timers()
        timers.install(STEPS + PROCESS_STEPS if opts.process else STEPS)
        if timers.missing:
            print(f"(steps not found in the code, not timed: {', '.join(timers.missing)})")
        service, _ = Service.objects.get_or_create(name="bench")
        integration, _ = Integration.objects.get_or_create(
            name="bench-alertmanager", defaults={"kind": Kind.ALERTMANAGER, "service": service}
        )
        client = Client()
        path = integration.ingest_path

        def post(data: bytes) -> None:
            r = client.post(path, data=data, content_type="application/json")
            assert r.status_code == 200, (r.status_code, r.content[:300])

        floor = django_floor(client)
        print(
            f"Django floor on this machine: GET /healthz {floor[0]:.2f} ms CPU, {floor[1]:.2f} ms"
        )
        for name in opts.scenarios.split(","):
            batch, dup, ppg = SHAPES[name]
            tag = name.replace("-", "")
            shape = Shape("alertmanager", batch, dup, tag, f"{tag}pool" if dup else tag, 4, ppg)
            if dup:
                for g in range(shape.groups):
                    post(body(shape, 0, pool_alerts(shape, 0, g)))
            for i in range(20):  # warm up: open the groups' incidents, fill caches
                post(request_body(shape, 0, i))
            statements = Statements()
            with connection.execute_wrapper(statements):
                post(request_body(shape, 0, 20))
            title = f"{batch} alert(s) per request" + (", 90% repeats" if dup else ", all new")
            print(f"\n=== {name}: {title}")
            report_statements(statements, opts.sql)
            n = max(5, opts.requests // (20 if batch > 1 else 1))
            timers.reset()
            c0, w0 = time.process_time(), time.perf_counter()
            for i in range(21, 21 + n):
                post(request_body(shape, 0, i))
            cpu, wall = (time.process_time() - c0) / n, (time.perf_counter() - w0) / n
            glue = "handler, middleware, URL routing, view glue"
            report_steps(timers, STEPS, n, cpu, wall, batch, glue)
            if opts.process:
                timers.reset()
                c0, w0 = time.process_time(), time.perf_counter()
                done = process_pending()  # every request the scenario stored, in batches
                cpu, wall = (time.process_time() - c0) / done, (time.perf_counter() - w0) / done
                print(f"processing the {done} stored requests:")
                report_steps(timers, PROCESS_STEPS, done, cpu, wall, batch, "batch glue")
            if opts.cprofile:
                profiler = cProfile.Profile()
                with profiler_on(profiler):
                    for i in range(21 + n, 21 + 2 * n):
                        post(request_body(shape, 0, i))
                report_cprofile(profiler, n)
                if opts.process:
                    profiler = cProfile.Profile()
                    statements = Statements()
                    with profiler_on(profiler), connection.execute_wrapper(statements):
                        done = process_pending()
                    print("processing them, statements:")
                    report_statements(statements, opts.sql)
                    profiler.dump_stats(str(BENCH / "results" / f"profile-ingest-{name}.pstats"))
                    print("processing them:")
                    report_cprofile(profiler, done)
    return 0


def django_floor(client) -> tuple[float, float]:
    for _ in range(50):
        client.get("/healthz")
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(300):
        client.get("/healthz")
    return (time.process_time() - c0) / 300 * 1000, (time.perf_counter() - w0) / 300 * 1000


@contextlib.contextmanager
def profiler_on(profiler: cProfile.Profile):
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


def report_statements(statements: Statements, show_sql: bool) -> None:
    total = sum(statements.wall.values())
    n = sum(statements.count.values())
    print(f"{n} SQL statements in one request, {total * 1000:.2f} ms of round trips")
    for key, count in statements.count.most_common():
        long = statements.long[key]
        long = f"  ({long} too long for psycopg's cache)" if long else ""
        print(f"  {count:>4} × {key:<52} {statements.wall[key] * 1000:7.2f} ms{long}")
    if show_sql:
        for sql in statements.texts:
            print("     ", re.sub(r"\s+", " ", sql)[:300])


def report_steps(
    timers: Timers,
    steps: list[tuple[str, str, str, int]],
    n: int,
    cpu: float,
    wall: float,
    batch: int,
    glue: str,
) -> None:
    print(
        f"per request: {cpu * 1000:.2f} ms CPU in this process, {wall * 1000:.2f} ms wall"
        f" ({n} requests; per alert {cpu * 1000 / batch:.3f} ms CPU)"
    )
    print(f"  {'step':<48} {'CPU ms':>8} {'wall ms':>8} {'calls':>6}  {'% of CPU':>8}")
    view_cpu = 0.0
    for label, _m, _a, depth in steps:
        if label not in timers.calls:
            continue
        c = timers.cpu[label] / n * 1000
        w = timers.wall[label] / n * 1000
        if depth == 1:
            view_cpu += c
        indent = "  " * (depth - 1)
        print(
            f"  {indent + label:<48} {c:8.2f} {w:8.2f} {timers.calls[label] / n:6.1f}"
            f"  {100 * c / (cpu * 1000):7.1f}%"
        )
    rest = cpu * 1000 - view_cpu
    print(f"  {'rest: ' + glue:<48} {rest:8.2f} {'':>8} {'':>6}  {100 * rest / (cpu * 1000):7.1f}%")


def report_cprofile(profiler: cProfile.Profile, n: int) -> None:
    stats = pstats.Stats(profiler)
    print("  cProfile, top own time (inflated by the profiler; for ranking):")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:25]
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in rows:
        short = re.sub(
            r".*site-packages/|.*/lib/python3\.\d+/|" + re.escape(str(ROOT)) + "/", "", filename
        )
        print(f"    {tt / n * 1000:7.3f} ms  {nc / n:7.1f}×  {short}:{line}({func})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Ingest benchmark: the real server on loopback, against throwaway PostgreSQL and Redis.

    python bench/ingest.py                                   # muster.webserver (granian), 3 workers
    python bench/ingest.py --server granian,gunicorn,daphne,uvicorn --workers 2,3,4
    python bench/ingest.py --quick                           # 3 s per run, for a smoke test

For each server configuration it starts PostgreSQL and Redis (muster_services), migrates,
creates a service with an Alertmanager and a generic integration, starts the server (and a
Celery worker and beat, as in production), and for each scenario

- single      one alert per request, every fingerprint new
- single-dup  one alert per request, 10% new, 90% repeats of alerts already sent
- batch       Alertmanager batches of 100, every fingerprint new
- batch-dup   batches of 100: 10 new, 90 repeats (a group re-sent with a few new alerts)

measures the accept rate with a closed-loop client (wrk, else bench/loadgen.py): requests/s,
alerts/s, p50/p99 latency, refusals; then the end-to-end rate, until every accepted alert is in
the database attached to its incident; then checks, fingerprint by fingerprint, that every
alert answered 2xx is stored and counted exactly as often as it was accepted (zero lost). Then
it offers a constant (open-loop) rate, half the measured maximum and half the target, and
reports p50/p99 from each request's due time. It prints a table and writes JSON to
bench/results/. Targets (2 cores): 1,000 single-alert requests/s, 5,000 alerts/s batched, p99
under 100 ms at half that load, zero lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

import psycopg  # noqa: E402
from payloads import Shape, alerts_of, body, pool_alerts  # noqa: E402
from pyspy_summary import parse as parse_stacks  # noqa: E402
from pyspy_summary import render as render_stacks  # noqa: E402
from pyspy_summary import summarize as summarize_stacks  # noqa: E402

from muster_services import free_port, running_services  # noqa: E402

BIN = VENV_PYTHON.parent
ASGI_APP = "muster.asgi:application"
RESULTS = BENCH / "results"
TARGET_SINGLE_RPS = 1000
TARGET_BATCH_ALERTS = 5000
TARGET_P99_MS = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class Scenario:
    name: str
    batch: int
    dup: bool
    pool_per_group: int

    @property
    def target_rps(self) -> float:
        return TARGET_SINGLE_RPS if self.batch == 1 else TARGET_BATCH_ALERTS / self.batch


SCENARIOS = {
    "single": Scenario("single", 1, False, 25),
    "single-dup": Scenario("single-dup", 1, True, 25),
    "batch": Scenario("batch", 100, False, 90),
    "batch-dup": Scenario("batch-dup", 100, True, 90),
}


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- CPU accounting, from /proc -------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, int]]:
    """Return {pid: (ppid, cpu ticks incl. reaped children)} for every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        table[int(entry.name)] = (int(fields[1]), ticks)
    return table


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return sum(parts), parts[3] + parts[4]  # total, idle + iowait


class CpuMeter:
    """CPU used by each group of processes (by their root pid) between start() and stop()."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots

    def _snapshot(self) -> dict[str, int]:
        table = _proc_table()
        owner: dict[int, str] = {}
        by_root = {pid: name for name, pid in self.roots.items()}

        def group(pid: int) -> str:
            seen = []
            while pid > 1 and pid not in owner and pid not in by_root:
                seen.append(pid)
                pid = table.get(pid, (0, 0))[0]
            name = owner.get(pid) or by_root.get(pid, "other")
            for p in seen:
                owner[p] = name
            return name

        totals: Counter[str] = Counter()
        for pid, (_, ticks) in table.items():
            totals[group(pid)] += ticks
        return totals

    def start(self) -> None:
        self.before = self._snapshot()
        self.machine_before = _machine_ticks()

    def stop(self, client_cpu_s: float) -> dict[str, float]:
        after = self._snapshot()
        total1, idle1 = _machine_ticks()
        total0, idle0 = self.machine_before
        span = max(1, total1 - total0)  # ticks over all cores
        shares = {
            name: round(100 * max(0, after[name] - self.before.get(name, 0)) / span, 1)
            for name in self.roots
        }
        shares["client"] = round(100 * client_cpu_s * CLK_TCK / span, 1)
        shares["idle"] = round(100 * (idle1 - idle0) / span, 1)
        # Whatever else ran meanwhile (other users of the machine): the figures are only as
        # good as this is small.
        shares["other"] = round(max(0.0, 100 - sum(shares.values())), 1)
        self.seconds = {
            name: max(0, after[name] - self.before.get(name, 0)) / CLK_TCK for name in self.roots
        }
        return shares

    def per_request_ms(self, requests: int) -> dict[str, float]:
        """CPU milliseconds per answered request, by group, and what 2 free cores would carry.

        CPU time per request is much less disturbed by other users of the machine than a rate
        is, so `cpu_bound_capacity` (the cores divided by the CPU that one request costs the
        server, PostgreSQL, Redis and Celery) is what this configuration would reach alone.
        """
        n = max(1, requests)
        ms = {name: round(1000 * sec / n, 2) for name, sec in self.seconds.items()}
        total = sum(ms.values())
        ms["total"] = round(total, 2)
        ms["cpu_bound_capacity_per_s"] = round(CORES * 1000 / total, 1) if total else None
        return ms


def wait_for_quiet(max_wait: float) -> float:
    """Wait (at most `max_wait` s) until the machine is nearly idle; return the idle share."""
    deadline = time.monotonic() + max_wait
    quiet = 0
    idle_share = 0.0
    while True:
        total0, idle0 = _machine_ticks()
        time.sleep(1.0)
        total1, idle1 = _machine_ticks()
        idle_share = 100 * (idle1 - idle0) / max(1, total1 - total0)
        quiet = quiet + 1 if idle_share >= 85 else 0
        if quiet >= 3 or time.monotonic() >= deadline:
            return idle_share


# --- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, argv: list[str], env: dict[str, str], logdir: Path) -> Proc:
    log = logdir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name, popen, log)


def server_argv(server: str, workers: int, port: int) -> list[str]:
    if server == "granian":  # what deploys: deploy/ runs `python -m muster.webserver`
        return [
            "env",
            f"MUSTER_WEB_BIND=127.0.0.1:{port}",
            f"WEB_CONCURRENCY={workers}",
            str(VENV_PYTHON),
            "-m",
            "muster.webserver",
        ]
    if server == "gunicorn":  # for comparison (pip install gunicorn): what deployed until 2026-11
        return [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "muster.wsgi:application",
        ]
    if server == "daphne":
        return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0", ASGI_APP]
    if server == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            "muster.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    raise ValueError(server)


# deploy/ gives the Celery worker a tenth of the web tier's CPU weight (systemd CPUWeight=10,
# compose cpu_shares: 102): when the box is short of CPU, storing alerts and answering senders
# come first and processing catches up. Here every process has its own session, so its own
# autogroup, whose nice value is the same lever: nice 10 is a weight of 110 against 1,024.
WORKER_AUTOGROUP_NICE = 10


def add_worker_processes_option(p: argparse.ArgumentParser) -> None:
    """--worker-processes (shared with bench/drain.py)."""
    p.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        metavar="N",
        help="Celery worker processes (4 threads each), with MUSTER_INGEST_LANES=N",
    )


def add_deployment_options(p: argparse.ArgumentParser) -> None:
    """Options that change the measured deployment (shared with bench/paging.py)."""
    p.add_argument(
        "--fast-db",
        action="store_true",
        help="PostgreSQL without fsync, as the tests run it (default: durable, as in production)",
    )
    p.add_argument(
        "--worker-priority",
        choices=("low", "equal"),
        default="low",
        help="the Celery worker's CPU weight against the web tier: low as deploy/ sets it",
    )


def lower_cpu_priority(pid: int, nice: int = WORKER_AUTOGROUP_NICE) -> bool:
    """Give a process's session (autogroup) less CPU weight; False where the kernel has none."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:
        return False
    return True


def wait_healthy(port: int, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer /healthz within {timeout:.0f}s:\n{proc.tail()}")


# --- load ----------------------------------------------------------------------------------


@dataclass
class Load:
    """What one client run sent and what came back, per slot."""

    shape: Shape
    duration_s: float
    requests: int  # answered
    latency_ms: dict
    statuses: dict
    threads: list[dict]
    client_cpu_s: float
    socket_errors: int = 0
    extra: dict = field(default_factory=dict)

    def accepted_indices(self) -> dict[int, list[int]]:
        out = {}
        for t in self.threads:
            not_ok = self.refused(t) | self.unanswered(t)
            out[t["slot"]] = [i for i in range(t["sent"]) if i not in not_ok]
        return out

    def unanswered_indices(self) -> dict[int, list[int]]:
        return {t["slot"]: sorted(self.unanswered(t)) for t in self.threads}

    @staticmethod
    def refused(t: dict) -> set[int]:
        return {int(x.split(":")[0]) for x in t["refused"].split(",") if x}

    @staticmethod
    def unanswered(t: dict) -> set[int]:
        out = {int(x) for x in t["unanswered"].split(",") if x}
        if t.get("in_flight", -1) >= 0:
            out.add(t["in_flight"])
        return out

    @property
    def accepted_requests(self) -> int:
        return sum(t["accepted"] for t in self.threads)

    @property
    def refused_requests(self) -> int:
        return sum(len(self.refused(t)) for t in self.threads)


def run_wrk(shape: Shape, path: str, port: int, slots: int, duration: float) -> Load:
    argv = ["wrk", "-t", str(slots), "-c", str(slots), "-d", f"{duration:g}s", "--timeout", "30s"]
    argv += ["-s", str(BENCH / "wrk_ingest.lua"), f"http://127.0.0.1:{port}", "--", path]
    argv += shape.wrk_args()
    before = os.times()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    after = os.times()
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    lat = {k: round(v / 1000, 2) for k, v in data["latency_us"].items()}
    errors = data["errors"]
    statuses = {"non-2xx/3xx": errors["status"]} if errors["status"] else {}
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Load(
        shape=shape,
        duration_s=data["duration_us"] / 1e6,
        requests=data["requests"],
        latency_ms=lat,
        statuses=statuses,
        threads=data["threads"],
        client_cpu_s=cpu,
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        extra={"wrk_errors": errors},
    )


def worker_pids(root: int) -> list[int]:
    """Return the server's request-handling processes: its children, or itself if none."""
    table = _proc_table()
    children = [pid for pid, (ppid, _) in table.items() if ppid == root]
    python = [p for p in children if "python" in _cmdline(p) or "gunicorn" in _cmdline(p)]
    return python or [root]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextlib.contextmanager
def py_spy(enabled: bool, root: int, duration: float, tag: str) -> Iterator[dict]:
    """Record the server's workers with py-spy while the body runs; fill in the summary."""
    out: dict = {}
    if not enabled:
        yield out
        return
    RESULTS.mkdir(exist_ok=True)
    procs = []
    for pid in worker_pids(root):
        path = RESULTS / f"pyspy-{tag}-{pid}.txt"
        argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration"]
        argv += [str(max(1, int(duration))), "--rate", "97", "--format", "raw", "--idle"]
        argv += ["--nonblocking", "--output", str(path)]
        procs.append(
            (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
        )
    try:
        yield out
    finally:
        stacks = []
        for proc, path in procs:
            try:
                proc.wait(timeout=duration + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if path.exists():
                stacks += parse_stacks(path.read_text().splitlines())
        out.update(summarize_stacks(stacks))
        say(render_stacks(out))


def run_floor(port: int, slots: int, duration: float) -> dict:
    """GET /healthz as fast as the server answers: its own cost, with no ingest work."""
    argv = ["wrk", "-t", str(slots), "-c", str(slots), "-d", f"{duration:g}s", "--timeout", "30s"]
    argv += ["-s", str(BENCH / "wrk_report.lua"), f"http://127.0.0.1:{port}/healthz"]
    before = os.times()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    after = os.times()
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = data["errors"]
    return {
        "requests": data["requests"],
        "requests_per_s": round(data["requests"] / (data["duration_us"] / 1e6), 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in data["latency_us"].items()},
        "errors": sum(errors.values()),
        "client_cpu_s": (after.children_user - before.children_user)
        + (after.children_system - before.children_system),
    }


def run_loadgen(
    shape: Shape,
    path: str,
    port: int,
    slots: int,
    duration: float,
    rate: float | None = None,
    connections: int = 64,
) -> Load:
    spec = {
        "port": port,
        "path": path,
        "shape": shape.as_dict(),
        "slots": slots,
        "duration": duration,
        "rate": rate,
        "connections": connections,
    }
    argv = [str(VENV_PYTHON), str(BENCH / "loadgen.py"), json.dumps(spec)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode:
        raise RuntimeError(f"loadgen failed:\n{out.stderr}")
    data = json.loads(out.stdout)
    errors = sum(v for k, v in data["statuses"].items() if not k.isdigit())
    return Load(
        shape=shape,
        duration_s=data["elapsed_s"],
        requests=data["requests"],
        latency_ms=data["latency_ms"],
        statuses=data["statuses"],
        threads=data["threads"],
        client_cpu_s=data["client_cpu_s"],
        socket_errors=errors,
        extra={k: data[k] for k in ("connects", "late_starts", "overloaded")},
    )


def seed_pool(shape: Shape, path: str, port: int, slots: int) -> int:
    """Send every pool alert once (one request per slot and group); return the alerts sent."""

    def send(slot: int) -> int:
        sent = 0
        for g in range(shape.groups):
            alerts = pool_alerts(shape, slot, g)
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}",
                data=body(shape, slot, alerts),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 - http only
                if r.status != 200:
                    raise RuntimeError(f"seeding the pool got {r.status}")
            sent += len(alerts)
        return sent

    with ThreadPoolExecutor(max_workers=min(slots, 4)) as pool:
        return sum(pool.map(send, range(slots)))


# --- the database's side --------------------------------------------------------------------


class Db:
    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)

    def stored(self, integration_id: int, prefixes: list[str]) -> dict[str, tuple[int, bool]]:
        """Return {fingerprint: (occurrences, attached to an incident)} of firing alerts."""
        out: dict[str, tuple[int, bool]] = {}
        for prefix in prefixes:
            rows = self.conn.execute(
                "SELECT fingerprint, occurrences, incident_id IS NOT NULL FROM alerts_alert "
                "WHERE integration_id = %s AND status = 'firing' AND fingerprint LIKE %s",
                [integration_id, prefix + ".%"],
            ).fetchall()
            for fp, occ, attached in rows:
                out[fp] = (occ, attached)
        return out

    def visible(self, integration_id: int, prefixes: list[str]) -> int:
        """Return the occurrences counted on alerts attached to an incident, over `prefixes`."""
        total = 0
        for prefix in prefixes:
            (n,) = self.conn.execute(
                "SELECT coalesce(sum(occurrences), 0) FROM alerts_alert WHERE integration_id = %s"
                " AND status = 'firing' AND incident_id IS NOT NULL AND fingerprint LIKE %s",
                [integration_id, prefix + ".%"],
            ).fetchone()
            total += n
        return total

    def pending(self, integration_id: int) -> int:
        """Return how many accepted requests of the integration wait to be processed."""
        (n,) = self.conn.execute(
            "SELECT count(*) FROM alerts_ingestrequest WHERE integration_id = %s"
            " AND outcome = 'accepted' AND processed_at IS NULL",
            [integration_id],
        ).fetchone()
        return n

    def total(self, integration_id: int, prefixes: list[str]) -> int:
        """Return the occurrences counted on all alerts (attached or not) over `prefixes`."""
        total = 0
        for prefix in prefixes:
            (n,) = self.conn.execute(
                "SELECT coalesce(sum(occurrences), 0) FROM alerts_alert WHERE integration_id = %s"
                " AND fingerprint LIKE %s",
                [integration_id, prefix + ".%"],
            ).fetchone()
            total += n
        return total

    def busy_backends(self) -> int:
        """Return how many other sessions are running a statement or hold a transaction."""
        (n,) = self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
        ).fetchone()
        return n

    def integration_id(self, path: str) -> int:
        token = path.rstrip("/").rsplit("/", 1)[-1]
        (pk,) = self.conn.execute(
            "SELECT id FROM alerts_integration WHERE token = %s", [token]
        ).fetchone()
        return pk

    def reset(self) -> None:
        self.conn.execute(
            "TRUNCATE alerts_alert, alerts_ingestrequest, incidents_timelineentry,"
            " incidents_incident CASCADE"
        )
        self.conn.execute("VACUUM ANALYZE")

    def reset_statements(self) -> None:
        self.conn.execute("SELECT pg_stat_statements_reset()")

    def top_statements(self, count: int = 15) -> list[dict]:
        """The statements that took PostgreSQL the most time since the last reset (time spent
        waiting for locks included: a lock wait shows as a high mean with few rows)."""
        rows = self.conn.execute(
            "SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g')"
            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
            " WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT %s",
            [count],
        ).fetchall()
        return [
            {
                "calls": calls,
                "total_ms": round(total, 1),
                "mean_ms": round(total / max(1, calls), 3),
                "rows": n,
                "query": query[:300],
            }
            for calls, total, n, query in rows
        ]

    def stat(self) -> dict[str, int]:
        row = self.conn.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched"
            " FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return dict(
            zip(("commits", "rollbacks", "inserted", "updated", "fetched"), row, strict=True)
        )


def settle(db: Db, integration_id: int, prefixes: list[str]) -> None:
    """Wait until the server is done: no transaction open, and the stored counts steady.

    Requests the client gave up on (in flight when it stopped) may still be running; they must
    land before the next run takes its baseline, or they would count as that run's extras.
    """
    deadline = time.monotonic() + 120
    last, idle_polls, since = None, 0, time.monotonic()
    while time.monotonic() < deadline:
        now = db.visible(integration_id, prefixes), db.total(integration_id, prefixes)
        if now != last:
            last, since = now, time.monotonic()
        idle_polls = idle_polls + 1 if db.busy_backends() == 0 else 0
        if idle_polls >= 3 and time.monotonic() - since >= 0.5:
            return
        time.sleep(0.05)


class WaitSampler:
    """Sample what the server's PostgreSQL sessions are doing, every 50 ms, during a run.

    `active` with no wait event is a backend on the CPU; `idle in transaction` is a backend
    waiting for Django between two statements of a transaction; `Lock` waits are row locks
    (one transaction waiting for another's commit).
    """

    def __init__(self, url: str):
        self.url = url
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 48)"
                    " FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' AND state <> 'idle'"
                ).fetchall()
                self.samples += 1
                for state, kind, event, query in rows:
                    key = f"{state}: {kind}/{event}" if kind else f"{state}: on CPU"
                    if kind == "Lock":  # which statement waits for another's row lock
                        key += f" in {' '.join(query.split())}"
                    self.counts[key] += 1
                self._stop.wait(0.05)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict[str, float]:
        """Average number of sessions in each state (over the samples)."""
        n = max(1, self.samples)
        return {k: round(v / n, 2) for k, v in self.counts.most_common(8)}


DRAIN_TIMEOUT_S = 900


def check_and_time(
    db: Db,
    integration_id: int,
    load: Load,
    baseline: dict[str, tuple[int, bool]],
    ended: float,
    drained: Callable[[], None] = lambda: None,
) -> dict:
    """Wait until every accepted alert is attached to its incident; check nothing was lost.

    `drained` runs once the backlog is drained, before the counting: the counts scan the alerts
    table (110 ms each with a few hundred thousand alerts), which is the bench's work, not the
    server's, and must stay out of what is metered then."""
    shape = load.shape
    prefixes = sorted({shape.prefix, shape.pool})
    accepted = Counter()
    for slot, indices in load.accepted_indices().items():
        for i in indices:
            for fp, _ in alerts_of(shape, slot, i):
                accepted[fp] += 1
    maybe = Counter()
    for slot, indices in load.unanswered_indices().items():
        for i in indices:
            for fp, _ in alerts_of(shape, slot, i):
                maybe[fp] += 1
    base_total = sum(occ for occ, attached in baseline.values() if attached)
    wanted = base_total + sum(accepted.values())
    # Accepted requests are stored first and processed after: an alert is lost only if it is
    # missing once nothing is left to process. Wait for the backlog, however long it takes (up
    # to DRAIN_TIMEOUT_S), then count.
    deadline = ended + DRAIN_TIMEOUT_S
    visible_at = None
    # While requests wait, only their count is polled: counting the visible alerts scans the
    # alerts table, and doing that every 50 ms took a core from the processing it measured.
    while time.monotonic() < deadline:
        if db.pending(integration_id):
            time.sleep(0.1)
            continue
        if db.visible(integration_id, prefixes) >= wanted:
            visible_at = time.monotonic()
            break
        time.sleep(0.5)  # the last batch may be committing
        if db.pending(integration_id) == 0 and db.visible(integration_id, prefixes) < wanted:
            break  # nothing left to process: what is missing now is missing
    drained()
    # Requests the client gave up on (in flight when it stopped) may still be committing: let
    # them land, so they are counted here and not in the next run's baseline.
    settle(db, integration_id, prefixes)
    stored = db.stored(integration_id, prefixes)
    lost = extra = unattached = 0
    for fp in set(accepted) | set(maybe):
        occ, attached = stored.get(fp, (0, False))
        lo = baseline.get(fp, (0, False))[0] + accepted[fp]
        hi = lo + maybe[fp]
        if occ < lo:
            lost += lo - occ
        elif occ > hi:
            extra += occ - hi
        if occ and not attached:
            unattached += 1
    accepted_alerts = sum(accepted.values())
    e2e_s = (visible_at - ended + load.duration_s) if visible_at else None
    return {
        "accepted_alerts": accepted_alerts,
        "maybe_alerts": sum(maybe.values()),
        "lost": lost,
        "extra": extra,
        "unattached": unattached,
        "visible_lag_s": round(visible_at - ended, 3) if visible_at else None,
        "e2e_alerts_per_s": round(accepted_alerts / e2e_s, 1) if e2e_s else None,
    }


# --- one server configuration ---------------------------------------------------------------


@dataclass
class Config:
    server: str
    workers: int

    @property
    def label(self) -> str:
        if self.server == "daphne":
            return "daphne (1 process)"
        kind = "sync workers" if self.server == "gunicorn" else "workers"
        if self.server == "granian":
            return f"muster.webserver {self.workers} w"
        return f"{self.server} {self.workers} {kind}"


def worker_argv(processes: int, port: int) -> list[str]:
    """The Celery worker as deploy/ runs it: a thread pool (prefork closes psycopg's pool per
    task); several processes (one lane each) in one session, so they share one CPU weight as a
    systemd service's or a pod's processes share theirs."""
    common = [str(BIN / "celery"), "-A", "muster", "worker", "-l", "WARNING", "--pool", "threads"]
    argvs = [[*common, "-c", "4", "-n", f"bench-{port}-{i}@%h"] for i in range(processes)]
    if processes == 1:
        return argvs[0]
    return ["sh", "-c", " & ".join(shlex.join(a) for a in argvs) + " & wait"]


@contextlib.contextmanager
def running_stack(
    config: Config,
    env: dict[str, str],
    logdir: Path,
    celery: bool,
    worker_priority: str,
    worker_processes: int = 1,
) -> Iterator[tuple[int, dict[str, int]]]:
    """Start the server (and Celery worker + beat); yield its port and the pids to meter."""
    port = free_port()
    procs: list[Proc] = []
    try:
        server = start(config.server, server_argv(config.server, config.workers, port), env, logdir)
        procs.append(server)
        roots = {"server": server.popen.pid}
        if celery:
            procs.append(start("celery-worker", worker_argv(worker_processes, port), env, logdir))
            if worker_priority == "low" and not lower_cpu_priority(procs[-1].popen.pid):
                say("could not lower the worker's CPU weight (no autogroups): measured as equal")
            beat = [str(BIN / "celery"), "-A", "muster", "beat", "-l", "WARNING"]
            beat += ["-s", str(logdir / f"beat-schedule-{port}")]
            procs.append(start("celery-beat", beat, env, logdir))
            roots["celery"] = procs[1].popen.pid
            roots["beat"] = procs[2].popen.pid
        wait_healthy(port, server)
        yield port, roots
    finally:
        for proc in reversed(procs):
            proc.stop()


def run_scenario(
    n: int,
    name: str,
    config: Config,
    opts,
    services,
    paths: dict,
    db: Db,
    port: int,
    roots: dict[str, int],
    meter: CpuMeter,
) -> dict:
    """Run one scenario against the running server and return its row of figures."""
    sc = SCENARIOS[name]
    fmt = opts.single_format if sc.batch == 1 else "alertmanager"
    path = paths[fmt]
    integration_id = db.integration_id(path)
    tag = f"{name.replace('-', '')}{port}x{n}"
    pool = f"{tag}pool"
    shape = Shape(fmt, sc.batch, sc.dup, f"{tag}max", pool if sc.dup else f"{tag}max")
    shape = Shape(**{**shape.as_dict(), "pool_per_group": sc.pool_per_group})
    row: dict = {"config": config.label, "scenario": name, "format": fmt}
    if sc.dup:
        t0 = time.monotonic()
        seeded = seed_pool(shape, path, port, opts.connections)
        # Accepted is not yet processed: the baseline counts the pool once it is in place.
        drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while db.pending(integration_id) and time.monotonic() < drain_deadline:
            time.sleep(0.05)
        say(f"{name}: seeded {seeded} pool alerts in {time.monotonic() - t0:.1f}s")
    say(f"{name}: closed loop, {opts.connections} connections, {opts.duration:g}s")
    baseline = db.stored(integration_id, [pool]) if sc.dup else {}
    if opts.wait_quiet:
        idle = wait_for_quiet(opts.wait_quiet)
        if idle < 85:
            say(f"{name}: the machine is busy ({100 - idle:.0f}% used by others); going on")
    stat0 = db.stat()
    meter.start()
    spy_tag = f"{config.server}{config.workers}-{name}"
    waits = WaitSampler(services.database_url)
    with (
        py_spy(opts.py_spy, roots["server"], opts.duration - 1, spy_tag) as spy,
        waits,
    ):
        if opts.client == "wrk":
            load = run_wrk(shape, path, port, opts.connections, opts.duration)
        else:
            load = run_loadgen(shape, path, port, opts.connections, opts.duration)
        ended = time.monotonic()
    cpu = meter.stop(load.client_cpu_s)
    stat1 = db.stat()
    check = check_and_time(db, integration_id, load, baseline, ended)
    rps = load.accepted_requests / load.duration_s
    row["max"] = {
        "requests_per_s": round(rps, 1),
        "alerts_per_s": round(rps * sc.batch, 1),
        "latency_ms": load.latency_ms,
        "refused": load.refused_requests,
        "socket_errors": load.socket_errors,
        "statuses": load.statuses,
        "cpu_percent_of_machine": cpu,
        "cpu_ms_per_request": meter.per_request_ms(load.requests),
        "py_spy": spy or None,
        "pg_sessions_avg": waits.summary(),
        "db_per_request": {
            k: round((stat1[k] - stat0[k]) / max(1, load.requests), 1) for k in stat0
        },
        **check,
    }
    say(f"{name}: {_brief(row['max'])}")
    say(f"{name}: PostgreSQL sessions on average: {row['max']['pg_sessions_avg']}")
    row["half"] = []
    for kind in opts.half_load:
        rate = rps / 2 if kind == "measured" else sc.target_rps / 2
        if rate <= 0:
            continue
        if rate > rps * 0.95:
            # Offering more than the server can take only builds a queue: latency grows
            # for as long as the run lasts, and the figure means nothing.
            row["half"].append(
                {
                    "basis": kind,
                    "offered_requests_per_s": round(rate, 1),
                    "skipped": f"above the measured maximum, {rps:.0f} requests/s",
                }
            )
            say(f"{name}: not offering {rate:.0f} requests/s: the maximum is {rps:.0f}")
            continue
        # Enough requests for a p99 to mean something, within bounds.
        duration = min(max(opts.half_duration, 200 / rate), 3 * opts.half_duration)
        half_shape = Shape(**{**shape.as_dict(), "prefix": f"{tag}{kind}"})
        if not sc.dup:
            half_shape = Shape(**{**half_shape.as_dict(), "pool": half_shape.prefix})
        say(f"{name}: open loop at {rate:.1f} requests/s ({kind} max / 2)")
        if opts.wait_quiet:
            wait_for_quiet(opts.wait_quiet)
        baseline = db.stored(integration_id, [pool]) if sc.dup else {}
        if opts.pg_statements:
            db.reset_statements()
        meter.start()
        half = run_loadgen(
            half_shape,
            path,
            port,
            opts.connections,
            duration,
            rate=rate,
            connections=max(64, opts.connections),
        )
        ended = time.monotonic()
        statements: list[dict] = []

        def drained(half: Load = half, statements: list[dict] = statements) -> None:
            # Metered until the backlog is drained: what each request cost, processing included.
            meter.stop(half.client_cpu_s)
            if opts.pg_statements:
                statements.extend(db.top_statements())

        check = check_and_time(db, integration_id, half, baseline, ended, drained)
        entry = {
            "basis": kind,
            "duration_s": round(half.duration_s, 1),
            "samples": half.requests,
            "offered_requests_per_s": round(rate, 1),
            "achieved_requests_per_s": round(half.accepted_requests / half.duration_s, 1),
            "latency_ms": half.latency_ms,
            "refused": half.refused_requests,
            "socket_errors": half.socket_errors,
            "client_cpu_s": half.client_cpu_s,
            "client_overloaded": half.extra["overloaded"],
            "cpu_ms_per_request": meter.per_request_ms(half.requests),
            **check,
        }
        if opts.pg_statements:
            entry["pg_statements"] = statements
            for st in entry["pg_statements"]:
                say(
                    f"{name}: pg {st['calls']:>6} calls {st['total_ms']:>9.1f} ms"
                    f" (mean {st['mean_ms']:.3f}) {st['query'][:110]}"
                )
        row["half"].append(entry)
        say(f"{name}: {_brief(entry)}")
    return row


def run_config(config: Config, opts, services, base_env: dict, paths: dict, db: Db) -> dict:
    say(f"=== {config.label}")
    db.reset()
    logdir = Path(tempfile.mkdtemp(prefix="muster-bench-"))
    env = dict(base_env)
    prom = logdir / "prometheus"
    prom.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    results = []
    roots_extra = {"postgres": services.processes[0].pid, "redis": services.processes[1].pid}
    env.setdefault("MUSTER_INGEST_LANES", str(opts.worker_processes))
    stack = running_stack(
        config, env, logdir, not opts.no_celery, opts.worker_priority, opts.worker_processes
    )
    with stack as (port, roots):
        meter = CpuMeter({**roots, **roots_extra})
        # Warm up: imports, URL resolver, connection pools, PostgreSQL's caches.
        warm = Shape("alertmanager", 1, False, f"warm{port}", f"warm{port}")
        run_loadgen(warm, paths["alertmanager"], port, opts.connections, min(2.0, opts.duration))
        floor = None
        if opts.floor and opts.client == "wrk":
            if opts.wait_quiet:
                wait_for_quiet(opts.wait_quiet)
            meter.start()
            floor = run_floor(port, opts.connections, min(5.0, opts.duration))
            floor["cpu_percent_of_machine"] = meter.stop(floor["client_cpu_s"])
            floor["cpu_ms_per_request"] = meter.per_request_ms(floor["requests"])
            say(f"floor: GET /healthz {floor['requests_per_s']} req/s, {floor['latency_ms']}")
        for n, name in enumerate(opts.scenarios):
            try:
                row = run_scenario(n, name, config, opts, services, paths, db, port, roots, meter)
            except Exception as exc:  # one broken scenario must not lose the others' figures
                say(f"{name}: failed: {exc!r}")
                row = {"config": config.label, "scenario": name, "error": repr(exc)}
            results.append(row)
    shutil.rmtree(logdir, ignore_errors=True)
    return {
        "config": config.label,
        "server": config.server,
        "workers": config.workers,
        "floor_healthz": floor,
        "scenarios": results,
    }


def _brief(r: dict) -> str:
    lat = r["latency_ms"]
    rate = r.get("requests_per_s", r.get("achieved_requests_per_s"))
    return (
        f"{rate} req/s, p50 {lat['p50']} ms, p99 {lat['p99']} ms, refused {r['refused']},"
        f" socket errors {r['socket_errors']}, lost {r['lost']}, extra {r['extra']},"
        f" e2e {r['e2e_alerts_per_s']} alerts/s (lag {r['visible_lag_s']} s)"
        + (f", CPU ms/request {r['cpu_ms_per_request']}" if "cpu_ms_per_request" in r else "")
    )


# --- reporting ------------------------------------------------------------------------------


def table(report: list[dict]) -> str:
    """Three tables: accept and end-to-end rates, latency at a constant rate, CPU per request."""
    lines = ["accept rate (closed loop) and end-to-end rate"]
    head = (
        f"{'server':<24} {'scenario':<11} {'req/s':>7} {'alerts/s':>8} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'errors':>6} {'e2e a/s':>8} {'lost':>5} {'extra':>5}"
        f"   cpu % of machine: server/pg/client/OTHER/idle"
    )
    lines += [head, "─" * len(head)]
    for config in report:
        for row in config["scenarios"]:
            if "error" in row:
                lines.append(f"{config['config']:<24} {row['scenario']:<11} failed: {row['error']}")
                continue
            m = row["max"]
            c = m["cpu_percent_of_machine"]
            lines.append(
                f"{config['config']:<24} {row['scenario']:<11} {m['requests_per_s']:>7.1f}"
                f" {m['alerts_per_s']:>8.0f} {_ms(m['latency_ms']['p50']):>8}"
                f" {_ms(m['latency_ms']['p99']):>8} {m['refused'] + m['socket_errors']:>6}"
                f" {_num(m['e2e_alerts_per_s']):>8} {m['lost']:>5} {m['extra']:>5}"
                f"   {c.get('server', 0):.0f}/{c.get('postgres', 0):.0f}/{c.get('client', 0):.0f}"
                f"/{c.get('other', 0):.0f}/{c.get('idle', 0):.0f}"
            )
    lines += ["", "latency at a constant rate (open loop, from each request's due time)"]
    head = (
        f"{'server':<24} {'scenario':<11} │ {'½ measured':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'lost':>4} │ {'½ target':>8} {'p50 ms':>8} {'p99 ms':>8} {'lost':>4}"
    )
    lines += [head, "─" * len(head)]
    for config in report:
        for row in config["scenarios"]:
            if "error" in row:
                continue
            halves = {h["basis"]: h for h in row["half"]}
            cells = [f"{config['config']:<24} {row['scenario']:<11}"]
            for basis, width in (("measured", 10), ("target", 8)):
                h = halves.get(basis)
                if h is None:
                    cells.append(f"{'-':>{width}} {'':>8} {'':>8} {'':>4}")
                elif "skipped" in h:
                    rate = f"{h['offered_requests_per_s']:.1f}/s"
                    cells.append(f"{rate:>{width}} {'above the maximum':>22}")
                else:
                    rate = f"{h['offered_requests_per_s']:.1f}/s"
                    cells.append(
                        f"{rate:>{width}} {_ms(h['latency_ms']['p50']):>8}"
                        f" {_ms(h['latency_ms']['p99']):>8} {h['lost']:>4}"
                    )
            lines.append(" │ ".join(cells))
    lines += [
        "",
        "CPU per request (ms) and what it allows on 2 free cores (CPU-bound capacity; far less"
        " disturbed by other users of the machine than the rates above)",
    ]
    head = (
        f"{'server':<24} {'scenario':<11} {'server':>7} {'pg':>6} {'redis':>6} {'celery':>6}"
        f" {'total':>7} │ {'capacity req/s':>14} {'alerts/s':>9}"
    )
    lines += [head, "─" * len(head)]
    for config in report:
        rows = [r for r in config["scenarios"] if "error" not in r]
        floor = config.get("floor_healthz")
        if floor:
            rows.insert(0, {"scenario": "GET healthz", "max": floor, "batch": 0})
        for row in rows:
            ms = row["max"].get("cpu_ms_per_request")
            if not ms:
                continue
            batch = SCENARIOS[row["scenario"]].batch if row["scenario"] in SCENARIOS else 0
            cap = ms.get("cpu_bound_capacity_per_s")
            celery = ms.get("celery", 0) + ms.get("beat", 0)
            lines.append(
                f"{config['config']:<24} {row['scenario']:<11} {ms.get('server', 0):>7.2f}"
                f" {ms.get('postgres', 0):>6.2f} {ms.get('redis', 0):>6.2f} {celery:>6.2f}"
                f" {ms['total']:>7.2f} │ {_num(cap):>14}"
                f" {_num(cap * batch if cap and batch else None):>9}"
            )
    floors = [
        f"{c['config']}: {c['floor_healthz']['requests_per_s']:.0f} req/s,"
        f" p99 {c['floor_healthz']['latency_ms']['p99']:.1f} ms"
        for c in report
        if c.get("floor_healthz")
    ]
    if floors:
        lines += ["", "floor, GET /healthz (no database), measured: " + "; ".join(floors)]
    return "\n".join(lines)


def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _num(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def verdict(report: list[dict]) -> list[str]:
    out = []
    for config in report:
        for row in config["scenarios"]:
            if "error" in row:
                out.append(f"{config['config']:<24} {row['scenario']:<11} FAILED: {row['error']}")
                continue
            sc = SCENARIOS[row["scenario"]]
            m = row["max"]
            if sc.batch == 1:
                ok_rate = m["requests_per_s"] >= TARGET_SINGLE_RPS
                rate = f"{m['requests_per_s']:.0f} req/s (target {TARGET_SINGLE_RPS})"
            else:
                ok_rate = m["alerts_per_s"] >= TARGET_BATCH_ALERTS
                rate = f"{m['alerts_per_s']:.0f} alerts/s (target {TARGET_BATCH_ALERTS})"
            target_half = next((h for h in row["half"] if h["basis"] == "target"), None)
            if target_half is None:
                p99_text = "p99 at half target: not measured"
            elif "skipped" in target_half:
                p99_text = "p99 at half target FAIL: the server cannot take half the target"
            else:
                p99 = target_half["latency_ms"]["p99"]
                ok_p99 = p99 is not None and p99 < TARGET_P99_MS
                p99_text = f"p99 at half target {'OK' if ok_p99 else 'HIGH'} {_ms(p99)} ms"
            lost = m["lost"] + sum(h.get("lost", 0) for h in row["half"])
            out.append(
                f"{config['config']:<24} {row['scenario']:<11} rate {'OK ' if ok_rate else 'LOW'}"
                f" {rate}; {p99_text}; lost {lost}"
            )
    return out


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--server",
        default="granian",
        help="granian (python -m muster.webserver, as deployed), gunicorn, daphne, uvicorn or all",
    )
    p.add_argument("--workers", default="3", help="worker processes, e.g. 2,3,4 (not daphne)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per closed-loop run")
    p.add_argument("--half-duration", type=float, default=None, help="seconds per open-loop run")
    p.add_argument("--quick", action="store_true", help="3 s runs: a smoke test, not figures")
    p.add_argument("--connections", type=int, default=8, help="closed-loop connections")
    p.add_argument("--client", choices=("wrk", "python"), default=None)
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--single-format", choices=("alertmanager", "generic"), default="alertmanager")
    p.add_argument("--half-load", default="measured,target", help="measured,target or either")
    p.add_argument("--no-celery", action="store_true", help="do not run a Celery worker and beat")
    add_worker_processes_option(p)
    add_deployment_options(p)
    p.add_argument(
        "--pg-statements",
        action="store_true",
        help="load pg_stat_statements; after each open-loop run (drain included), print the"
        " statements that took PostgreSQL the most time and add them to the JSON",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each run, wait up to S seconds for the machine to be idle",
    )
    p.add_argument(
        "--py-spy",
        action="store_true",
        help="profile the server's workers with py-spy during the closed-loop runs",
    )
    p.add_argument(
        "--no-floor", dest="floor", action="store_false", help="skip the GET /healthz floor run"
    )
    opts = p.parse_args(argv)
    if opts.quick:
        opts.duration = 3.0
    if opts.half_duration is None:
        opts.half_duration = opts.duration
    servers = (
        ["gunicorn", "granian", "daphne", "uvicorn"]
        if opts.server == "all"
        else opts.server.split(",")
    )
    workers = [int(w) for w in opts.workers.split(",")]
    opts.configs = []
    for server in servers:
        if server not in ("gunicorn", "granian", "daphne", "uvicorn"):
            p.error(f"unknown server {server!r}")
        for w in [1] if server == "daphne" else workers:
            opts.configs.append(Config(server, w))
    opts.scenarios = [s for s in opts.scenarios.split(",") if s]
    for s in opts.scenarios:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    opts.half_load = [h for h in opts.half_load.split(",") if h]
    if opts.py_spy and not (BIN / "py-spy").exists():
        p.error("py-spy not found: .venv/bin/pip install py-spy")
    if opts.client is None:
        opts.client = "wrk" if shutil.which("wrk") else "python"
        if opts.client == "python":
            say("wrk not found (apt-get install wrk); using bench/loadgen.py for closed-loop runs")
    elif opts.client == "wrk" and not shutil.which("wrk"):
        p.error("wrk not found: apt-get install wrk, or pass --client python")
    for config in opts.configs:
        if not (BIN / config.server).exists():
            hint = {
                "uvicorn": " (pip install 'uvicorn[standard]' into .venv)",
                "gunicorn": " (pip install gunicorn into .venv)",
            }.get(config.server, "")
            p.error(f"{BIN / config.server} not found{hint}")
    return opts


def _code_state() -> dict:
    """The commit measured, and whether the work tree differed from it (read-only git)."""

    def git(*args: str) -> str:
        try:
            run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
            return run.stdout.strip()
        except OSError:
            return ""

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD"), "changed_paths": changed[:200]}


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    say("starting throwaway PostgreSQL and Redis")
    with running_services(durable=not opts.fast_db, statements=opts.pg_statements) as services:
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PG"))},
            **services.env(),
            "SECRET_KEY": "bench-" + os.urandom(32).hex(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "MUSTER_DATA_DIR": tempfile.mkdtemp(prefix="muster-bench-data-"),
            "MUSTER_INGEST_RATE_LIMIT_PER_MINUTE": "100000000",
        }
        base_env.pop("MUSTER_TEST_SERVICES", None)
        say("manage.py migrate")
        subprocess.run(
            [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=base_env,
            check=True,
        )
        fixtures = subprocess.run(
            [str(VENV_PYTHON), str(BENCH / "setup_fixtures.py")],
            cwd=ROOT,
            env=base_env,
            check=True,
            capture_output=True,
            text=True,
        )
        paths = json.loads(fixtures.stdout.splitlines()[-1])["paths"]
        db = Db(services.database_url)
        if opts.pg_statements:
            db.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        report = [run_config(c, opts, services, base_env, paths, db) for c in opts.configs]
        shutil.rmtree(base_env["MUSTER_DATA_DIR"], ignore_errors=True)
    print()
    print(table(report))
    print()
    print("\n".join(verdict(report)))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json"
    meta = {
        "argv": argv,
        "client": opts.client,
        "connections": opts.connections,
        "duration_s": opts.duration,
        "half_duration_s": opts.half_duration,
        "celery": not opts.no_celery,
        "worker_priority": opts.worker_priority,
        "worker_processes": opts.worker_processes,
        "durable_postgres": not opts.fast_db,
        "cores": os.cpu_count(),
        "code": _code_state(),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    out.write_text(json.dumps({"meta": meta, "results": report}, indent=2) + "\n")
    say(f"wrote {out.relative_to(ROOT)} ({meta['elapsed_s']:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

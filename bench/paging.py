"""Paging benchmark: how fast the production topology turns an alert into a page, idle and under
ingest load, how late escalation steps fire, and how a storm for one person is paced — against
throwaway PostgreSQL, Redis and the Twilio fake, all on loopback.

    python bench/paging.py            # ~4 min: the latency scenario, then the storm
    python bench/paging.py --scenarios storm     # ~1.5 min: the storm alone
    python bench/paging.py --quick    # a smoke test, not figures
    python bench/paging.py --help

The storm (`storm()`): 50 high-urgency incidents in 10 s for one person under the default rate
limit; the worst time from a page's step firing to the SMS naming it at the fake (target 60 s),
and how many SMS the person got. The rest of this text is the latency scenario:

It starts PostgreSQL and Redis (muster_services), migrates, starts the Twilio fake as a process
of its own (tests/fakes/twilio.py), creates 50 services (bench/paging_setup.py: per service a
primary and a secondary person with a verified SMS number and a high-urgency rule at 0 min; a
policy whose step 1 pages the primary and step 2, a minute later, the secondary; an
Alertmanager and a generic integration), then starts the web tier (`python -m muster.webserver`,
granian), `celery -A muster worker` and `celery -A muster beat` as deploy/ runs them, the worker
with a tenth of the web tier's CPU weight (`--worker-priority equal` to measure it without).

1. Idle: alerts that each open an incident, one every 200 ms; alert → first page is the time
   from the client's clock just before it writes the POST to the fake's `received_at` for the
   SMS naming that incident (one machine, one clock).
2. Under load: duplicates of a pool of firing alerts (Alertmanager re-sending each service's
   group, 10 alerts a request) at 500 alerts/s, plus 1% new alerts that each open an incident;
   the same alert → first page for those. Dedup: every incident gets exactly one SMS per step.
3. Step lateness: step 2 of incidents left triggered is made due inside the load window by
   setting `oncall_escalation.next_at` with SQL (the policy's delay is 1 minute: too long to
   wait for); lateness is the step-2 SMS's arrival at the fake minus that due time. A sample is
   also measured idle, after the load.

Every figure comes with the machine's load (os.getloadavg) and a CPU split: other people's
processes on the machine show up as `other`, and the figures are only as good as it is small.
The JSON lands in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

# bench/ingest.py re-runs us under .venv/bin/python when imported from another interpreter.
import ingest  # noqa: E402
import psycopg  # noqa: E402
from ingest import BIN, RESULTS, ROOT, VENV_PYTHON, CpuMeter, Proc, start, wait_healthy  # noqa: E402
from payloads import Shape, body, pool_alerts  # noqa: E402

from muster_services import free_port, running_services  # noqa: E402

TARGET_IDLE_P99_MS = 500
TARGET_LOAD_P99_MS = 1500
TARGET_STEP_LATE_MS = 2000
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "bench-paging-" + os.urandom(8).hex()
TWILIO_FROM = "+15005550006"
NUMBER_RE = re.compile(r"#(\d+)")
# A bundle too long for every number writes runs as ranges: "SEV1 #1005-#1049".
NUMBERS_RE = re.compile(r"#(\d+)(?:-#(\d+))?")


def numbers_in(text: str) -> set[int]:
    """The incident numbers an SMS names, ranges expanded."""
    named: set[int] = set()
    for first, last in NUMBERS_RE.findall(text):
        named.update(range(int(first), int(last or first) + 1))
    return named


_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"paging [{time.monotonic() - _T0:5.1f}s]: {message}", file=sys.stderr, flush=True)


# --- what the client sends ---------------------------------------------------------------------


def new_alert(kind: str, tag: str) -> str:
    """One critical alert in a group of its own: it opens an incident, paged at high urgency."""
    if kind == "generic":
        return json.dumps(
            {
                "summary": f"Paging bench {tag}",
                "dedup_key": tag,
                "group_key": tag,
                "severity": "critical",
                "labels": {"alertname": "PagingBench", "instance": f"{tag}:9100"},
            }
        )
    return json.dumps(
        {
            "receiver": "muster",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "PagingBench",
                        "instance": f"{tag}:9100",
                        "severity": "critical",
                        "bench_new": tag,
                    },
                    "annotations": {"summary": f"Paging bench {tag}"},
                    "startsAt": "2024-05-14T09:21:30.123Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
                    "fingerprint": tag,
                }
            ],
            "groupLabels": {"bench_new": tag},
            "commonLabels": {"alertname": "PagingBench", "severity": "critical"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example.com:9093",
            "version": "4",
            "groupKey": '{}:{bench_new="' + tag + '"}',
            "truncatedAlerts": 0,
        }
    )


def new_requests(services: list[dict], prefix: str, count: int, offset: int = 0) -> list:
    """`count` new-incident requests, round-robin over services, alternating the two formats."""
    out = []
    for k in range(count):
        svc = services[(offset + k) % len(services)]
        kind = "alertmanager" if k % 2 == 0 else "generic"
        tag = f"{prefix}-{k}"
        out.append([svc["paths"][kind], new_alert(kind, tag), tag])
    return out


def pool_bodies(count: int, batch: int) -> list[str]:
    """Per service, its Alertmanager group of `batch` firing warnings (low urgency: nobody is
    paged for them), as bench/payloads.py builds them: the same body every time it is re-sent."""
    out = []
    for i in range(count):
        shape = Shape("alertmanager", batch, True, f"pool{i}", f"pool{i}", 1, batch)
        out.append(body(shape, 0, pool_alerts(shape, 0, 0)).decode())
    return out


def run_client(port: int, spec: dict, logdir: Path, name: str) -> dict:
    path = logdir / f"client-{name}.json"
    path.write_text(json.dumps({"port": port, **spec}))
    argv = [str(VENV_PYTHON), str(BENCH / "paging_load.py"), str(path)]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=spec["duration"] + 120, check=False
    )
    if out.returncode:
        raise RuntimeError(f"paging_load.py failed:\n{out.stderr}")
    return json.loads(out.stdout)


# --- the fake and the database -------------------------------------------------------------


class Fake:
    def __init__(self, url: str):
        self.url = url

    def messages(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/_fake/messages", timeout=30) as r:  # noqa: S310
            return json.loads(r.read())

    def first_by_number(self) -> dict[tuple[int, str], list[float]]:
        """{(incident number, recipient): [received_at, ...]} over every SMS so far."""
        out: dict[tuple[int, str], list[float]] = defaultdict(list)
        for m in self.messages():
            for number in {int(n) for n in NUMBER_RE.findall(m["body"])}:
                out[(number, m["to"])].append(m["received_at"])
        return out


def wait_for_pages(
    fake: Fake, wanted: set[tuple[int, str]], timeout: float, what: str
) -> tuple[float, set]:
    """Wait until every (number, recipient) in `wanted` has an SMS; return (seconds, missing)."""
    t0 = time.monotonic()
    missing = set(wanted)
    while missing and time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        seen = fake.first_by_number()
        missing = {w for w in missing if w not in seen}
    waited = time.monotonic() - t0
    if missing:
        say(f"{what}: {len(missing)} pages still missing after {waited:.0f}s")
    return waited, missing


class Db:
    def __init__(self, url: str):
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def reschedule(self, dues: dict[int, float]) -> list[dict]:
        """Make step 2 of these incidents (by number) due at these times (epoch seconds)."""
        if not dues:
            return []
        numbers = list(dues)
        times = [datetime.fromtimestamp(dues[n]).astimezone() for n in numbers]
        rows = self.conn.execute(
            """
            WITH c AS (
                SELECT e.id, e.next_at AS natural, v.due, v.number
                FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(number, due)
                JOIN incidents_incident i ON i.number = v.number
                JOIN oncall_escalation e ON e.incident_id = i.id
                WHERE e.status = 'active' AND e.step = 1 AND e.cycle = 0
                FOR UPDATE OF e SKIP LOCKED
            )
            UPDATE oncall_escalation e SET next_at = c.due FROM c WHERE e.id = c.id
            RETURNING c.number, e.id, c.natural, e.next_at
            """,
            [numbers, times],
        ).fetchall()
        return [_due_row(r) for r in rows]

    def reschedule_new(self, since: float, in_seconds: float, skip: set[int]) -> list[dict]:
        """Make step 2 due `in_seconds` from now for every incident triggered since `since`
        whose step 1 has fired and whose step 2 is still at its natural (minute-away) time."""
        rows = self.conn.execute(
            """
            WITH c AS (
                SELECT e.id, e.next_at AS natural, i.number
                FROM oncall_escalation e JOIN incidents_incident i ON i.id = e.incident_id
                WHERE e.status = 'active' AND e.step = 1 AND e.cycle = 0
                  AND i.triggered_at >= %s AND e.next_at > now() + interval '20 seconds'
                  AND NOT (i.number = ANY(%s::bigint[]))
                FOR UPDATE OF e SKIP LOCKED
            )
            UPDATE oncall_escalation e SET next_at = now() + make_interval(secs => %s)
            FROM c WHERE e.id = c.id
            RETURNING c.number, e.id, c.natural, e.next_at
            """,
            [datetime.fromtimestamp(since).astimezone(), list(skip), in_seconds],
        ).fetchall()
        return [_due_row(r) for r in rows]

    def pending_step2(self, numbers: list[int]) -> list[int]:
        """Those of `numbers` whose step 1 fired and whose step 2 has not, oldest first."""
        rows = self.conn.execute(
            "SELECT i.number FROM oncall_escalation e JOIN incidents_incident i"
            " ON i.id = e.incident_id WHERE e.status = 'active' AND e.step = 1 AND e.cycle = 0"
            " AND i.number = ANY(%s) ORDER BY i.number",
            [numbers],
        ).fetchall()
        return [r[0] for r in rows]

    def park(self, numbers: list[int]) -> int:
        """Push step 2 of these incidents an hour away: they must not page within the run."""
        cur = self.conn.execute(
            "UPDATE oncall_escalation e SET next_at = now() + interval '1 hour'"
            " FROM incidents_incident i WHERE i.id = e.incident_id AND i.number = ANY(%s)"
            " AND e.status = 'active' AND e.step = 1 AND e.cycle = 0",
            [numbers],
        )
        return cur.rowcount

    def fill_results(self, records: list[dict], timeout: float = 30.0) -> None:
        """Give each record its incident and action, once the server has processed its request."""
        wanted = {r["request"]: r for r in records if r.get("request") and "incident" not in r}
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            for pk, results in self.conn.execute(
                "SELECT id, results FROM alerts_ingestrequest"
                " WHERE id = ANY(%s) AND processed_at IS NOT NULL",
                [list(wanted)],
            ):
                result = results[0] if results else {}
                wanted.pop(pk).update(incident=result.get("incident"), action=result.get("action"))
            if wanted:
                time.sleep(0.1)
        for record in wanted.values():
            record["error"] = "request not processed in time"

    def timings(self, numbers: list[int]) -> dict[int, dict]:
        """Per incident: its trigger time, its escalations, and its pages' timestamps."""
        out: dict[int, dict] = {}
        for row in self.conn.execute(
            "SELECT i.number, i.id, i.triggered_at, i.status FROM incidents_incident i"
            " WHERE i.number = ANY(%s)",
            [numbers],
        ):
            out[row[0]] = {
                "id": row[1],
                "triggered_at": row[2].timestamp(),
                "status": row[3],
                "escalations": [],
                "pages": [],
            }
        by_id = {v["id"]: v for v in out.values()}
        for row in self.conn.execute(
            "SELECT incident_id, id, created_at, step, status FROM oncall_escalation"
            " WHERE incident_id = ANY(%s) ORDER BY id",
            [list(by_id)],
        ):
            by_id[row[0]]["escalations"].append(
                {"id": row[1], "created_at": row[2].timestamp(), "step": row[3], "status": row[4]}
            )
        for row in self.conn.execute(
            "SELECT incident_id, escalation_id, step, cycle, address, status, created_at,"
            " enqueued_at, claimed_at, handed_at, sent_at, attempts, error"
            " FROM oncall_page WHERE incident_id = ANY(%s) ORDER BY id",
            [list(by_id)],
        ):
            by_id[row[0]]["pages"].append(
                {
                    "escalation": row[1],
                    "step": row[2],
                    "cycle": row[3],
                    "address": row[4],
                    "status": row[5],
                    "created_at": _ts(row[6]),
                    "enqueued_at": _ts(row[7]),
                    "claimed_at": _ts(row[8]),
                    "handed_at": _ts(row[9]),
                    "sent_at": _ts(row[10]),
                    "attempts": row[11],
                    "error": row[12][:120],
                }
            )
        return out


def _ts(value) -> float | None:
    return None if value is None else value.timestamp()


def _due_row(r) -> dict:
    return {"number": r[0], "escalation": r[1], "natural": _ts(r[2]), "due": _ts(r[3])}


class Sampler:
    """Every 250 ms while running: the Celery queue's length in Redis, and the load average."""

    def __init__(self, redis_port: int):
        self.redis_port = redis_port
        self.samples: list[tuple[float, int, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import redis

        r = redis.Redis(host="127.0.0.1", port=self.redis_port)
        while not self._stop.is_set():
            try:
                queued = r.llen("paging") + r.llen("celery")  # the bot's queue apart
                unacked = r.hlen("unacked")
            except Exception:  # a sample lost is no reason to stop the run
                queued = unacked = -1
            self.samples.append((time.time(), queued, unacked, os.getloadavg()[0]))
            self._stop.wait(0.25)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def between(self, t0: float, t1: float) -> dict:
        rows = [s for s in self.samples if t0 <= s[0] <= t1 and s[1] >= 0]
        if not rows:
            return {}
        return {
            "celery_queue_max": max(s[1] for s in rows),
            "celery_queue_mean": round(statistics.mean(s[1] for s in rows), 1),
            "unacked_max": max(s[2] for s in rows),
            "loadavg_1m_max": round(max(s[3] for s in rows), 2),
        }


# --- the stack -----------------------------------------------------------------------------


def start_fake(env: dict, logdir: Path, latency: float = 0.0) -> tuple[Proc, str]:
    """Start the Twilio fake; it answers each API request `latency` seconds late."""
    argv = [str(VENV_PYTHON), "-m", "tests.fakes.twilio", "--port", "0"]
    argv += ["--auth-token", TWILIO_TOKEN]
    proc = start("twilio-fake", argv, env, logdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"the Twilio fake exited:\n{proc.tail()}")
        m = re.search(r"FAKE_TWILIO_URL=(\S+)", proc.log.read_text(errors="replace"))
        if m:
            url = m.group(1)
            if latency:
                told = urllib.request.Request(  # noqa: S310 (the fake's URL, on loopback)
                    f"{url}/_fake/latency",
                    data=json.dumps({"seconds": latency}).encode(),
                    method="POST",
                )
                urllib.request.urlopen(told, timeout=10).close()  # noqa: S310
            return proc, url
        time.sleep(0.05)
    raise RuntimeError("the Twilio fake printed no URL within 30 s")


@contextlib.contextmanager
def running_stack(opts, env: dict, logdir: Path, port: int, meanwhile):
    """Start the web tier, the Celery worker and beat; run `meanwhile()` while they boot."""
    procs: list[Proc] = []
    try:
        web = ingest.server_argv("granian", opts.web_workers or 3, port)
        procs.append(start("web", web, env, logdir))
        worker = [str(BIN / "celery"), "-A", "muster", "worker", "--loglevel", "INFO"]
        worker += ["--pool", opts.pool, "--concurrency", str(opts.concurrency)]
        worker += ["--hostname", f"paging-{port}@%h"]
        procs.append(start("celery-worker", worker, env, logdir))
        if opts.worker_priority == "low" and not ingest.lower_cpu_priority(procs[-1].popen.pid):
            say("could not lower the worker's CPU weight (no autogroups): measured as equal")
        beat = [str(BIN / "celery"), "-A", "muster", "beat", "--loglevel", "INFO"]
        procs.append(start("celery-beat", beat, env, logdir))
        result = meanwhile()
        wait_healthy(port, procs[0])
        wait_ready(port, procs)
        yield {p.name: p for p in procs}, result
    finally:
        for proc in reversed(procs):
            proc.stop()


def error_blocks(log: str) -> list[str]:
    """Return each error logged: its line, and the end of its traceback (what was raised)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in log.splitlines():
        if " ERROR/" in line or "[ERROR]" in line:
            current = [line]
            blocks.append(current)
        elif line.startswith("[") and current is not None:
            current = None  # the next log record
        elif current is not None and line.strip():
            current.append(line)
    return [b[0] + (" … " + " | ".join(b[-2:]) if len(b) > 1 else "") for b in blocks]


def wait_ready(port: int, procs: list[Proc], timeout: float = 60) -> None:
    """Wait for /readyz?role=worker: database, broker, and a beat tick run by the worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            ready = f"http://127.0.0.1:{port}/readyz?role=worker"
            with urllib.request.urlopen(ready, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError("/readyz did not answer 200 (is the beat tick running?)")


def setup_script(env: dict, *args: str) -> dict:
    out = subprocess.run(
        [str(VENV_PYTHON), str(BENCH / "paging_setup.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"paging_setup.py {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


# --- the storm: many incidents for one person, the rate limit at its default ---------------


STORM_TARGET_WORST_S = 60.0


def _post(port: int, path: str, body: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert 200 <= response.status < 300, response.status


def storm_pages(db: Db, username: str) -> list[dict]:
    """Every page to `username`: its incident, when its step fired, and how it went out."""
    rows = db.conn.execute(
        """
        SELECT i.number, extract(epoch FROM p.created_at), p.bundle, p.carried_by_id, p.status
        FROM oncall_page p
        JOIN incidents_incident i ON i.id = p.incident_id
        JOIN accounts_user u ON u.id = p.person_id
        WHERE u.username = %s
        ORDER BY p.id
        """,
        [username],
    ).fetchall()
    return [
        {"number": n, "fired": float(f), "bundle": b, "carried": c is not None, "status": s}
        for n, f, b, c, s in rows
    ]


def storm(opts) -> dict:
    """50 incidents in 10 s on one service whose policy pages one person by SMS, under the
    default rate limit (3 per 15 min): the first three go on their own, then bundles, one SMS
    naming every incident held, about once a minute. Measured: the worst time from a page's
    step firing (its Page row) to the fake receiving the SMS that names its incident (the
    promise: 60 s), and how many SMS the person got. A stack of its own, rate limit default."""
    count, seconds = opts.storm_incidents, opts.storm_seconds
    with running_services(durable=not opts.fast_db) as services:
        logdir = Path(tempfile.mkdtemp(prefix="muster-storm-"))
        port = free_port()
        env = stack_env(services, logdir, port, rate_limited=True)
        migrate(env)
        fake_proc, fake_url = start_fake(env, logdir, opts.twilio_latency)
        env["TWILIO_API_BASE_URL"] = fake_url
        try:
            with running_stack(
                opts,
                env,
                logdir,
                port,
                lambda: setup_script(env, "setup", "--services", "1", "--step1-delay", "30"),
            ) as (procs, data):
                service = data["services"][0]
                phone = service["primary"]
                say(f"storm: {count} high-urgency incidents in {seconds:.0f}s for one person")
                began = time.time()
                for k in range(count):
                    tag = f"storm-{k}"
                    _post(port, service["paths"]["generic"], new_alert("generic", tag))
                    time.sleep(max(0.0, began + (k + 1) * seconds / count - time.time()))
                figures = storm_figures(
                    Db(services.database_url), Fake(fake_url), service, phone, count
                )
                figures["log_errors"] = [
                    e
                    for proc in procs.values()
                    for e in error_blocks(proc.log.read_text(errors="replace"))
                ]
                return figures
        finally:
            fake_proc.stop()
            if not opts.keep_logs:
                shutil.rmtree(logdir, ignore_errors=True)


def storm_figures(db: Db, fake: Fake, service: dict, phone: str, count: int) -> dict:
    username = f"{service['name']}-primary"
    deadline = time.monotonic() + STORM_TARGET_WORST_S * 2 + 30
    while time.monotonic() < deadline:
        pages = storm_pages(db, username)
        reached = _reached(fake, phone)
        if len(pages) >= count and all(p["number"] in reached for p in pages):
            break
        time.sleep(1)
    pages = storm_pages(db, username)
    reached = _reached(fake, phone)
    waits = [reached[p["number"]] - p["fired"] for p in pages if p["number"] in reached]
    texts = [m for m in fake.messages() if m["to"] == phone]
    incidents_per_sms = [len(numbers_in(m["body"])) for m in texts]
    return {
        "incidents": count,
        "pages": len(pages),
        "reached": len(waits),
        "missing": sorted(p["number"] for p in pages if p["number"] not in reached),
        "sms_sent": len(texts),
        "incidents_per_sms": incidents_per_sms,
        "longest_sms_chars": max((len(m["body"]) for m in texts), default=0),
        "bundles": sum(1 for p in pages if p["bundle"]),
        "page_statuses": dict(Counter(p["status"] for p in pages)),
        "worst_s": round(max(waits), 2) if waits else None,
        "median_s": round(statistics.median(waits), 2) if waits else None,
        "within_target": sum(1 for w in waits if w <= STORM_TARGET_WORST_S),
        "target_worst_s": STORM_TARGET_WORST_S,
    }


def _reached(fake: Fake, phone: str) -> dict[int, float]:
    """{incident number: when the first SMS naming it reached the fake}."""
    first: dict[int, float] = {}
    for message in fake.messages():
        if message["to"] != phone:
            continue
        for number in numbers_in(message["body"]):
            first[number] = min(first.get(number, message["received_at"]), message["received_at"])
    return first


def storm_lines(storm: dict) -> list[str]:
    worst = storm["worst_s"]
    verdict = "meets" if worst is not None and worst <= storm["target_worst_s"] else "MISSES"
    return [
        "",
        f"storm: {storm['incidents']} high-urgency incidents in 10 s for one person, default "
        "rate limit (3 per 15 min)",
        f"  step fired -> SMS at the provider: worst {worst} s, median {storm['median_s']} s "
        f"({verdict} the {storm['target_worst_s']:.0f} s target); "
        f"{storm['within_target']}/{storm['reached']} within it",
        f"  SMS sent: {storm['sms_sent']} (incidents named in each: "
        f"{json.dumps(storm['incidents_per_sms'])}; longest {storm['longest_sms_chars']} chars)",
        *(
            [f"  not reached: {storm['missing'][:10]}; pages {storm['page_statuses']}"]
            if storm["missing"]
            else ["  every incident was named in an SMS"]
        ),
        *(
            [f"  errors in the logs: {len(storm['log_errors'])}: {storm['log_errors'][:3]}"]
            if storm.get("log_errors")
            else []
        ),
    ]


# --- Celery's own account of its tasks (worker and beat logs at INFO) -------------------------

_LOG_LINE = re.compile(
    r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/(?P<proc>[^\]]+)\] (?P<msg>.*)$"
)
_RECEIVED = re.compile(r"^Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] received")
_DISCARDED = re.compile(r"^Discarding revoked task: (?P<name>[\w.]+)\[(?P<id>[\w-]+)\]")
_SUCCEEDED = re.compile(r"^Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] succeeded in (?P<s>[\d.e-]+)s")


def _log_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def celery_tasks(worker_log: Path, beat_log: Path) -> tuple[list[dict], list[float]]:
    """Return each task run (name, received, started, finished) and the beat's send times."""
    received: dict[str, float] = {}
    runs = []
    for line in worker_log.read_text(errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if not m:
            continue
        msg = m.group("msg")
        if r := _RECEIVED.match(msg):
            received[r.group("id")] = _log_time(m.group("at"))
        elif d := _DISCARDED.match(msg):
            at = _log_time(m.group("at"))
            runs.append(
                {
                    "name": d.group("name"),
                    "discarded": True,
                    "received": received.get(d.group("id")),
                    "started": at,
                    "finished": at,
                }
            )
        elif s := _SUCCEEDED.match(msg):
            done = _log_time(m.group("at"))
            took = float(s.group("s"))
            runs.append(
                {
                    "name": s.group("name"),
                    "received": received.get(s.group("id")),
                    "started": done - took,
                    "finished": done,
                }
            )
    sends = []
    for line in beat_log.read_text(errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if m and "Sending due task tick" in m.group("msg"):
            sends.append(_log_time(m.group("at")))
    return runs, sends


def task_stats(runs: list[dict], sends: list[float], t0: float, t1: float) -> dict:
    """Per task name, over the tasks that started in [t0, t1]: count, wait, run time (ms)."""
    out = {}
    by_name = defaultdict(list)
    discarded: Counter[str] = Counter()
    for r in runs:
        if t0 <= r["started"] <= t1:
            if r.get("discarded"):
                discarded[r["name"]] += 1
            else:
                by_name[r["name"]].append(r)
    for name, rs in sorted(by_name.items()):
        waits = [r["started"] - r["received"] for r in rs if r["received"] is not None]
        out[name] = {
            "count": len(rs),
            "wait_ms": pct([w * 1000 for w in waits]),
            "run_ms": pct([(r["finished"] - r["started"]) * 1000 for r in rs]),
            "discarded_expired": discarded[name],
        }
    # Tick: from the beat's send to the worker starting it (a busy pool makes it wait).
    ticks = sorted(
        r["started"]
        for r in runs
        if r["name"] == "muster.tick" and t0 <= r["started"] <= t1 and not r.get("discarded")
    )
    in_window = [s for s in sends if t0 <= s <= t1]
    if len(ticks) > 1:
        gaps = [(b - a) * 1000 for a, b in itertools.pairwise(ticks)]
        out.setdefault("muster.tick", {})["gap_between_starts_ms"] = pct(gaps)
    out.setdefault("muster.tick", {})["beat_sends"] = len(in_window)
    out["muster.tick"]["discarded_expired"] = discarded["muster.tick"]
    return out


# --- PostgreSQL's own account (--pg-log) -------------------------------------------------------

_PG_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \w+ \[\d+\] LOG:  duration: "
    r"(?P<ms>[\d.]+) ms  (?:statement|execute [^:]*): (?P<sql>.*)$"
)


def pg_log_path(services) -> Path:
    """The throwaway server's log: its stderr, next to its data directory (its cwd)."""
    cwd = Path(f"/proc/{services.processes[0].pid}/cwd").resolve()
    return next(p for p in (cwd / "postgres.log", cwd.parent / "postgres.log") if p.exists())


def enable_pg_log(db: Db) -> None:
    db.conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
    db.conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] '")
    db.conn.execute("ALTER SYSTEM SET log_connections = on")
    db.conn.execute("SELECT pg_reload_conf()")


def _normalize(sql: str) -> str:
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?\b", "?", sql)
    sql = re.sub(r"\((?:\?, )+\?\)", "(?...)", sql)
    return sql[:160]


def pg_statements(log: Path, t0: float, t1: float, per: int) -> dict:
    """Statement time by normalized statement, over [t0, t1]; top 12 by total."""
    total: Counter[str] = Counter()
    count: Counter[str] = Counter()
    connections = 0
    for line in log.read_text(errors="replace").splitlines():
        if "LOG:  connection received" in line:
            at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()
            connections += t0 <= at <= t1
            continue
        m = _PG_LINE.match(line)
        if not m:
            continue
        at = datetime.strptime(m.group("at"), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if not t0 <= at <= t1:
            continue
        key = _normalize(m.group("sql"))
        total[key] += float(m.group("ms"))
        count[key] += 1
    n = max(1, per)
    return {
        "statements": sum(count.values()),
        "new_connections": connections,
        "statement_ms_total": round(sum(total.values()), 1),
        "per_incident": {
            "statements": round(sum(count.values()) / n, 1),
            "ms": round(sum(total.values()) / n, 2),
        },
        "top": [
            {
                "sql": k,
                "count": count[k],
                "ms_total": round(v, 1),
                "ms_mean": round(v / count[k], 3),
            }
            for k, v in total.most_common(12)
        ],
    }


# --- figures -----------------------------------------------------------------------------------


def pct(values: list[float]) -> dict:
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"n": 0, "p50": None, "p99": None, "max": None}

    def at(p: float) -> float:
        # Nearest rank: the smallest value with at least p% of the samples at or below it.
        rank = max(1, -(-len(v) * p // 100))
        return round(v[int(rank) - 1], 1)

    return {"n": len(v), "p50": at(50), "p90": at(90), "p99": at(99), "max": round(v[-1], 1)}


# Each stage is (label, from, to): timestamps from the client, PostgreSQL rows (incident
# triggered_at, escalation created_at, page created/enqueued/claimed), the worker's INFO log
# (a task received from Redis by the worker's main process, started in a pool process), and the
# fake's received_at. A page is enqueued when its run hands it on (to the provider's threads
# in the worker, or through a `deliver_page` task) and claimed when its delivery begins on one
# of Twilio's threads; claimed -> at the fake covers the checks under lock, the commit of
# handed_at and the HTTP request to the provider.
STAGES_STEP1 = [
    ("POST -> incident row (ingest)", "sent_at", "triggered_at"),
    ("incident row -> follow_entry received", "triggered_at", "start_received"),
    ("  follow_entry: received -> started", "start_received", "start_started"),
    ("  started -> escalation row", "start_started", "esc_created"),
    ("escalation row -> page rows (fire step 1)", "esc_created", "page_created"),
    ("page rows -> enqueued (commit, on_commit)", "page_created", "enqueued_at"),
    ("enqueued -> claimed (handed to Twilio's threads)", "enqueued_at", "claimed_at"),
    ("claimed -> at the fake (checks, commit, HTTP)", "claimed_at", "received_at"),
]
STAGES_STEP2 = [
    ("due -> page rows (tick fired step 2)", "due", "page_created"),
    ("  due -> tick started", "due", "tick_started"),
    ("  tick started -> page rows", "tick_started", "page_created"),
    ("page rows -> enqueued (commit, on_commit)", "page_created", "enqueued_at"),
    ("enqueued -> claimed (handed to Twilio's threads)", "enqueued_at", "claimed_at"),
    ("claimed -> at the fake (checks, commit, HTTP)", "claimed_at", "received_at"),
]


class Runs:
    """Celery task runs by name, to find the run during which a row was written."""

    def __init__(self, runs: list[dict]):
        self.by_name: dict[str, list[dict]] = defaultdict(list)
        for r in sorted(runs, key=lambda r: r["started"]):
            self.by_name[r["name"]].append(r)

    def during(self, name: str, t: float | None, slack: float = 0.002) -> dict | None:
        """The one run of `name` that was running at `t` (None if none, or ambiguous)."""
        if t is None:
            return None
        found = [
            r
            for r in self.by_name.get(name, [])
            if r["started"] - slack <= t <= r["finished"] + slack
        ]
        return found[0] if len(found) == 1 else None


def _task_points(point: dict, runs: Runs, prefix: str, name: str, at: str) -> None:
    run = runs.during(name, point.get(at))
    point[f"{prefix}_received"] = run["received"] if run else None
    point[f"{prefix}_started"] = run["started"] if run else None


def _stages(point: dict, stages: list, into: dict) -> None:
    for label, a, b in stages:
        if point.get(a) is not None and point.get(b) is not None:
            into[label].append((point[b] - point[a]) * 1000)


def first_page_latencies(
    records: list[dict], timings: dict[int, dict], sms: dict, phones: dict[int, dict], runs: Runs
) -> dict:
    """Alert → first page, per new-incident request; with each stage of the path."""
    lat = []
    engine = []  # from the incident row (inside the ingest transaction) to the page
    stage_values: dict[str, list[float]] = defaultdict(list)
    problems = Counter()
    per = []
    for rec in records:
        number = rec.get("incident")
        if rec.get("error") or number is None or rec.get("status") not in (200, 202):
            problems["request failed"] += 1
            continue
        if rec.get("action") != "opened":
            problems[f"action {rec.get('action')}"] += 1
        t = timings.get(number)
        svc = phones[number]
        got = sms.get((number, svc["primary"]))
        if not got or t is None:
            problems["never paged"] += 1
            continue
        received = min(got)
        lat.append((received - rec["sent_at"]) * 1000)
        engine.append((received - t["triggered_at"]) * 1000)
        step1 = [p for p in t["pages"] if p["step"] == 0 and p["cycle"] == 0]
        esc = t["escalations"][0] if t["escalations"] else None
        page = step1[0] if step1 else {}
        point = {
            "sent_at": rec["sent_at"],
            "answered_at": rec["answered_at"],
            "triggered_at": t["triggered_at"],
            "esc_created": esc["created_at"] if esc else None,
            "page_created": page.get("created_at"),
            "enqueued_at": page.get("enqueued_at"),
            "claimed_at": page.get("claimed_at"),
            "received_at": received,
        }
        _task_points(point, runs, "start", "oncall.follow_entry", "esc_created")
        _stages(point, STAGES_STEP1, stage_values)
        stage_values["(POST answered, at the client)"].append(
            (rec["answered_at"] - rec["sent_at"]) * 1000
        )
        per.append({"number": number, "ms": round(lat[-1], 1), **point})
    return {
        "latency_ms": pct(lat),
        "engine_ms": pct(engine),
        "stages_ms": {label: pct(stage_values[label]) for label in _labels(STAGES_STEP1)}
        | {"(POST answered, at the client)": pct(stage_values["(POST answered, at the client)"])},
        "problems": dict(problems),
        "incidents": per,
    }


def _labels(stages: list) -> list[str]:
    return [label for label, _, _ in stages]


def step_lateness(
    dues: list[dict], timings: dict[int, dict], sms: dict, phones: dict[int, dict], runs: Runs
) -> dict:
    late = []
    stage_values: dict[str, list[float]] = defaultdict(list)
    missing = []
    per = []
    for d in dues:
        number = d["number"]
        got = sms.get((number, phones[number]["secondary"]))
        if not got:
            missing.append(number)
            continue
        received = min(got)
        late.append((received - d["due"]) * 1000)
        pages = [p for p in timings[number]["pages"] if p["step"] == 1 and p["cycle"] == 0]
        page = pages[0] if pages else {}
        point = {
            "due": d["due"],
            "page_created": page.get("created_at"),
            "enqueued_at": page.get("enqueued_at"),
            "claimed_at": page.get("claimed_at"),
            "received_at": received,
        }
        tick = runs.during("muster.tick", point["page_created"])
        point["tick_started"] = tick["started"] if tick else None
        _stages(point, STAGES_STEP2, stage_values)
        per.append({"number": number, "late_ms": round(late[-1], 1), **point})
    return {
        "late_ms": pct(late),
        "stages_ms": {label: pct(stage_values[label]) for label in _labels(STAGES_STEP2)},
        "missing": missing,
        "incidents": per,
    }


def dedup_check(
    numbers: list[int],
    timings: dict[int, dict],
    sms: dict,
    phones: dict[int, dict],
    step2_expected: set[int],
    step2_parked: set[int],
) -> dict:
    """Exactly one SMS per incident per step that came due; none for a step that did not."""
    dup_pairs = {f"#{n} to {to}": len(v) for (n, to), v in sms.items() if len(v) > 1}
    step1_wrong, step2_wrong, early, multi_esc = [], [], [], []
    handed_pages = 0
    sms_count = 0
    for n in numbers:
        svc = phones[n]
        s1 = len(sms.get((n, svc["primary"]), []))
        s2 = len(sms.get((n, svc["secondary"]), []))
        sms_count += s1 + s2
        if s1 != 1:
            step1_wrong.append((n, s1))
        if n in step2_expected and s2 != 1:
            step2_wrong.append((n, s2))
        if n in step2_parked and s2 != 0:
            early.append((n, s2))
        t = timings.get(n, {})
        if len(t.get("escalations", [])) != 1:
            multi_esc.append((n, len(t.get("escalations", []))))
        handed_pages += sum(1 for p in t.get("pages", []) if p["handed_at"] is not None)
    ok = not (dup_pairs or step1_wrong or step2_wrong or early or multi_esc)
    ok = ok and handed_pages == sms_count
    return {
        "ok": ok,
        "incidents": len(numbers),
        "sms_at_fake": sms_count,
        "pages_handed_in_db": handed_pages,
        "duplicate_sms": dup_pairs,
        "step1_not_exactly_one": step1_wrong[:20],
        "step2_due_not_exactly_one": step2_wrong[:20],
        "step2_not_due_but_paged": early[:20],
        "escalations_not_one": multi_esc[:20],
    }


# --- the run -----------------------------------------------------------------------------------


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke test under 2 minutes")
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--idle-alerts", type=int, default=100, help="new incidents, idle")
    p.add_argument("--idle-interval", type=float, default=0.2, help="seconds between them")
    p.add_argument("--load-seconds", type=float, default=25.0)
    p.add_argument("--load-rate", type=float, default=500.0, help="alerts/s under load")
    p.add_argument("--batch", type=int, default=10, help="alerts per duplicate request")
    p.add_argument("--new-fraction", type=float, default=0.01, help="of alerts, opening incidents")
    p.add_argument("--idle-steps", type=int, default=20, help="step-2 sample after the load")
    p.add_argument("--web-workers", type=int, default=3, help="web tier (granian) workers")
    ingest.add_deployment_options(p)
    # As deploy/ runs the worker: threads (under prefork Celery closes psycopg's pool per task).
    p.add_argument("--pool", default="threads", help="Celery worker pool (threads, prefork, …)")
    p.add_argument("--concurrency", type=int, default=4, help="Celery worker concurrency")
    p.add_argument(
        "--max-outstanding", type=int, default=32, help="duplicate requests in flight, at most"
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each measured phase, wait up to S seconds for the machine to be idle",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    p.add_argument(
        "--scenarios",
        type=lambda v: set(v.split(",")),
        default={"latency", "storm"},
        help="comma separated: latency (alert to page, idle and loaded; steps) and storm "
        "(50 incidents in 10 s for one person, default rate limit); both by default",
    )
    p.add_argument(
        "--twilio-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="the Twilio fake answers each API request S seconds late (Twilio's own: 0.1-0.5)",
    )
    p.add_argument("--storm-incidents", type=int, default=50, help="incidents in the storm")
    p.add_argument("--storm-seconds", type=float, default=10.0, help="the storm's length")
    p.add_argument(
        "--pg-log",
        action="store_true",
        help="log every SQL statement's duration (costs time itself) and report the top ones",
    )
    opts = p.parse_args(argv)
    if opts.quick:
        opts.idle_alerts = min(opts.idle_alerts, 30)
        opts.load_seconds = min(opts.load_seconds, 10.0)
        opts.idle_steps = min(opts.idle_steps, 8)
    return opts


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    began = time.monotonic()
    options = {k: sorted(v) if isinstance(v, set) else v for k, v in vars(opts).items()}
    report: dict = {"meta": {"argv": argv, "options": options, "cores": os.cpu_count()}}
    report["meta"]["loadavg_at_start"] = os.getloadavg()
    if "storm" in opts.scenarios:
        say("the storm scenario: a stack of its own, with the default rate limit")
        report["storm"] = storm(opts)
    if "latency" in opts.scenarios:
        latency(opts, report)
    report["meta"]["code"] = ingest._code_state()
    report["meta"]["elapsed_s"] = round(time.monotonic() - began, 1)
    report["meta"]["loadavg_at_end"] = os.getloadavg()
    print()
    print(render(report))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"paging-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    say(f"wrote {out.relative_to(ROOT)} ({report['meta']['elapsed_s']:.0f}s in all)")
    return 0


def stack_env(services, logdir: Path, port: int, *, rate_limited: bool) -> dict:
    """The environment of the stack's processes (the rate limit lifted unless `rate_limited`)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PG"))},
        **services.env(),
        "SECRET_KEY": "bench-" + os.urandom(32).hex(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        "MUSTER_DATA_DIR": str(logdir / "data"),
        "MUSTER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MUSTER_INGEST_RATE_LIMIT_PER_MINUTE": "100000000",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": TWILIO_FROM,
        "PROMETHEUS_MULTIPROC_DIR": str(logdir / "prometheus"),
    }
    if not rate_limited:
        # 3 pages per person per 15 min by default: with 50 people taking hundreds of pages,
        # later pages would be bundled. Latency is what the latency scenario measures.
        env["MUSTER_PAGE_RATE_LIMIT_COUNT"] = "1000000"
    env.pop("MUSTER_TEST_SERVICES", None)
    (logdir / "prometheus").mkdir(exist_ok=True)
    return env


def migrate(env: dict) -> None:
    say("manage.py migrate")
    subprocess.run(
        [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def latency(opts, report: dict) -> None:
    """Alert to first page idle and under load, step lateness, dedup: updates `report`."""
    say("starting throwaway PostgreSQL and Redis")
    with running_services(durable=not opts.fast_db) as services:
        logdir = Path(tempfile.mkdtemp(prefix="muster-paging-"))
        port = free_port()
        env = stack_env(services, logdir, port, rate_limited=False)
        migrate(env)
        fake_proc, fake_url = start_fake(env, logdir, opts.twilio_latency)
        env["TWILIO_API_BASE_URL"] = fake_url
        pool_file = logdir / "pool.json"
        pool_file.write_text(json.dumps(pool_bodies(opts.services, opts.batch)))

        def create_data() -> dict:
            say(f"creating {opts.services} services, people, policies; seeding the alert pool")
            return setup_script(
                env, "setup", "--services", str(opts.services), "--pool", str(pool_file)
            )

        try:
            db = Db(services.database_url)
            say("starting the web tier (muster.webserver), the Celery worker and beat")
            with running_stack(opts, env, logdir, port, create_data) as (procs, data):
                say("ready")
                report.update(
                    measure(opts, port, services, data, db, fake_url, procs, fake_proc, logdir)
                )
        finally:
            fake_proc.stop()
            if not opts.keep_logs:
                shutil.rmtree(logdir, ignore_errors=True)
            else:
                say(f"logs kept in {logdir}")


def quiet(opts) -> float | None:
    """With --wait-quiet, wait (bounded) for the machine to be nearly idle; return its idle %."""
    if not opts.wait_quiet:
        return None
    idle = ingest.wait_for_quiet(opts.wait_quiet)
    if idle < 85:
        say(f"the machine is busy ({100 - idle:.0f}% used by others); measuring anyway")
    return round(idle, 1)


def measure(opts, port, services, data, db, fake_url, procs, fake_proc, logdir):
    fake = Fake(fake_url)
    services_list = data["services"]
    phones: dict[int, dict] = {}  # incident number -> its service's two phones
    roots = {
        "web": procs["web"].popen.pid,
        "celery": procs["celery-worker"].popen.pid,
        "beat": procs["celery-beat"].popen.pid,
        "postgres": services.processes[0].pid,
        "redis": services.processes[1].pid,
        "twilio_fake": fake_proc.popen.pid,
        "bench": os.getpid(),  # with its client process
    }
    meter = CpuMeter(roots)
    out: dict = {"phases": {}}
    svc_of_path = {}
    for svc in services_list:
        for path in svc["paths"].values():
            svc_of_path[path] = svc

    def note(records: list[dict]) -> list[int]:
        db.fill_results(records)
        numbers = []
        for r in records:
            if r.get("incident") is not None:
                phones[r["incident"]] = svc_of_path[r["path"]]
                numbers.append(r["incident"])
        return numbers

    if opts.pg_log:
        enable_pg_log(db)
    # --- warm-up: a few incidents through the whole path (imports, connections, pools) --------
    say("warm-up: paging 6 incidents")
    warm = run_client(
        port,
        {"duration": 10, "new": {"rate": 4, "requests": new_requests(services_list, "warm", 6)}},
        logdir,
        "warm",
    )
    warm_numbers = note(warm["new"])
    wait_for_pages(fake, {(n, phones[n]["primary"]) for n in warm_numbers}, 30, "warm-up")
    db.park(warm_numbers)
    out["warmup"] = {
        "pool_incidents": len(data["pool_incidents"]),
        "pool_acknowledged": data["pool_acknowledged"],
        "warm_incidents": len(warm_numbers),
    }
    pool = [
        [svc["paths"]["alertmanager"], b]
        for svc, b in zip(
            services_list, json.loads((logdir / "pool.json").read_text()), strict=True
        )
    ]

    with Sampler(services.redis_port) as sampler:
        # --- 1. idle ---------------------------------------------------------------------------
        n_idle = opts.idle_alerts
        say(f"idle: {n_idle} new incidents, one every {opts.idle_interval * 1000:.0f} ms")
        quiet_idle = quiet(opts)
        load0 = os.getloadavg()
        meter.start()
        t_idle0 = time.time()
        idle = run_client(
            port,
            {
                "duration": n_idle * opts.idle_interval + 1,
                "new": {
                    "rate": 1 / opts.idle_interval,
                    "requests": new_requests(services_list, "idle", n_idle, offset=7),
                },
            },
            logdir,
            "idle",
        )
        idle_numbers = note(idle["new"])
        waited, _ = wait_for_pages(
            fake, {(n, phones[n]["primary"]) for n in idle_numbers}, 30, "idle"
        )
        t_idle1 = time.time()
        out["phases"]["idle"] = {
            "window": [t_idle0, t_idle1],
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
            "cpu_percent_of_machine": meter.stop(0.0),
            "cpu_seconds": meter.seconds,
            # Everything the incidents cost (ticks included), per incident paged.
            "cpu_ms_per_incident": {
                k: round(1000 * v / max(1, len(idle_numbers)), 1) for k, v in meter.seconds.items()
            },
            "machine_idle_percent_before": quiet_idle,
            "client": {k: idle[k] for k in ("skipped", "client_cpu_s")},
            "drain_s": round(waited, 2),
            **sampler.between(t_idle0, t_idle1),
        }

        # --- 2 and 3. under load ---------------------------------------------------------------
        dur = opts.load_seconds
        dup_rate = opts.load_rate * (1 - opts.new_fraction) / opts.batch
        new_rate = opts.load_rate * opts.new_fraction
        n_new = int(new_rate * dur)
        say(
            f"load: {opts.load_rate:.0f} alerts/s for {dur:.0f}s — {dup_rate:.1f} duplicate"
            f" requests/s of {opts.batch} alerts, {new_rate:.1f} new incidents/s ({n_new})"
        )
        quiet_load = quiet(opts)
        load0 = os.getloadavg()
        t_load0 = time.time()
        # Step 2 of the idle incidents, spread over the load window (their natural time is a
        # minute after step 1).
        span0, span1 = t_load0 + 2.0, t_load0 + dur - 2.0
        order = sorted(idle_numbers)
        dues = {
            n: span0 + (span1 - span0) * k / max(1, len(order) - 1) for k, n in enumerate(order)
        }
        step2_load = db.reschedule(dues)
        moved: set[int] = {d["number"] for d in step2_load}
        stop_moving = threading.Event()
        lock = threading.Lock()

        def mover() -> None:
            # Incidents opened under load: step 2 due 4 s after step 1 fired, while the load
            # lasts (a connection of its own: psycopg connections are not for two threads).
            mdb = Db(services.database_url)
            while not stop_moving.wait(0.5):
                if time.time() + 4.0 > t_load0 + dur - 1.0:
                    break
                rows = mdb.reschedule_new(t_load0, 4.0, moved)
                with lock:
                    step2_load.extend(rows)
                    moved.update(r["number"] for r in rows)
            mdb.conn.close()

        mover_thread = threading.Thread(target=mover, daemon=True)
        meter.start()
        mover_thread.start()
        loaded = run_client(
            port,
            {
                "duration": dur,
                "dup": {"rate": dup_rate, "requests": pool},
                "new": {
                    "rate": new_rate,
                    "requests": new_requests(services_list, "load", n_new, offset=13),
                },
                "max_outstanding": opts.max_outstanding,
            },
            logdir,
            "load",
        )
        stop_moving.set()
        mover_thread.join(timeout=10)
        t_offered = loaded["offered_until"]
        load_numbers = note(loaded["new"])
        cpu_load = meter.stop(0.0)
        load_after = os.getloadavg()
        waited, _ = wait_for_pages(
            fake, {(n, phones[n]["primary"]) for n in load_numbers}, 60, "load step 1"
        )
        t_drained = time.time()
        last_due = max((d["due"] for d in step2_load), default=time.time())
        wait_for_pages(
            fake,
            {(d["number"], phones[d["number"]]["secondary"]) for d in step2_load},
            max(5.0, last_due - time.time()) + 30,
            "load step 2",
        )
        out["phases"]["load"] = {
            "window": [t_load0, t_offered],
            "loadavg_before": load0,
            "loadavg_after": load_after,
            "cpu_percent_of_machine": cpu_load,
            "cpu_seconds": meter.seconds,
            "machine_idle_percent_before": quiet_load,
            "offered_alerts_per_s": opts.load_rate,
            "achieved_alerts_per_s": round(
                (loaded["dup"]["accepted_in_window"] * opts.batch + len(loaded["new"]))
                / max(0.001, t_offered - loaded["started_at"]),
                1,
            ),
            "duplicate_requests": loaded["dup"],
            "new_incident_requests": len(loaded["new"]),
            "client": {k: loaded[k] for k in ("skipped", "client_cpu_s")},
            "step1_drain_after_load_s": round(t_drained - t_offered, 2),
            **sampler.between(t_load0, t_offered),
        }

        # --- 3b. step lateness idle, after the load -----------------------------------------
        time.sleep(2.0)
        pending = db.pending_step2(sorted(set(idle_numbers) | set(load_numbers)))
        sample = pending[: opts.idle_steps]
        parked = set(pending[opts.idle_steps :])
        db.park(sorted(parked))
        t_steps0 = time.time()
        step2_idle = db.reschedule({n: t_steps0 + 1.5 + 0.5 * k for k, n in enumerate(sample)})
        say(
            f"idle step 2: {len(step2_idle)} escalations due over the next"
            f" {1.5 + 0.5 * len(sample):.0f}s; {len(parked)} parked an hour away"
        )
        load0 = os.getloadavg()
        meter.start()
        last_due = max((d["due"] for d in step2_idle), default=time.time())
        wait_for_pages(
            fake,
            {(d["number"], phones[d["number"]]["secondary"]) for d in step2_idle},
            max(5.0, last_due - time.time()) + 20,
            "idle step 2",
        )
        t_steps1 = time.time()
        out["phases"]["idle_steps"] = {
            "window": [t_steps0, t_steps1],
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
            "cpu_percent_of_machine": meter.stop(0.0),
            **sampler.between(t_steps0, t_steps1),
        }
        # Pages queued but not picked up are re-enqueued after 5 s: give a duplicate its chance.
        say("settling 7 s, so a late duplicate would show")
        time.sleep(7.0)

    sms = fake.first_by_number()
    numbers = sorted(set(idle_numbers) | set(load_numbers))
    timings = db.timings(numbers)
    runs, sends = celery_tasks(procs["celery-worker"].log, procs["celery-beat"].log)
    by_run = Runs(runs)
    out["idle"] = first_page_latencies(idle["new"], timings, sms, phones, by_run)
    out["load"] = first_page_latencies(loaded["new"], timings, sms, phones, by_run)
    out["steps_under_load"] = step_lateness(step2_load, timings, sms, phones, by_run)
    out["steps_idle"] = step_lateness(step2_idle, timings, sms, phones, by_run)
    expected2 = {d["number"] for d in step2_load} | {d["number"] for d in step2_idle}
    out["dedup"] = dedup_check(numbers, timings, sms, phones, expected2, parked - expected2)
    all_sms = fake.messages()
    out["dedup"]["sms_total_at_fake"] = len(all_sms)
    out["celery"] = {
        phase: task_stats(runs, sends, *out["phases"][phase]["window"])
        for phase in ("idle", "load", "idle_steps")
    }
    errors = [
        block
        for name in ("celery-worker", "celery-beat", "web")
        for block in error_blocks(procs[name].log.read_text(errors="replace"))
    ]
    out["log_errors"] = errors[:30]
    if opts.pg_log:
        log = pg_log_path(services)
        out["pg_statements"] = {
            "idle": pg_statements(log, *out["phases"]["idle"]["window"], len(idle_numbers)),
            "load": pg_statements(log, *out["phases"]["load"]["window"], len(load_numbers)),
        }
    return out


# --- the table ----------------------------------------------------------------------------------


def _f(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def render(report: dict) -> str:
    storm = storm_lines(report["storm"]) if "storm" in report else []
    if "idle" not in report:
        return "\n".join(storm) if storm else "no figures (the run failed before measuring)"
    ph = report["phases"]
    rows = [
        (
            "alert -> first page, idle",
            report["idle"]["latency_ms"],
            "latency",
            TARGET_IDLE_P99_MS,
            "idle",
        ),
        (
            "  of which incident row -> page",
            report["idle"]["engine_ms"],
            "engine",
            0,
            "idle",
        ),
        (
            "alert -> first page, under load",
            report["load"]["latency_ms"],
            "latency",
            TARGET_LOAD_P99_MS,
            "load",
        ),
        (
            "  of which incident row -> page",
            report["load"]["engine_ms"],
            "engine",
            0,
            "load",
        ),
        (
            "step 2 late, under load",
            report["steps_under_load"]["late_ms"],
            "late",
            TARGET_STEP_LATE_MS,
            "load",
        ),
        (
            "step 2 late, idle (after load)",
            report["steps_idle"]["late_ms"],
            "late",
            TARGET_STEP_LATE_MS,
            "idle_steps",
        ),
    ]
    lines = [
        f"{'measure':<32} {'n':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'target':>14}"
        f" {'verdict':>7}   load avg (1m)  cpu%: other/idle",
        "─" * 118,
    ]
    for label, s, kind, target, phase in rows:
        if kind == "engine":
            lines.append(
                f"{label:<32} {s['n']:>4} {_f(s['p50']):>7} {_f(s['p99']):>7} {_f(s['max']):>7}"
                f" {'(no target)':>14}"
            )
            continue
        if kind == "latency":
            ok = s["p99"] is not None and s["p99"] <= target
            tgt = f"p99 <= {target}"
        else:
            ok = s["max"] is not None and s["max"] <= target
            tgt = f"max <= {target}"
        p = ph[phase]
        cpu = p["cpu_percent_of_machine"]
        lines.append(
            f"{label:<32} {s['n']:>4} {_f(s['p50']):>7} {_f(s['p99']):>7} {_f(s['max']):>7}"
            f" {tgt:>14} {'OK' if ok else 'MISS':>7}   {p['loadavg_before'][0]:>4.2f} -> "
            f"{p['loadavg_after'][0]:>4.2f}   {cpu.get('other', 0):>5.1f}/{cpu.get('idle', 0):.1f}"
        )
    load = ph["load"]
    d = load["duplicate_requests"]
    lines += [
        "",
        f"load: offered {load['offered_alerts_per_s']:.0f} alerts/s, achieved"
        f" {load['achieved_alerts_per_s']:.0f} ({d['answered']}/{d['sent']} duplicate requests"
        f" answered, statuses {d['statuses']}, ingest latency from due time p50"
        f" {_f(d['latency_ms']['p50'])} ms p99 {_f(d['latency_ms']['p99'])} ms; client skipped"
        f" {load['client']['skipped'] or 0}); {load['new_incident_requests']} new incidents;"
        f" Celery queue max {load.get('celery_queue_max')};"
        f" step-1 pages drained {load['step1_drain_after_load_s']:.1f} s after the load",
    ]
    per = ph["idle"].get("cpu_ms_per_incident", {})
    lines.append(
        "CPU per incident paged, idle phase (ticks included), ms: "
        + ", ".join(f"{k} {per.get(k, 0):.0f}" for k in ("web", "celery", "postgres", "redis"))
    )
    lines.append("")
    lines.append("CPU % of the machine (2 cores = 100%):")
    names = ["web", "celery", "beat", "postgres", "redis", "twilio_fake", "bench", "other", "idle"]
    lines.append(f"  {'phase':<12}" + "".join(f"{n:>12}" for n in names))
    for phase in ("idle", "load", "idle_steps"):
        cpu = ph[phase]["cpu_percent_of_machine"]
        lines.append(f"  {phase:<12}" + "".join(f"{cpu.get(n, 0):>12.1f}" for n in names))
    lines += ["", "where the time goes, first page (ms; p50 / p99):"]
    stage_names = list(report["idle"]["stages_ms"])
    lines.append(f"  {'stage':<46} {'idle':>15} {'under load':>15}")
    for st in stage_names:
        a = report["idle"]["stages_ms"].get(st, {})
        b = report["load"]["stages_ms"].get(st, {})
        lines.append(
            f"  {st:<46} {_f(a.get('p50')):>7}/{_f(a.get('p99')):<7} "
            f"{_f(b.get('p50')):>7}/{_f(b.get('p99')):<7}"
        )
    lines += ["", "where the time goes, step 2 (ms; p50 / p99):"]
    lines.append(f"  {'stage':<46} {'under load':>15} {'idle':>15}")
    for st in report["steps_under_load"]["stages_ms"]:
        a = report["steps_under_load"]["stages_ms"].get(st, {})
        b = report["steps_idle"]["stages_ms"].get(st, {})
        lines.append(
            f"  {st:<46} {_f(a.get('p50')):>7}/{_f(a.get('p99')):<7} "
            f"{_f(b.get('p50')):>7}/{_f(b.get('p99')):<7}"
        )
    lines += ["", "Celery tasks (from the worker's INFO log; ms, p50 / p99):"]
    lines.append(f"  {'phase':<11} {'task':<24} {'count':>6} {'wait in worker':>16} {'run':>16}")
    for phase, tasks in report["celery"].items():
        for name, s in tasks.items():
            if "count" not in s:
                continue
            w, r = s["wait_ms"], s["run_ms"]
            lines.append(
                f"  {phase:<11} {name:<24} {s['count']:>6} {_f(w['p50']):>7}/{_f(w['p99']):<8}"
                f" {_f(r['p50']):>7}/{_f(r['p99']):<8}"
            )
        tick = tasks.get("muster.tick", {})
        gap = tick.get("gap_between_starts_ms")
        if gap:
            lines.append(
                f"  {phase:<11} {'tick: gap between runs':<24} {'':>6} "
                f"p50 {_f(gap['p50'])} p99 {_f(gap['p99'])} max {_f(gap['max'])}; beat sent"
                f" {tick.get('beat_sends')}, discarded as expired {tick.get('discarded_expired')}"
            )
    for phase, st in (report.get("pg_statements") or {}).items():
        lines += [
            "",
            f"SQL, {phase} phase (--pg-log): {st['per_incident']['statements']} statements and"
            f" {st['per_incident']['ms']} ms of statement time per incident;"
            f" {st['new_connections']} new connections; top by total:",
        ]
        for row in st["top"][:8]:
            lines.append(
                f"  {row['ms_total']:>8.0f} ms {row['count']:>6}x {row['ms_mean']:>7.2f} ms"
                f"  {row['sql'][:84]}"
            )
    dd = report["dedup"]
    lines += [
        "",
        f"dedup: {'held' if dd['ok'] else 'BROKEN'} — {dd['incidents']} incidents,"
        f" {dd['sms_at_fake']} SMS at the fake for them, {dd['pages_handed_in_db']} pages handed"
        f" in the database; duplicates {len(dd['duplicate_sms'])}, step 1 not exactly once"
        f" {len(dd['step1_not_exactly_one'])}, due step 2 not exactly once"
        f" {len(dd['step2_due_not_exactly_one'])}, step 2 paged before due"
        f" {len(dd['step2_not_due_but_paged'])}",
    ]
    for phase in ("idle", "load"):
        if report[phase]["problems"]:
            lines.append(f"{phase}: problems {report[phase]['problems']}")
    for phase in ("steps_under_load", "steps_idle"):
        if report[phase]["missing"]:
            lines.append(f"{phase}: no step-2 page for {report[phase]['missing'][:10]}")
    if report.get("log_errors"):
        lines.append(f"errors in the logs: {len(report['log_errors'])} (see the JSON)")
    m = report["meta"]
    lines.append(
        f"machine: {m['cores']} cores; load average at start {m['loadavg_at_start'][0]:.2f}."
        " A large `other` share means other work on the machine: the figures are not Muster's"
        " alone."
    )
    return "\n".join([*lines, *storm])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

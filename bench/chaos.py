"""Chaos: the production shape on loopback under a storm, while its parts fail in turn.

    python bench/chaos.py                 # 3,000 events over 120 s, ~4 min in all
    python bench/chaos.py --quick         # 420 events over 30 s: what CI runs (test_chaos.py)
    python bench/chaos.py --disruptions kill-worker,flush-redis

The shape: 2 web processes (granian, each on its own port, as behind a load balancer), 2 Celery
workers (threads, at a tenth of the web tier's CPU weight), 2 beats under the tick's lease,
throwaway PostgreSQL (durable) and Redis, and the Twilio fake. Five services, one per ingest
format, each pages one person by SMS for every incident, once (bench/soak_setup.py --paging).

The storm is bench/soak.py's plan (events in the five formats, each replayed 3×, a fifth
resolving) sent to both web ports; a sender whose request fails (no answer, or 5xx) sends it
again after its Retry-After, to the other port, as Alertmanager and the other senders do. While
it runs, the disruptions happen one after another, evenly spaced:

- kill-web      SIGKILL one web process (all of its workers); a supervisor restarts it 2 s later
- kill-worker   SIGKILL one Celery worker mid-storm; restarted 2 s later
- kill-tick     SIGKILL the beat holding the tick's lease; the other must take over (≤ 10 s)
- flush-redis   FLUSHALL: the broker's queued tasks, the cache, the kick keys, all gone
- restart-redis SIGKILL Redis and start it again, empty, on the same port
- restart-postgres  stop PostgreSQL (fast shutdown) for 3 s and start it again: ingest
                answers 503 with Retry-After meanwhile, and senders retry

At each disruption a probe alert (a new critical alert on a service of its own) is sent at
once, with retries; its recovery time is from the disruption to the probe's SMS at the fake.

Checked at the end: every request answered 2xx was stored (0 lost); exactly one incident and one
alert per firing event; every incident still open was paged exactly once (0 missing, 0
duplicate: an SMS naming it), a resolved one at most once; every probe paged once; the tick was
taken over. Reported besides: the longest gap between SMS during the storm, the longest time
from an incident's row to its SMS, and per disruption its recovery time. Prints a table; JSON
goes to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import ingest  # noqa: E402  (re-runs this script under .venv's Python)
import paging  # noqa: E402
import psycopg  # noqa: E402
import soak  # noqa: E402
import soak_plan  # noqa: E402
from ingest import BIN, RESULTS, ROOT, Proc, start  # noqa: E402

from muster_services import free_port, running_services  # noqa: E402

DISRUPTIONS = (
    "kill-web",
    "kill-worker",
    "kill-tick",
    "flush-redis",
    "restart-redis",
    "restart-postgres",
)
SENDER_RETRIES = 30
TAKEOVER_TARGET_S = 10

_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"chaos [{time.monotonic() - _T0:5.1f}s]: {message}", file=sys.stderr, flush=True)


class Stack:
    """The processes of the shape, each restartable by name, under a supervisor that starts
    again, 2 s later, any process that exits unasked (systemd's Restart=, Kubernetes' restart of
    a container that exited): each such exit is counted, with its exit code and last log line."""

    def __init__(self, opts, env: dict, logdir: Path, ports: list[int], services):
        self.opts, self.env, self.logdir, self.ports = opts, env, logdir, ports
        self.services = services
        self.procs: dict[str, Proc] = {}
        self.restarted: list[subprocess.Popen] = []  # PostgreSQL and Redis started again
        self.current = list(services.processes)  # PostgreSQL and Redis as they run now
        self.unplanned: list[dict] = []  # processes that exited unasked, restarted
        self.down: set[str] = set()  # killed on purpose, not for the supervisor to restart
        self.lock = threading.Lock()
        self.supervising = threading.Event()
        self.argv = {
            f"web-{i}": ingest.server_argv("granian", opts.web_workers, p)
            for i, p in enumerate(ports)
        }
        for i in range(2):
            worker = [str(BIN / "celery"), "-A", "muster", "worker", "--loglevel", "INFO"]
            worker += ["--pool", "threads", "--concurrency", "4", "--hostname", f"chaos-{i}@%h"]
            self.argv[f"worker-{i}"] = worker
            self.argv[f"beat-{i}"] = [str(BIN / "celery"), "-A", "muster", "beat", "-l", "INFO"]

    def supervise(self) -> None:
        """Run in a thread: restart what exited unasked, until `stop`."""
        self.supervising.set()
        while self.supervising.is_set():
            time.sleep(0.5)
            with self.lock:
                for name, proc in list(self.procs.items()):
                    code = proc.popen.poll()
                    if code is None or name in self.down or not self.supervising.is_set():
                        continue
                    last = proc.tail(3).splitlines()
                    self.unplanned.append(
                        {"process": name, "exit_code": code, "at": time.time(), "log": last}
                    )
                    say(f"{name} exited unasked (code {code}): restarting it in 2 s")
                    time.sleep(2)
                    self.start(name)

    def start(self, name: str) -> None:
        self.procs[name] = start(name, self.argv[name], self.env, self.logdir)
        if name.startswith("worker") and self.opts.worker_priority == "low":
            ingest.lower_cpu_priority(self.procs[name].popen.pid)

    def kill(self, name: str, *, down_s: float = 2.0) -> None:
        """SIGKILL `name`, and start it again after `down_s`."""
        with self.lock:
            self.down.add(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.procs[name].popen.pid, signal.SIGKILL)
            self.procs[name].popen.wait()
        time.sleep(down_s)
        with self.lock:
            self.start(name)
            self.down.discard(name)

    def stop(self) -> None:
        self.supervising.clear()
        time.sleep(0.6)  # the supervisor's last look is over
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        for popen in self.restarted:
            if popen.poll() is None:
                popen.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    popen.wait(timeout=15)


def restart_server(stack: Stack, index: int, stop_signal: signal.Signals, down_s: float) -> None:
    """Stop PostgreSQL (0) or Redis (1), and after `down_s` start it again as it was started."""
    current = stack.current[index]
    current.send_signal(stop_signal)
    current.wait(timeout=30)
    time.sleep(down_s)
    log = stack.logdir / f"{'postgres' if index == 0 else 'redis'}-restarted.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            current.args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack.restarted.append(popen)
    stack.current[index] = popen
    port = stack.services.pg_port if index == 0 else stack.services.redis_port
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _accepts(port):
        time.sleep(0.1)


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def redis_command(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(64)


def tick_holder(dsn: str) -> int | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT holder FROM muster_lease WHERE name = 'beat'").fetchone()
    return int(row[0].split(":")[1]) if row and row[0] else None


def disrupt(name: str, stack: Stack) -> dict:
    """Do one disruption; return what it did and how long the parts took to come back."""
    dsn = stack.services.database_url
    began = time.monotonic()
    out: dict = {"disruption": name}
    if name == "kill-web":
        stack.kill("web-0")
    elif name == "kill-worker":
        stack.kill("worker-0")
    elif name == "kill-tick":
        holder = tick_holder(dsn)
        victim = next(n for n in ("beat-0", "beat-1") if stack.procs[n].popen.pid == holder)
        survivor = "beat-1" if victim == "beat-0" else "beat-0"
        # Under the lock: the supervisor must not start it again before the takeover.
        with stack.lock:
            os.killpg(stack.procs[victim].popen.pid, signal.SIGKILL)
            stack.procs[victim].popen.wait()
            deadline = time.monotonic() + 60
            survivor_pid = stack.procs[survivor].popen.pid
            while time.monotonic() < deadline and tick_holder(dsn) != survivor_pid:
                time.sleep(0.1)
            took_over = tick_holder(dsn) == survivor_pid
            out["tick_taken_over"] = took_over
            out["takeover_s"] = round(time.monotonic() - began, 1) if took_over else None
            stack.start(victim)
    elif name == "flush-redis":
        out["answer"] = redis_command(stack.services.redis_port, b"FLUSHALL").decode().strip()
    elif name == "restart-redis":
        restart_server(stack, 1, signal.SIGKILL, 1.0)
    elif name == "restart-postgres":
        restart_server(stack, 0, signal.SIGINT, 3.0)
    else:
        raise ValueError(f"unknown disruption {name!r}; known: {', '.join(DISRUPTIONS)}")
    out["took_s"] = round(time.monotonic() - began, 1)
    return out


def probe(stack: Stack, target: dict, tag: str) -> dict:
    """Send a new critical alert to the probe service, retrying as a sender would."""
    body = json.dumps(
        {
            "summary": f"Chaos probe {tag}",
            "dedup_key": tag,
            "group_key": tag,
            "severity": "critical",
        }
    ).encode()
    sent_at = time.time()
    for attempt in range(SENDER_RETRIES):
        port = stack.ports[attempt % len(stack.ports)]
        try:
            with contextlib.closing(socket.create_connection(("127.0.0.1", port), 10)) as sock:
                sock.sendall(
                    f"POST {target['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                    f"application/json\r\nContent-Length: {len(body)}\r\nConnection: close"
                    f"\r\n\r\n".encode()
                    + body
                )
                status = int(sock.recv(64)[9:12] or b"0")
        except (OSError, ValueError):
            status = 0
        if 200 <= status < 300:
            return {"tag": tag, "sent_at": sent_at, "attempts": attempt + 1}
        time.sleep(1)
    return {"tag": tag, "sent_at": sent_at, "attempts": SENDER_RETRIES, "refused": True}


def pages(dsn: str, fake: paging.Fake, targets: dict) -> dict:
    """Per incident of the run's services: its number, state, trigger time, SMS naming it."""
    named: dict[int, list[float]] = {}
    for message in fake.messages():
        for number in paging.numbers_in(message["body"]):
            named.setdefault(number, []).append(message["received_at"])
    services = {t["service_id"]: kind for kind, t in targets.items()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT number, service_id, status, extract(epoch FROM triggered_at), group_key"
            " FROM incidents_incident WHERE service_id = ANY(%s)",
            [list(services)],
        ).fetchall()
    return {
        number: {
            "kind": services[service_id],
            "status": status,
            "triggered_at": float(triggered),
            "group": group,
            "sms": sorted(named.get(number, [])),
        }
        for number, service_id, status, triggered, group in rows
    }


def wait_for_pages(dsn: str, fake: paging.Fake, targets: dict, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = pages(dsn, fake, targets)
        waiting = [n for n, p in found.items() if p["status"] != "resolved" and not p["sms"]]
        if not waiting or time.monotonic() > deadline:
            return found
        time.sleep(1)


def why_missing(dsn: str, numbers: list[int]) -> dict:
    """For incidents never paged: their state, escalation runs, pages and timeline, to read."""
    out: dict = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for number in numbers[:10]:
            (incident_id, status) = conn.execute(
                "SELECT id, status FROM incidents_incident WHERE number = %s", [number]
            ).fetchone()
            out[number] = {
                "status": status,
                "runs": conn.execute(
                    "SELECT id, status, step, created_at::text FROM oncall_escalation"
                    " WHERE incident_id = %s ORDER BY id",
                    [incident_id],
                ).fetchall(),
                "pages": conn.execute(
                    "SELECT id, status, attempts, error, created_at::text, claimed_at::text,"
                    " handed_at::text, finished_at::text FROM oncall_page"
                    " WHERE incident_id = %s ORDER BY id",
                    [incident_id],
                ).fetchall(),
                "timeline": conn.execute(
                    "SELECT kind, at::text, message FROM incidents_timelineentry"
                    " WHERE incident_id = %s ORDER BY id",
                    [incident_id],
                ).fetchall(),
            }
    return out


def _handed_over(why: dict) -> bool:
    # (id, status, attempts, error, created, claimed, handed, finished)
    return any(p[6] is not None and p[1] in ("sending", "unknown") for p in why["pages"])


def page_figures(found: dict, probes: list[dict], storm: tuple[float, float]) -> dict:
    storm_incidents = {n: p for n, p in found.items() if p["kind"] != "probe"}
    open_ = [p for p in storm_incidents.values() if p["status"] != "resolved"]
    missing = sorted(
        n for n, p in storm_incidents.items() if p["status"] != "resolved" and not p["sms"]
    )
    duplicate = sorted(n for n, p in found.items() if len(p["sms"]) > 1)
    waits = [p["sms"][0] - p["triggered_at"] for p in storm_incidents.values() if p["sms"]]
    arrivals = sorted(
        t for p in storm_incidents.values() for t in p["sms"][:1] if storm[0] <= t <= storm[1]
    )
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # The probe's group key is its tag: "<integration id>:g:<tag>" (alerts.context.group_key).
    by_tag = {p["group"].split(":g:", 1)[-1]: p for p in found.values() if p["kind"] == "probe"}
    for record in probes:
        paged = by_tag.get(record["tag"], {}).get("sms", [])
        record["paged"] = len(paged)
        record["recovery_s"] = round(paged[0] - record["disrupted_at"], 1) if paged else None
    return {
        "incidents": len(storm_incidents),
        "open": len(open_),
        "paged": sum(1 for p in storm_incidents.values() if p["sms"]),
        "missing": missing,
        "duplicate": duplicate,
        "sms": sum(len(p["sms"]) for p in found.values()),
        "longest_row_to_sms_s": round(max(waits), 1) if waits else None,
        "longest_gap_between_sms_s": round(max(gaps), 1) if gaps else None,
        "probes_paged_once": sum(1 for r in probes if r["paged"] == 1),
    }


def run(opts) -> dict:
    plan = soak_plan.Plan(opts.events, opts.seconds, opts.replays, run=f"chaos{os.getpid()}")
    report: dict = {
        "meta": {"argv": opts.argv, "cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        "plan": plan.as_dict(),
        "disruptions": [],
    }
    with running_services(durable=not opts.fast_db) as services:
        logdir = Path(tempfile.mkdtemp(prefix="muster-chaos-"))
        ports = [free_port(), free_port()]
        env = paging.stack_env(services, logdir, ports[0], rate_limited=False)
        paging.migrate(env)
        fake_proc, fake_url = paging.start_fake(env, logdir)
        env["TWILIO_API_BASE_URL"] = fake_url
        targets = soak.setup(env, "--paging")
        storm_targets = {k: v for k, v in targets.items() if k != "probe"}
        stack = Stack(opts, env, logdir, ports, services)
        try:
            say("starting 2 web processes, 2 workers, 2 beats")
            for name in stack.argv:
                stack.start(name)
            threading.Thread(target=stack.supervise, daemon=True).start()
            for port in ports:
                ingest.wait_healthy(port, stack.procs[f"web-{ports.index(port)}"])
            paging.wait_ready(ports[0], list(stack.procs.values()))
            report["tick_holder_at_start"] = tick_holder(services.database_url)
            say(
                f"storm: {plan.events} events over {plan.seconds:.0f}s; "
                f"disruptions: {', '.join(opts.disruptions)}"
            )
            result: dict = {}
            storm_began = time.time()
            sender = threading.Thread(
                target=lambda: result.setdefault(
                    "sent",
                    soak_plan.send(
                        plan, ports, storm_targets, opts.connections, retries=SENDER_RETRIES
                    ),
                ),
                daemon=True,
            )
            sender.start()
            probes = []
            for i, name in enumerate(opts.disruptions):
                at = storm_began + plan.seconds * (i + 1) / (len(opts.disruptions) + 1)
                time.sleep(max(0.0, at - time.time()))
                say(f"{name}")
                disrupted_at = time.time()
                tag = f"probe-{i}-{name}"
                probed: dict = {}
                prober = threading.Thread(
                    target=lambda t=tag, into=probed: into.update(
                        probe(stack, targets["probe"], t)
                    ),
                    daemon=True,
                )
                prober.start()
                done = disrupt(name, stack)
                prober.join(timeout=SENDER_RETRIES + 10)
                probes.append({**probed, **done, "disrupted_at": disrupted_at})
            sender.join()
            storm_ended = time.time()
            sent = result["sent"]
            report["sent"] = sent.figures()
            report["expected"] = want = soak_plan.expected(plan, sent)
            say(f"sent: {report['sent']['statuses']}, retried {sent.retried}; settling")
            report["found"] = soak.settle(
                services.database_url, plan, storm_targets, want, opts.settle_wait
            )
            found = wait_for_pages(services.database_url, paging.Fake(fake_url), targets, 120)
            report["pages"] = page_figures(found, probes, (storm_began, storm_ended))
            why = why_missing(services.database_url, report["pages"]["missing"])
            report["pages"]["why_missing"] = why
            # A page handed to the provider by a worker killed before the provider answered
            # is `unknown`, never sent again (at most once; the next contact method is tried,
            # and this bench's people have one): counted apart from a page that went missing.
            report["pages"]["outcome_unknown"] = [n for n, w in why.items() if _handed_over(w)]
            report["pages"]["missing"] = [
                n for n in report["pages"]["missing"] if n not in report["pages"]["outcome_unknown"]
            ]
            report["disruptions"] = probes
            report["tick_holder_at_end"] = tick_holder(services.database_url)
            report["unplanned_exits"] = list(stack.unplanned)
            report["log_errors"] = [
                e
                for proc in stack.procs.values()
                for e in paging.error_blocks(proc.log.read_text(errors="replace"))
            ]
        finally:
            stack.stop()
            fake_proc.stop()
    report["problems"] = problems(plan, report)
    report["meta"]["loadavg_at_end"] = os.getloadavg()
    report["meta"]["code"] = ingest._code_state()
    return report


def problems(plan: soak_plan.Plan, report: dict) -> list[str]:
    """What is not as it must be: counts and order only, never time."""
    sent, want, got, pages_ = (report[k] for k in ("sent", "expected", "found", "pages"))
    out = soak_plan.problems(plan, sent, want, got, senders_retry=True)
    if pages_["missing"]:
        out.append(f"open incidents never paged: {pages_['missing'][:20]}")
    if pages_["duplicate"]:
        out.append(f"incidents paged more than once: {pages_['duplicate'][:20]}")
    for record in report["disruptions"]:
        if record.get("paged") != 1:
            out.append(f"{record['disruption']}: its probe was paged {record.get('paged')} times")
        if record.get("tick_taken_over") is False:
            out.append("kill-tick: no other beat took the tick's lease over")
    return out


def render(report: dict) -> str:
    sent, got, pages_ = report["sent"], report["found"], report["pages"]
    lines = [
        f"chaos: {report['plan']['events']} events over {report['plan']['seconds']:.0f}s, "
        f"2 web processes, 2 workers, 2 beats",
        f"  sent {sent['sent']}: {sent['statuses']}; sent again {sent['retried']} times, after "
        f"{sent['retry_causes']}",
        f"  stored {got['requests_stored']} (accepted {sent['sent'] - sent['not_2xx']}); "
        f"incidents {got['incidents']} (expected {report['expected']['incidents']}); "
        f"duplicates {got['duplicate_incidents']} incidents, {got['duplicate_alerts']} alerts",
        f"  pages: {pages_['paged']} of {pages_['incidents']} incidents "
        f"({pages_['open']} still open), missing {len(pages_['missing'])}, "
        f"duplicate {len(pages_['duplicate'])}, outcome unknown "
        f"{len(pages_.get('outcome_unknown', []))}; longest gap between SMS "
        f"{pages_['longest_gap_between_sms_s']} s, incident row -> SMS at most "
        f"{pages_['longest_row_to_sms_s']} s",
        f"  {'disruption':<18}{'took s':>8}{'probe paged':>13}{'recovery s':>12}  notes",
    ]
    for d in report["disruptions"]:
        notes = ""
        if "takeover_s" in d:
            notes = f"tick taken over in {d['takeover_s']} s (target {TAKEOVER_TARGET_S} s)"
        lines.append(
            f"  {d['disruption']:<18}{d['took_s']:>8}{d.get('paged', 0):>13}"
            f"{d.get('recovery_s')!s:>12}  {notes}"
        )
    for exit_ in report.get("unplanned_exits", []):
        lines.append(
            f"  {exit_['process']} exited unasked (code {exit_['exit_code']}) and was restarted: "
            f"{(exit_['log'] or [''])[-1][:120]}"
        )
    lines.append("  problems: " + ("; ".join(report["problems"]) or "none"))
    if report.get("log_errors"):
        lines.append(f"  errors logged: {len(report['log_errors'])}: {report['log_errors'][:3]}")
    return "\n".join(lines)


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=3000)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--replays", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--web-workers", type=int, default=2, help="granian workers per web process")
    p.add_argument("--disruptions", default=",".join(DISRUPTIONS))
    p.add_argument("--settle-wait", type=float, default=300.0)
    p.add_argument("--quick", action="store_true", help="420 events over 30 s (CI)")
    ingest.add_deployment_options(p)
    opts = p.parse_args(argv)
    opts.argv = argv
    opts.disruptions = [d for d in opts.disruptions.split(",") if d]
    unknown = set(opts.disruptions) - set(DISRUPTIONS)
    if unknown:
        p.error(f"unknown disruptions {sorted(unknown)}; known: {', '.join(DISRUPTIONS)}")
    if opts.quick:
        opts.events, opts.seconds = 420, 30.0
    return opts


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    report = run(opts)
    print()
    print(render(report))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    say(f"wrote {out.relative_to(ROOT)}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

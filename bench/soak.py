"""Soak: 10,000 events in 5 minutes, in the five ingest formats, each replayed 3×, against the
production shape on loopback (granian web tier, a Celery worker and beat, throwaway PostgreSQL
and Redis); then the exact end state is checked.

    python bench/soak.py                  # 10,000 events over 300 s, ~6 min in all
    python bench/soak.py --events 3000 --seconds 90
    python bench/soak.py --quick          # 300 events over 15 s: what CI runs (test_soak.py)

The plan (bench/soak_plan.py): `--events` requests at an even rate over `--seconds`, from 16
keep-alive connections; `events / replays` distinct events, each sent `--replays` times (the
same body, the copies interleaved with other events, a second or two apart). Four in five fire,
round-robin over Alertmanager, Grafana, PagerDuty Events v2, Opsgenie and generic integrations
(one service each), each with a dedup key and a group of its own; the fifth resolve one of
them in its own format, sent once that one's copies are answered. So exactly one incident and
one alert must exist per firing event, its alert counting every accepted copy as an
occurrence, and the resolved ones' alert and incident must be resolved.

Reported: requests sent and HTTP status counts (0 5xx, all 2xx), incidents and alerts expected
vs found (exact, per format too), occurrences, duplicates (a group with two incidents, a dedup
key with two alerts, two events in one incident), the accept rate and latency, and how long
processing took to settle after the last answer. Prints a table; JSON goes to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
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
import soak_plan  # noqa: E402
from ingest import RESULTS, ROOT, VENV_PYTHON  # noqa: E402

from muster_services import free_port, running_services  # noqa: E402

_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"soak [{time.monotonic() - _T0:5.1f}s]: {message}", file=sys.stderr, flush=True)


def setup(env: dict, *flags: str) -> dict:
    """Run bench/soak_setup.py (with `flags`) and return the data it made."""
    out = paging.subprocess.run(
        [str(VENV_PYTHON), str(BENCH / "soak_setup.py"), *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"soak_setup.py failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def settle(dsn: str, plan: soak_plan.Plan, targets: dict, want: dict, timeout: float) -> dict:
    """Wait until every stored request is processed and the counts hold still (or are what they
    must be); return what was found and how long that took."""
    began = time.monotonic()
    ids = [t["integration_id"] for t in targets.values()]
    with psycopg.connect(dsn, autocommit=True) as conn:
        last, since = None, began
        while time.monotonic() - began < timeout:
            now = (
                soak_plan.unsettled(conn, ids),
                *conn.execute(
                    "SELECT count(*), coalesce(sum(occurrences), 0) FROM alerts_alert"
                    " WHERE integration_id = ANY(%s)",
                    [ids],
                ).fetchone(),
            )
            if now != last:
                last, since = now, time.monotonic()
            done = now[0] == 0 and now[1:] == (want["alerts"], want["occurrences"])
            if done or (now[0] == 0 and time.monotonic() - since >= 5):
                break
            time.sleep(0.1)
        settled_s = (since if last and last[0] == 0 else time.monotonic()) - began
        got = soak_plan.found(conn, plan, targets)
    got["settle_s"] = round(settled_s, 1)
    return got


class Backlog(threading.Thread):
    """Samples, every quarter second, the requests stored but not processed and how long the
    oldest of them has waited: how far processing falls behind while the soak runs."""

    def __init__(self, dsn: str, targets: dict):
        super().__init__(daemon=True)
        self.dsn, self.ids = dsn, [t["integration_id"] for t in targets.values()]
        self.samples: list[tuple[float, int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        began = time.monotonic()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.25):
                n, age = conn.execute(
                    "SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)"
                    " FROM alerts_ingestrequest WHERE integration_id = ANY(%s)"
                    " AND outcome = 'accepted' AND processed_at IS NULL",
                    [self.ids],
                ).fetchone()
                self.samples.append((time.monotonic() - began, n, float(age)))

    def figures(self) -> dict:
        self.stop.set()
        self.join()
        return {
            "backlog_peak": max((n for _, n, _ in self.samples), default=0),
            "oldest_wait_peak_s": round(max((a for _, _, a in self.samples), default=0), 2),
            "samples": [[round(t, 2), n, round(a, 2)] for t, n, a in self.samples],
        }


def run(opts) -> dict:
    """Start the stack, send the plan, check the end state; return the report."""
    plan = soak_plan.Plan(opts.events, opts.seconds, opts.replays, run=f"soak{os.getpid()}")
    report: dict = {
        "meta": {"argv": opts.argv, "cores": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        "plan": plan.as_dict(),
    }
    with running_services(durable=not opts.fast_db) as services:
        logdir = Path(tempfile.mkdtemp(prefix="muster-soak-"))
        port = free_port()
        env = paging.stack_env(services, logdir, port, rate_limited=False)
        paging.migrate(env)
        say("starting the web tier, the Celery worker and beat")
        with paging.running_stack(opts, env, logdir, port, lambda: setup(env)) as (procs, targets):
            say(
                f"sending {plan.events} events ({plan.firing} firing and "
                f"{len(plan.resolved())} resolving, × {plan.replays}) over {plan.seconds:.0f}s"
            )
            backlog = Backlog(services.database_url, targets)
            backlog.start()
            sent = soak_plan.send(plan, port, targets, threads=opts.connections)
            report["sent"] = sent.figures()
            report["expected"] = want = soak_plan.expected(plan, sent)
            say(f"sent: {report['sent']['statuses']}; waiting for processing to settle")
            report["found"] = settle(services.database_url, plan, targets, want, opts.settle_wait)
            report["backlog"] = backlog.figures()
            report["log_errors"] = [
                e
                for proc in procs.values()
                for e in paging.error_blocks(proc.log.read_text(errors="replace"))
            ]
    report["problems"] = soak_plan.problems(
        plan, report["sent"], report["expected"], report["found"]
    )
    report["meta"]["loadavg_at_end"] = os.getloadavg()
    report["meta"]["code"] = ingest._code_state()
    return report


def render(report: dict) -> str:
    s, want, got = report["sent"], report["expected"], report["found"]
    plan = report["plan"]
    rows = [
        (
            "events sent",
            f"{s['sent']} ({plan['firing']} firing and {plan['resolves']} resolving, "
            f"each × {plan['replays']})",
            "",
        ),
        ("HTTP statuses", json.dumps(s["statuses"]), f"5xx: {s['5xx']}"),
        ("incidents", f"expected {want['incidents']}, found {got['incidents']}", ""),
        ("  per format", json.dumps(got["incidents_by_kind"]), ""),
        ("alerts", f"expected {want['alerts']}, found {got['alerts']}", ""),
        ("occurrences", f"expected {want['occurrences']}, found {got['occurrences']}", ""),
        (
            "resolved",
            f"expected {want['resolved']}, found {got['alerts_resolved']} alerts and "
            f"{got['incidents_resolved']} incidents",
            "",
        ),
        (
            "duplicates",
            f"incidents {got['duplicate_incidents']}, alerts {got['duplicate_alerts']}, "
            f"two events in one incident {got['incidents_with_two_events']}",
            "",
        ),
        (
            "accepted",
            f"{s['accept_rate_per_s']}/s over {s['wall_s']} s; p50 {s['latency_p50_ms']} ms, "
            f"p99 {s['latency_p99_ms']} ms, max {s['latency_max_ms']} ms",
            f"behind schedule ≤ {s['most_behind_schedule_s']} s",
        ),
        ("settled", f"{got['settle_s']} s after the last answer", ""),
        (
            "backlog",
            f"peak {report['backlog']['backlog_peak']} requests unprocessed, the oldest "
            f"waiting up to {report['backlog']['oldest_wait_peak_s']} s",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = ["", "Soak (production shape on loopback)"]
    lines += [
        f"  {name:<{width}}  {value}" + (f"  ({note})" if note else "")
        for name, value, note in rows
    ]
    lines.append(
        "  verdict: " + ("sound" if not report["problems"] else "; ".join(report["problems"]))
    )
    if report.get("log_errors"):
        lines.append(f"  errors logged: {len(report['log_errors'])}: {report['log_errors'][:3]}")
    return "\n".join(lines)


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="300 events over 15 s (what CI runs)")
    p.add_argument("--events", type=int, default=10_000, help="requests, replays included")
    p.add_argument("--seconds", type=float, default=300.0, help="sent evenly over this long")
    p.add_argument("--replays", type=int, default=3, help="copies of each distinct event")
    p.add_argument("--connections", type=int, default=16, help="sender's keep-alive connections")
    p.add_argument("--settle-wait", type=float, default=300.0, help="seconds to wait, at most")
    p.add_argument("--web-workers", type=int, default=3)
    ingest.add_deployment_options(p)
    p.add_argument("--pool", default="threads")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--json", type=Path, help="write the JSON here (default: bench/results/)")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.events, opts.seconds, opts.settle_wait = 300, 15.0, 60.0
    opts.argv = argv
    return opts


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    report = run(opts)
    print(render(report))
    out = opts.json
    if out is None:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    say(f"wrote {out}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A new SEV1 behind a storm of repeats: how soon is its page handed to the provider?

    python bench/behind_storm.py                 # ~3 min: urgent-first on, then off (before)
    python bench/behind_storm.py --modes on      # the deployed default alone
    python bench/behind_storm.py --quick         # a smoke test, not figures

The production shape on loopback (bench/paging.py's stack: granian web tier, Celery worker with
a tenth of the web tier's CPU weight, beat, the Twilio fake, throwaway PostgreSQL and Redis) with
50 services, each with a pool of firing warnings (nobody is paged for them). For
`--storm-seconds` (30) a client re-sends those pools as fast as the server takes them
(Alertmanager groups of `--batch` alerts, `--max-outstanding` requests in flight): every alert a
repeat, more than the processor keeps up with, so a backlog builds. Meanwhile `--sev1` new
critical alerts (Alertmanager and generic, each its own incident on a service of its own, whose
on-call person is under the page rate limit) are sent evenly over the storm. For each it reports
the backlog when it was sent (requests waiting, the oldest one's age) and the time from the
client's clock just before the POST to the page's `handed_at` (Muster handed it to Twilio) and
to the SMS at the fake. Target: handed over within 1.5 s (issue 15).

Each mode is a stack of its own: `on` is the default (MUSTER_INGEST_URGENT_FIRST=true), `off`
processes strictly in arrival order, as before urgent requests went first. Prints a table and
writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import paging  # first: it puts the repository and bench/ on sys.path
from ingest import RESULTS, ROOT, _code_state, add_deployment_options
from paging import (
    Db,
    Fake,
    error_blocks,
    migrate,
    new_requests,
    pool_bodies,
    run_client,
    running_stack,
    say,
    setup_script,
    stack_env,
    start_fake,
    wait_for_pages,
)

from muster_services import free_port, running_services

TARGET_HANDED_S = 1.5


class Backlog(threading.Thread):
    """Samples the requests waiting to be processed, twice a second."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.db = Db(url)
        self.samples: list[tuple[float, int, float]] = []  # (time, waiting, oldest age s)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            count, age = self.db.conn.execute(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0)"
                " FROM alerts_ingestrequest WHERE outcome = 'accepted' AND processed_at IS NULL"
            ).fetchone()
            self.samples.append((time.time(), int(count), float(age)))

    def at(self, when: float) -> dict:
        before = [s for s in self.samples if s[0] <= when] or self.samples[:1]
        _, count, age = before[-1] if before else (0, 0, 0.0)
        return {"waiting": count, "oldest_s": round(age, 2)}


def measure(
    opts, port: int, data: dict, db: Db, fake: Fake, pool: list, url: str, logdir: Path
) -> dict:
    services = data["services"]
    primaries = {s["paths"][k]: s["primary"] for s in services for k in s["paths"]}
    say("warm-up: paging 2 incidents")
    warm = run_client(
        port,
        {"duration": 3, "new": {"rate": 2, "requests": new_requests(services, "warm", 2)}},
        logdir,
        "warm",
    )
    db.fill_results(warm["new"])
    warmed = {(r["incident"], primaries[r["path"]]) for r in warm["new"] if r.get("incident")}
    wait_for_pages(fake, warmed, 30, "warm-up")

    sev1 = new_requests(services, "sev1", opts.sev1, offset=2)  # services of their own
    backlog = Backlog(url)
    backlog.start()
    say(f"storm: {opts.storm_seconds:.0f}s of repeats, {opts.sev1} new SEV1s sent during it")
    began = time.time()
    client = run_client(
        port,
        {
            "duration": opts.storm_seconds,
            "dup": {"rate": 5000, "requests": pool},
            # The first a tenth of the way in, the last near the end: each behind what came before.
            "new": {"rate": opts.sev1 / opts.storm_seconds, "requests": sev1},
            "max_outstanding": opts.max_outstanding,
            "new_timeout": 60,
        },
        logdir,
        "storm",
    )
    db.fill_results(client["new"], timeout=600)
    wanted = {(r["incident"], primaries[r["path"]]) for r in client["new"] if r.get("incident")}
    wait_for_pages(fake, wanted, 120, "the SEV1s")
    while backlog.at(time.time())["waiting"] and time.time() - began < 900:
        time.sleep(0.5)
    drained = time.time() - began
    backlog.stop.set()
    backlog.join()

    timings = db.timings([r["incident"] for r in client["new"] if r.get("incident")])
    reached = fake.first_by_number()
    rows = []
    for r in client["new"]:
        row = {"tag": r["tag"], "sent_s": round(r.get("sent_at", began) - began, 2)}
        row["backlog"] = backlog.at(r.get("sent_at", began))
        number = r.get("incident")
        if number is None:
            rows.append({**row, "error": r.get("error", "no incident")})
            continue
        timing = timings[number]
        pages = timing["pages"]
        # Where the time went: the incident's row (processing), its first page's row (the
        # escalation), the page claimed by delivery, handed over.
        row["incident_s"] = round(timing["triggered_at"] - r["sent_at"], 3)
        for stage in ("created_at", "claimed_at"):
            stamps = [p[stage] for p in pages if p[stage]]
            row[f"page_{stage[:-3]}_s"] = round(min(stamps) - r["sent_at"], 3) if stamps else None
        handed = [p["handed_at"] for p in pages if p["handed_at"]]
        sms = reached.get((number, primaries[r["path"]]), [])
        row["handed_s"] = round(min(handed) - r["sent_at"], 3) if handed else None
        row["sms_s"] = round(min(sms) - r["sent_at"], 3) if sms else None
        rows.append(row)
    handed_s = [row["handed_s"] for row in rows if row.get("handed_s") is not None]
    dup = client["dup"]["statuses"]
    return {
        "sev1": rows,
        "handed_s": summary(handed_s),
        "within_target": sum(1 for s in handed_s if s <= TARGET_HANDED_S),
        "missing": [row["tag"] for row in rows if row.get("handed_s") is None],
        "storm": {
            "requests_answered": sum(v for k, v in dup.items() if k.startswith("2")),
            "statuses": dup,
            "alerts_per_request": opts.batch,
            "backlog_max": max((s[1] for s in backlog.samples), default=0),
            "oldest_max_s": round(max((s[2] for s in backlog.samples), default=0), 1),
            "drained_after_s": round(drained, 1),
        },
    }


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


def one_mode(opts, urgent_first: bool) -> dict:
    with running_services(durable=not opts.fast_db) as services:
        logdir = Path(tempfile.mkdtemp(prefix="muster-behind-"))
        port = free_port()
        env = stack_env(services, logdir, port, rate_limited=True)
        env["MUSTER_INGEST_URGENT_FIRST"] = "true" if urgent_first else "false"
        migrate(env)
        fake_proc, fake_url = start_fake(env, logdir)
        env["TWILIO_API_BASE_URL"] = fake_url
        bodies = pool_bodies(opts.services, opts.batch)
        pool_file = logdir / "pool.json"
        pool_file.write_text(json.dumps(bodies))

        def create_data() -> dict:
            say(f"creating {opts.services} services and their pools of firing warnings")
            return setup_script(
                env, "setup", "--services", str(opts.services), "--pool", str(pool_file)
            )

        try:
            with running_stack(opts, env, logdir, port, create_data) as (procs, data):
                pool = [
                    [svc["paths"]["alertmanager"], b]
                    for svc, b in zip(data["services"], bodies, strict=True)
                ]
                db = Db(services.database_url)
                figures = measure(
                    opts, port, data, db, Fake(fake_url), pool, services.database_url, logdir
                )
                figures["log_errors"] = [
                    e
                    for proc in procs.values()
                    for e in error_blocks(proc.log.read_text(errors="replace"))
                ]
                return figures
        finally:
            fake_proc.stop()
            shutil.rmtree(logdir, ignore_errors=True)


def render(report: dict) -> str:
    lines = [
        f"new SEV1 behind {report['meta']['options']['storm_seconds']:.0f} s of repeats: "
        f"alert -> page handed to the provider (target {TARGET_HANDED_S} s)",
        f"{'mode':<22}{'p50 s':>8}{'max s':>8}{'within':>8}{'backlog max':>13}"
        f"{'oldest max s':>14}{'storm req/s':>13}",
    ]
    for mode, figures in report["modes"].items():
        storm = figures["storm"]
        rate = storm["requests_answered"] / report["meta"]["options"]["storm_seconds"]
        lines.append(
            f"{mode:<22}{figures['handed_s'].get('p50', '-'):>8}"
            f"{figures['handed_s'].get('max', '-'):>8}"
            f"{figures['within_target']:>5}/{len(figures['sev1']):<2}"
            f"{storm['backlog_max']:>13}{storm['oldest_max_s']:>14}{rate:>13.0f}"
        )
        for row in figures["sev1"]:
            lines.append(
                f"    sent at {row['sent_s']:>5} s, {row['backlog']['waiting']:>6} waiting "
                f"(oldest {row['backlog']['oldest_s']} s): incident {row.get('incident_s')} s, "
                f"page row {row.get('page_created_s')} s, claimed {row.get('page_claimed_s')} s, "
                f"handed {row.get('handed_s')} s, SMS {row.get('sms_s')} s"
            )
        if figures["log_errors"]:
            lines.append(f"    errors in the logs: {figures['log_errors'][:3]}")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--modes", default="on,off", help="urgent-first on, off (arrival order)")
    p.add_argument("--storm-seconds", type=float, default=30.0)
    p.add_argument("--sev1", type=int, default=10, help="new SEV1 alerts sent during the storm")
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--batch", type=int, default=10, help="alerts per repeated request")
    p.add_argument("--max-outstanding", type=int, default=16, help="storm requests in flight")
    p.add_argument("--web-workers", type=int, default=3)
    p.add_argument("--pool", default="threads", help="Celery worker pool, as deploy/ runs it")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="10 s storm, 4 SEV1s: a smoke test")
    add_deployment_options(p)
    opts = p.parse_args(argv)
    opts.modes = [m for m in opts.modes.split(",") if m]
    if opts.quick:
        opts.storm_seconds, opts.sev1 = min(opts.storm_seconds, 10.0), min(opts.sev1, 4)
    return opts


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    report: dict = {"meta": {"argv": argv, "options": vars(opts), "cores": os.cpu_count()}}
    report["meta"]["loadavg_at_start"] = os.getloadavg()
    report["modes"] = {}
    for mode in opts.modes:
        label = "urgent first (on)" if mode == "on" else "arrival order (off)"
        say(f"=== {label}")
        report["modes"][label] = one_mode(opts, urgent_first=mode == "on")
    report["meta"]["loadavg_at_end"] = os.getloadavg()
    report["meta"]["code"] = _code_state()
    print()
    print(render(report))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"behind-storm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    say(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(paging.sys.argv[1:]))

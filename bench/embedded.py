"""Embedded mode (`./musterctl up`: one process, SQLite): how fast a burst becomes incidents.

    python bench/embedded.py                    # 5,000 alerts in 50 Alertmanager batches of 100
    python bench/embedded.py --batches 20 --per-batch 50

It starts `./musterctl up` on a free port with a throwaway data directory (as a laptop runs it:
SQLite, the worker and the tick in the same process), sends the batches over `--connections`
(4) keep-alive connections to the Alertmanager URL it printed, every alert new, in groups of
`--groups` (10) incidents, then reads the SQLite file (read-only) until every alert is stored
and attached to its incident. Reported: accept (alerts/s while sending), end to end (alerts/s
from the first POST until the last alert is attached), the process tree's peak RSS (sampled
every 100 ms) and at the end. Issue 15's target: end to end ≥ 1,000 alerts/s, RSS ≤ 200 MiB.
JSON goes to bench/results/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import ingest  # noqa: E402  (re-runs this script under .venv's Python)
from ingest import RESULTS, ROOT  # noqa: E402
from payloads import Shape, body  # noqa: E402

from muster_services import free_port  # noqa: E402

ALERTMANAGER_LINE = re.compile(r"Alertmanager webhook URL:\s*(\S+)")
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def say(message: str) -> None:
    print(f"embedded: {message}", file=sys.stderr, flush=True)


def rss_mib(session: int) -> float:
    """The resident memory of every process in the session `session`, in MiB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[3]) != session:  # field 6, the session id
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


class Peak(threading.Thread):
    def __init__(self, session: int):
        super().__init__(daemon=True)
        self.session, self.peak, self.stop = session, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self.peak = max(self.peak, rss_mib(self.session))


def start(
    port: int, data_dir: Path, log: Path, settings: list[str]
) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
    env.update(MUSTER_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env.update(setting.split("=", 1) for setting in settings)
    with log.open("wb") as err:
        process = subprocess.Popen(
            ["./musterctl", "up", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    assert process.stdout is not None
    url = None
    for line in process.stdout:
        if match := ALERTMANAGER_LINE.search(line):
            url = match.group(1)
        if "Muster is up at" in line:
            break
    if url is None:
        raise RuntimeError(f"./musterctl up printed no Alertmanager URL; see {log}")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    return process, urlsplit(url).path


def send(port: int, path: str, bodies: list[bytes], connections: int) -> dict:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                _, payload = queue.pop(0)
            conn.request("POST", path, payload, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def attached(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM alerts_alert WHERE incident_id IS NOT NULL"
        ).fetchone()
    return n


def run(opts) -> dict:
    shape = Shape(
        "alertmanager",
        opts.per_batch,
        False,
        f"emb{os.getpid()}",
        f"emb{os.getpid()}",
        groups=opts.groups,
    )
    bodies = [
        body(
            shape, 0, [(f"{shape.prefix}-{b}-{k}", b % opts.groups) for k in range(opts.per_batch)]
        )
        for b in range(opts.batches)
    ]
    want = opts.batches * opts.per_batch
    data_dir = Path(tempfile.mkdtemp(prefix="muster-embedded-"))
    port = free_port()
    say(f"starting ./musterctl up on port {port}")
    process, path = start(port, data_dir, data_dir / "musterctl-up.stderr", opts.setting)
    peak = Peak(os.getsid(process.pid))
    try:
        time.sleep(opts.settle)  # its start-up work (migrations, demo data) is over
        idle_rss = rss_mib(os.getsid(process.pid))
        peak.start()
        say(f"sending {opts.batches} batches of {opts.per_batch} alerts")
        began = time.monotonic()
        statuses = send(port, path, bodies, opts.connections)
        sent_s = time.monotonic() - began
        deadline = began + opts.timeout
        done = 0
        while time.monotonic() < deadline:
            done = attached(data_dir / "muster.sqlite3")
            if done >= want:
                break
            time.sleep(0.05)
        e2e_s = time.monotonic() - began
        peak.stop.set()
        peak.join()
        return {
            "alerts": want,
            "statuses": {str(k): v for k, v in statuses.items()},
            "attached": done,
            "accept_alerts_per_s": round(want / sent_s, 1),
            "e2e_alerts_per_s": round(done / e2e_s, 1),
            "e2e_s": round(e2e_s, 2),
            "rss_idle_mib": round(idle_rss, 1),
            "rss_peak_mib": round(peak.peak, 1),
            "rss_end_mib": round(rss_mib(os.getsid(process.pid)), 1),
        }
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--per-batch", type=int, default=100)
    p.add_argument("--groups", type=int, default=10, help="incidents the alerts fall into")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--settle", type=float, default=5.0, help="seconds to wait after start-up")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for ./musterctl up, e.g. MUSTER_INGEST_URGENT_FIRST=false",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    report = {"meta": {"argv": argv, "cores": os.cpu_count(), "code": ingest._code_state()}}
    report["run"] = figures = run(opts)
    print(
        f"embedded: {figures['alerts']} alerts in {opts.batches} batches: accept "
        f"{figures['accept_alerts_per_s']} alerts/s, end to end {figures['e2e_alerts_per_s']} "
        f"alerts/s ({figures['attached']} attached in {figures['e2e_s']} s); RSS idle "
        f"{figures['rss_idle_mib']} MiB, peak {figures['rss_peak_mib']} MiB, end "
        f"{figures['rss_end_mib']} MiB; answers {figures['statuses']}"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"embedded-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    say(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""What the beat tick costs a worker when there is nothing to do: its CPU, part by part.

    python bench/tick.py [--ticks 200]

Against throwaway PostgreSQL (durable) and Redis, migrated and empty: runs each part of
`muster.tasks.tick` (due escalation steps, the outbox sweep, ended snoozes, heartbeats, ended
silences, requests waiting for a processor, the tick's own heartbeat) `--ticks` times in this
process, then the whole tick, and prints the CPU and wall time of each per tick. The tick runs
twice a second on every installation, busy or not. Not a test: nothing here passes or fails CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

from muster_services import running_services  # noqa: E402


def timed(work, count: int) -> tuple[float, float]:
    work()  # warm up: imports, connections, the first compilation
    c0, w0 = time.thread_time(), time.perf_counter()
    for _ in range(count):
        work()
    return (time.thread_time() - c0) / count * 1000, (time.perf_counter() - w0) / count * 1000


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ticks", type=int, default=200)
    opts = p.parse_args(argv)
    with running_services(durable=True) as services:
        os.environ.update(services.env())
        os.environ.pop("MUSTER_TEST_SERVICES", None)
        os.environ.setdefault("SECRET_KEY", "bench-tick-" + os.urandom(24).hex())
        os.environ.setdefault("DEBUG", "0")
        subprocess.run(
            [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            check=True,
        )
        os.environ["DJANGO_SETTINGS_MODULE"] = "muster.settings"
        import django

        django.setup()
        from alerts.heartbeats import check_heartbeats
        from alerts.pending import kick_if_stuck
        from alerts.silencing import refire_unsilenced
        from incidents.services import retrigger_due_incidents
        from muster import tasks
        from oncall.escalation import run_due_escalations
        from oncall.sweep import sweep_outbox

        parts = [
            run_due_escalations,
            sweep_outbox,
            retrigger_due_incidents,
            check_heartbeats,
            refire_unsilenced,
            kick_if_stuck,
            tasks.record_tick,
        ]
        figures = {part.__name__: timed(part, opts.ticks) for part in parts}
        figures["the whole tick"] = timed(tasks.tick, opts.ticks)
    for name, (cpu, wall) in figures.items():
        print(f"{name:<26} {cpu:6.2f} ms CPU {wall:6.2f} ms wall per tick ({opts.ticks} ticks)")
    cpu = figures["the whole tick"][0]
    print(f"twice a second: {2 * cpu / 10:.1f}% of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

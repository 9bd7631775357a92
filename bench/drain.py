"""How fast a Celery worker alone turns stored alerts into incidents: the drain after a storm.

    python bench/drain.py [--alerts 3000] [--connections 16] [--worker-processes 1]

bench/ingest.py's end-to-end figure mixes the worker's speed with the web tier's (they share the
CPU while the storm lasts, and a faster accept leaves a longer backlog). This isolates the
worker: with no worker running, it accepts `--alerts` single Alertmanager alerts through
Django's test client (the real view and accept, in this process; 4 groups per connection, as
bench/ingest.py sends them), then starts a real worker (`--pool threads --concurrency 4`, as
deploy/ runs it) and times until every alert is attached to its incident. It prints the drain
rate and the worker's CPU per alert (all processes' with `--worker-processes N`, each a worker
of 4 threads, and MUSTER_INGEST_LANES=N). Not a test: nothing here passes or fails CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

from ingest import add_worker_processes_option  # noqa: E402
from payloads import Shape, request_body  # noqa: E402

from muster_services import running_services  # noqa: E402

# As deploy/ runs it: a thread pool (prefork closes psycopg's pool per task).
WORKER_ARGS = ["-A", "muster", "worker", "-l", "WARNING", "--pool", "threads", "--concurrency", "4"]


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time (user + system) a process has used, children not counted; or one of its
    threads' (`thread`: its id; the main thread's is the process id)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = open(path).read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SPY_OUTPUT = BENCH / "results" / "pyspy-drain.txt"


def start_py_spy(pid: int, seconds: float) -> subprocess.Popen:
    SPY_OUTPUT.parent.mkdir(exist_ok=True)
    argv = [str(VENV_PYTHON.parent / "py-spy"), "record", "--pid", str(pid), "--duration"]
    argv += [str(max(1, int(seconds))), "--rate", "97", "--format", "raw", "--gil"]
    argv += ["--nonblocking", "--output", str(SPY_OUTPUT)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_functions(lines: list[str], count: int = 25) -> str:
    """The functions with the most samples, inclusive (in the stack) and exclusive (on top)."""
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        total += int(samples)
        exclusive[frames[-1]] += int(samples)
        for frame in set(frames):
            inclusive[frame] += int(samples)
    out = [f"{total} samples; inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(count)]
    out.append("exclusive:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in exclusive.most_common(count)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alerts", type=int, default=3000)
    p.add_argument("--connections", type=int, default=16, help="senders the alerts come from")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    add_worker_processes_option(p)
    p.add_argument(
        "--py-spy",
        metavar="SECONDS",
        type=float,
        default=0,
        help="record the worker's stacks for this long, from the first alert drained (the"
        " thread holding the GIL: CPU, not waits); write them to bench/results/pyspy-drain.txt"
        " and print the top functions",
    )
    opts = p.parse_args(argv)
    with running_services(durable=True) as services:
        env = {
            **services.env(),
            "SECRET_KEY": "bench-drain-" + os.urandom(32).hex(),
            "ALLOWED_HOSTS": "testserver",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "MUSTER_DATA_DIR": tempfile.mkdtemp(prefix="muster-drain-"),
            "DJANGO_SETTINGS_MODULE": "muster.settings",
            "MUSTER_INGEST_LANES": str(opts.worker_processes),
        }
        os.environ.update(env)
        os.environ.pop("MUSTER_TEST_SERVICES", None)
        migrate = [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=ROOT, check=True)
        import django

        django.setup()
        from django.test import Client

        from alerts.models import Alert, Integration, Kind
        from incidents.models import Incident, Service

        service, _ = Service.objects.get_or_create(name="bench")
        integration, _ = Integration.objects.get_or_create(
            name="bench-alertmanager", defaults={"kind": Kind.ALERTMANAGER, "service": service}
        )
        client = Client()
        shapes = [
            Shape("alertmanager", 1, 0, f"d{k}", f"d{k}", 4, 0) for k in range(opts.connections)
        ]
        started = time.perf_counter()
        for i in range(opts.alerts):
            shape = shapes[i % len(shapes)]
            r = client.post(
                integration.ingest_path,
                data=request_body(shape, 0, i // len(shapes)),
                content_type="application/json",
            )
            assert r.status_code == 200, (r.status_code, r.content[:300])
        accepted_s = time.perf_counter() - started
        workers = [
            subprocess.Popen(
                [str(VENV_PYTHON.parent / "celery"), *WORKER_ARGS, "-n", f"bench-drain-{i}@%h"],
                cwd=ROOT,
                env=dict(os.environ),
            )
            for i in range(opts.worker_processes)
        ]
        worker = workers[0]
        spy = None
        try:
            started = time.perf_counter()
            done = 0
            while time.perf_counter() - started < opts.timeout:
                done = Alert.objects.filter(incident__isnull=False).count()
                if done >= opts.alerts:
                    break
                if opts.py_spy and spy is None and done:
                    # From the first alert drained: the worker's start-up (imports) left out.
                    spy = start_py_spy(worker.pid, opts.py_spy)
                time.sleep(0.1)
            drained_s = time.perf_counter() - started
            cpu = sum(cpu_seconds(w.pid) for w in workers)
            # Celery's consumer (each process's main thread), not tasks
            consumer_cpu = sum(cpu_seconds(w.pid, w.pid) for w in workers)
            incidents = Incident.objects.count()
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
    if spy is not None:
        spy.wait(opts.py_spy + 30)
        print(top_functions(SPY_OUTPUT.read_text().splitlines()))
    print(
        f"accepted {opts.alerts} alerts in {accepted_s:.1f} s (no worker running);"
        f" {incidents} incidents"
    )
    print(
        f"drained {done} in {drained_s:.1f} s (worker start included): {done / drained_s:.0f}"
        f" alerts/s; worker CPU {cpu:.1f} s, {1000 * cpu / max(done, 1):.2f} ms per alert"
        f" (Celery's consumer, the main thread: {consumer_cpu:.1f} s; the rest is tasks)"
    )
    return 0 if done >= opts.alerts else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Fold py-spy's raw (collapsed) stacks of server workers into where the CPU went.

    python bench/pyspy_summary.py bench/results/pyspy-*.txt

bench/ingest.py --py-spy records each server worker during the closed-loop runs, with --idle:
wall-clock samples, so waits on PostgreSQL count (py-spy's own idle detection does not work on
every kernel, and a wall-clock view is what a request's latency is made of). Two views:

- exclusive: each sample goes to the first layer found walking from the innermost frame out
  (the database driver, JSON, the parser, the ORM, Muster's own code, Django's request
  handling, the HTTP server), so the shares add up to 100%;
- inclusive: the share of samples under each step of the ingest path.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# (layer, regex on a frame "function (file:line)"), first match from the innermost frame out.
LAYERS = [
    ("idle: worker waiting for the next request", r"^SyncWorker\.wait \(gunicorn/"),
    ("psycopg: send/receive, waits on PostgreSQL", r"\(psycopg(_pool|_binary)?/"),
    ("JSON encode/decode", r"\(json/"),
    ("parser (alerts/sources)", r"\(alerts/sources/"),
    ("Django ORM: query building, model instances", r"\(django/db/"),
    ("Muster code, own lines (alerts/, incidents/)", r"\((alerts|incidents|accounts)/"),
    ("prometheus_client", r"\(prometheus_client/"),
    ("Django request handling, middleware, URLs", r"\((django|whitenoise|asgiref)/"),
    ("HTTP server (gunicorn/daphne/uvicorn/twisted)", r"\((gunicorn|daphne|uvicorn|twisted)/"),
]

STEPS = [
    # The request path of a granian worker (bench/ingest.py --py-spy): the view accepts and
    # stores; processing (upsert, incidents, timeline) runs in the Celery worker.
    ("integration_ingest (the view)", r"^integration_ingest \(alerts/ingest\.py"),
    ("read_body", r"^read_body \(alerts/admission\.py"),
    ("decode_json", r"^decode_json \(alerts/decoding\.py"),
    ("parser", r"^parse \(alerts/sources/"),
    ("accept_by_token (INSERT … SELECT)", r"^accept_by_token \(alerts/pending\.py"),
    ("accept (a known integration)", r"^accept \(alerts/pending\.py"),
    ("kick (the processor's debounce key)", r"^kick \(alerts/pending\.py"),
    ("commit", r"^BaseDatabaseWrapper\.commit \("),
    ("psycopg, anywhere", r"\(psycopg(_binary)?/"),
]


def parse(lines) -> list[tuple[list[str], int]]:
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        stacks.append((stack.split(";"), n))
    return stacks


# psycopg_pool's maintenance threads mostly sit waiting on their queue, which py-spy cannot
# always tell from work: their samples are counted apart, not in the shares.
BACKGROUND = re.compile(r"^(ConnectionPool\.worker|Scheduler\.run) \(psycopg_pool/")


def summarize(stacks: list[tuple[list[str], int]]) -> dict:
    background = sum(n for frames, n in stacks if any(BACKGROUND.search(f) for f in frames))
    stacks = [(f, n) for f, n in stacks if not any(BACKGROUND.search(x) for x in f)]
    total = sum(n for _, n in stacks)
    layers: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    compiled = [(name, re.compile(rx)) for name, rx in LAYERS]
    step_rx = [(name, re.compile(rx)) for name, rx in STEPS]
    for frames, n in stacks:
        for frame in reversed(frames):
            layer = next((name for name, rx in compiled if rx.search(frame)), None)
            if layer:
                layers[layer] += n
                break
        else:
            layers["other (stdlib, interpreter)"] += n
        seen = set()
        for frame in frames:
            for name, rx in step_rx:
                if name not in seen and rx.search(frame):
                    seen.add(name)
                    steps[name] += n
    pct = (lambda c: {k: round(100 * v / total, 1) for k, v in c.most_common()}) if total else dict
    return {
        "samples": total,
        "pool_thread_samples_left_out": background,
        "exclusive_percent": pct(layers),
        "inclusive_percent": pct(steps),
    }


def render(summary: dict) -> str:
    out = [
        f"py-spy, {summary['samples']} wall-clock samples of the server's workers"
        f" ({summary['pool_thread_samples_left_out']} of psycopg_pool's threads left out)"
    ]
    out.append("  exclusive (innermost layer):")
    out += [f"    {v:5.1f}%  {k}" for k, v in summary["exclusive_percent"].items()]
    out.append("  inclusive (under this step):")
    out += [f"    {v:5.1f}%  {k}" for k, v in summary["inclusive_percent"].items()]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    stacks = []
    for name in argv:
        stacks += parse(Path(name).read_text().splitlines())
    print(render(summarize(stacks)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

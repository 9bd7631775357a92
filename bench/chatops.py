"""ChatOps benchmark: Slack's slash command round trip, and the chat outbox in a storm, against
the production shape on loopback (granian web tier, a Celery worker and beat, throwaway
PostgreSQL and Redis) and the Slack double (tests/fakes/slack.py, in this process).

    python bench/chatops.py               # both scenarios, ~3 min
    python bench/chatops.py --scenarios ack --acks 100
    python bench/chatops.py --quick       # a smoke test, not figures

1. `ack`: `/muster ack <N>` as Slack posts it (signed, form-encoded) to /slack/commands/, one
   at a time, each for a triggered incident of its own; the round trip is from just before the
   request is written to the moment the Slack double has the answer at the command's
   `response_url` (polled every millisecond): request → "Working on it…" → the worker runs the
   verb (the person found with `users.info`, cached after the first) → the answer (`in_channel`:
   an ack changed the incident, so the channel sees it; a refusal would be `ephemeral`).
   Target (issue 14): p99 ≤ 300 ms.
2. `storm`: `--storm` incidents open at once (one generic alert each, sent by 8 threads) on a
   service with a channel per incident in Slack and a shared channel. The double enforces
   Slack's tiers: conversations.create 20 a minute, chat.postMessage one a second per channel
   (429 with Retry-After past them). Measured: the time from each incident's creation to its
   opening story reaching Slack (its shared channel while its own channel waits; the story is
   posted again when its channel is ready), channels made in the window, duplicates (one
   incident's opening story twice in one channel, which is what an outbox post delivered twice
   shows: must be 0), and
   order per channel (the outbox's posts of each channel reach Slack in the order they were
   written: must hold). Target: every opening post within 60 s.

Prints a table; JSON goes to bench/results/ (git-ignored). Not a test: nothing here passes or
fails CI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import ingest  # noqa: E402  (re-runs this script under .venv's Python)
import paging  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
from ingest import RESULTS, ROOT, VENV_PYTHON  # noqa: E402

from muster_services import free_port, running_services  # noqa: E402
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack  # noqa: E402
from tests.helpers.slack import command_form, form_body, signature  # noqa: E402

SIGNING_SECRET = "bench-signing-" + os.urandom(8).hex()
SHARED = "C0SHARED"
BENCH_SLACK_USER = "U0BENCH"
EMAIL = "bench@example.com"
TARGET_ACK_P99_MS = 300
TARGET_STORM_S = 60
_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"chatops [{time.monotonic() - _T0:5.1f}s]: {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def slash(port: int, text: str, response_url: str) -> int:
    body = form_body(command_form(text, response_url, user_id=BENCH_SLACK_USER))
    stamp = int(time.time())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/commands/",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(stamp),
            "X-Slack-Signature": signature(body, stamp, SIGNING_SECRET),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.status


def wait_for_idle_worker(redis_url: str, timeout: float = 120) -> float:
    """Wait until the worker has drained its queues (the setup's incidents are followed by
    tasks of their own); return how long that took."""
    broker = redis.Redis.from_url(redis_url)
    began = time.monotonic()
    quiet = 0
    while quiet < 5 and time.monotonic() - began < timeout:
        quiet = quiet + 1 if sum(broker.llen(q) for q in ("paging", "celery", "bot")) == 0 else 0
        time.sleep(0.2)
    return time.monotonic() - began


def ack_round_trips(port: int, fake: FakeSlack, numbers: list[int], warm: int) -> dict:
    """The round trip of `/muster ack N` for each of `numbers`; the first `warm` warm the
    worker's threads up (their database connections, the person looked up with users.info)
    and are reported apart."""
    times, accepted, errors = [], [], 0
    for number in numbers:
        url = fake.response_url()
        began = time.perf_counter()
        if slash(port, f"ack {number}", url) != 200:
            errors += 1
            continue
        accepted.append((time.perf_counter() - began) * 1000)
        deadline = began + 10
        while not fake.answers(url) and time.perf_counter() < deadline:
            time.sleep(0.001)
        if not fake.answers(url):
            errors += 1
            continue
        times.append((time.perf_counter() - began) * 1000)
        if "Acknowledged" not in json.dumps(fake.answers(url)):
            errors += 1
    cold, times = times[:warm], times[warm:]
    return {
        "acks": len(numbers),
        "warm_up": warm,
        "warm_up_ms": [round(t, 1) for t in cold],
        "answered": len(times) + len(cold),
        "errors": errors,
        "accepted_p50_ms": round(statistics.median(accepted), 1) if accepted else None,
        "accepted_p99_ms": round(pct(accepted, 99), 1) if accepted else None,
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "p99_ms": round(pct(times, 99), 1) if times else None,
        "max_ms": round(max(times), 1) if times else None,
    }


def storm(port: int, fake: FakeSlack, path: str, count: int, wait: float, dsn: str) -> dict:
    began = time.time()
    tags = [f"chat-storm-{k}" for k in range(count)]

    def send(part: list[str]) -> None:
        for tag in part:
            paging._post(port, path, paging.new_alert("generic", tag))

    threads = [threading.Thread(target=send, args=(tags[k::8],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_s = time.time() - began
    say(f"storm: {count} alerts sent in {sent_s:.1f}s; waiting for the openings in Slack")
    with psycopg.connect(dsn, autocommit=True) as conn:
        opened = dict(
            conn.execute(
                "SELECT number, extract(epoch FROM i.created_at) FROM incidents_incident i "
                "JOIN incidents_service s ON s.id = i.service_id WHERE s.name = 'storm'"
            ).fetchall()
        )
        deadline = time.time() + wait
        while time.time() < deadline:
            first = first_openings(fake)
            if len(opened) >= count and all(n in first for n in opened):
                break
            time.sleep(0.5)
            if len(opened) < count:
                opened = dict(
                    conn.execute(
                        "SELECT number, extract(epoch FROM i.created_at) FROM incidents_incident i "
                        "JOIN incidents_service s ON s.id = i.service_id "
                        "WHERE s.name = 'storm'"
                    ).fetchall()
                )
        window_s = time.time() - began
        first = first_openings(fake)
        delays = [first[n][0] - float(t) for n, t in opened.items() if n in first]
        where = Counter("shared" if first[n][1] == SHARED else "own" for n in opened if n in first)
        posts = conn.execute(
            "SELECT target, remote_id, state FROM warroom_chatpost WHERE platform = 'slack' "
            "ORDER BY id"
        ).fetchall()
        channels = Counter(
            state
            for (state,) in conn.execute(
                "SELECT state FROM warroom_chatchannel WHERE platform = 'slack'"
            ).fetchall()
        )
    return {
        "incidents": len(opened),
        "sent_s": round(sent_s, 1),
        "window_s": round(window_s, 1),
        "openings_delivered": len(delays),
        "openings_missing": len(opened) - len(delays),
        "opening_p50_s": round(statistics.median(delays), 1) if delays else None,
        "opening_max_s": round(max(delays), 1) if delays else None,
        "first_in": dict(where),
        "duplicates": duplicates(fake),
        "order_kept": order_kept(posts),
        "post_states": dict(Counter(state for _, _, state in posts)),
        "channels": dict(channels),
        "slack_calls": dict(Counter(call.method for call in fake.calls)),
    }


def openings_in(post) -> list[int]:
    """The incidents whose opening story a posted message carries (its buttons' block)."""
    return [
        int(b["block_id"].rsplit("_", 1)[1])
        for b in post.blocks or []
        if b.get("type") == "actions" and str(b.get("block_id", "")).startswith("muster_incident_")
    ]


def posted(fake: FakeSlack) -> list:
    """The messages Slack took (not the calls it refused with 429), in the order taken."""
    return [p for p in fake.posts if not p.ephemeral]


def first_openings(fake: FakeSlack) -> dict[int, tuple[float, str]]:
    """Each incident's first opening story: when Slack took it (its ts), and where."""
    first: dict[int, tuple[float, str]] = {}
    for post in posted(fake):
        for number in openings_in(post):
            first.setdefault(number, (float(post.ts), post.channel))
    return first


def duplicates(fake: FakeSlack) -> int:
    seen = Counter((number, post.channel) for post in posted(fake) for number in openings_in(post))
    return sum(n - 1 for n in seen.values() if n > 1)


def order_kept(posts: list[tuple[str, str, str]]) -> bool:
    """Whether each channel's sent posts have Slack timestamps in the order they were written."""
    by_channel: dict[str, list[float]] = defaultdict(list)
    for target, remote_id, state in posts:
        if state == "sent" and remote_id:
            by_channel[target].append(float(remote_id))
    return all(ts == sorted(ts) for ts in by_channel.values())


def render(report: dict) -> str:
    lines = ["", "ChatOps (Slack double, production shape on loopback)"]
    if "ack" in report:
        a = report["ack"]
        lines.append(
            f"  /muster ack round trip: p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms, max "
            f"{a['max_ms']} ms over {a['answered'] - a['warm_up']} after {a['warm_up']} to warm up "
            f"{a['warm_up_ms']} (target p99 ≤ "
            f"{TARGET_ACK_P99_MS} ms); errors {a['errors']}",
        )
        lines.append(
            f'    of which "Working on it…" answered after p50 {a["accepted_p50_ms"]} ms, '
            f"p99 {a['accepted_p99_ms']} ms"
        )
    if "storm" in report:
        s = report["storm"]
        lines += [
            f"  storm: {s['incidents']} incidents (alerts sent in {s['sent_s']} s); openings "
            f"delivered {s['openings_delivered']}, missing {s['openings_missing']}",
            f"    opening in Slack after p50 {s['opening_p50_s']} s, max {s['opening_max_s']} s "
            f"(target ≤ {TARGET_STORM_S} s); first in {s['first_in']}",
            f"    duplicates {s['duplicates']}, order kept per channel: {s['order_kept']}; "
            f"channels {s['channels']}; posts {s['post_states']}",
            f"    Slack calls {s['slack_calls']}",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke test: 10 acks, 20 incidents")
    p.add_argument("--acks", type=int, default=108)
    p.add_argument(
        "--warm-up", type=int, default=8, help="first acks, reported apart (cold threads)"
    )
    p.add_argument("--storm", type=int, default=200, help="incidents opening at once")
    p.add_argument("--storm-wait", type=float, default=120.0, help="seconds to wait, at most")
    p.add_argument("--scenarios", type=lambda v: set(v.split(",")), default={"ack", "storm"})
    p.add_argument("--web-workers", type=int, default=3)
    ingest.add_deployment_options(p)
    p.add_argument("--pool", default="threads")
    p.add_argument("--concurrency", type=int, default=4)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.acks, opts.warm_up, opts.storm, opts.storm_wait = 12, 2, 20, 60.0
    return opts


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    report: dict = {"meta": {"argv": argv, "cores": os.cpu_count()}}
    report["meta"]["loadavg_at_start"] = os.getloadavg()
    with running_services(durable=not opts.fast_db) as services, FakeSlack() as fake:
        fake.add_user(BENCH_SLACK_USER, EMAIL)
        logdir = Path(tempfile.mkdtemp(prefix="muster-chatops-"))
        port = free_port()
        env = paging.stack_env(services, logdir, port, rate_limited=False)
        env.update(
            SLACK_BOT_TOKEN=DEFAULT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_BASE_URL=fake.api_url,
        )
        paging.migrate(env)

        def create_data() -> dict:
            return json.loads(
                paging.subprocess.run(
                    [
                        *(str(VENV_PYTHON), str(BENCH / "chatops_setup.py"), "setup"),
                        *("--acks", str(opts.acks), "--email", EMAIL, "--shared", SHARED),
                    ],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.splitlines()[-1]
            )

        say("starting the web tier, the Celery worker and beat")
        with paging.running_stack(opts, env, logdir, port, create_data) as (procs, data):
            if "ack" in opts.scenarios:
                waited = wait_for_idle_worker(services.redis_url)
                say(f"the worker's queues drained after {waited:.1f}s")
                say(f"ack: {opts.acks} slash commands, one at a time")
                report["ack"] = ack_round_trips(port, fake, data["acks"], opts.warm_up)
            if "storm" in opts.scenarios:
                report["storm"] = storm(
                    port,
                    fake,
                    data["storm_path"],
                    opts.storm,
                    opts.storm_wait,
                    services.database_url,
                )
            report["log_errors"] = [
                e
                for proc in procs.values()
                for e in paging.error_blocks(proc.log.read_text(errors="replace"))
            ]
    report["meta"]["loadavg_at_end"] = os.getloadavg()
    report["meta"]["code"] = ingest._code_state()
    print(render(report))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"chatops-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    say(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

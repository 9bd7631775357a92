"""War-room benchmark: real websocket clients against a real daphne on loopback.

    python bench/warroom.py                    # both channel layers, ~3 min
    python bench/warroom.py --layers pubsub    # one layer
    python bench/warroom.py --quick            # short runs: a smoke test, not figures

It starts throwaway PostgreSQL and Redis (muster_services), migrates, creates people (API
tokens), incidents and their rooms (bench/warroom_setup.py), starts daphne
(`muster.asgi:application`) for each channel layer (MUSTER_CHANNEL_LAYER: "pubsub", Redis
pub/sub; "core", channels_redis' list-based layer), and drives it with `websockets` clients in
this process (asyncio), speaking the war rooms' protocol (docs/api/war-rooms.md):

1. one room, 500 clients: one message a second; latency from the `say` leaving the sender to
   the LAST of the 500 clients receiving it, p50/p99 over the messages;
2. 200 rooms of 5 clients: one message a second in every room; the same last-client latency;
3. the `ack` round trip: in 50 of those rooms a client types `/ack`; from the keystroke to
   every client of the room having seen the incident's state change (the `incident` event, or
   the bot's reply when no event comes);
4. 1,000 clients reconnecting at once: all 200×5 drop, messages keep coming in every room
   (through one extra connection per room), all reconnect at the same moment with
   `hello after=<last id seen>`; every client must then hold every message of its room: lost
   = messages some client never got.

Targets (issue 4): last-client p99 ≤ 200 ms, ack round trip p99 ≤ 150 ms, nothing lost.
Figures print as a table; JSON goes to bench/results/ (git-ignored). Not a test: nothing here
passes or fails CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import InvalidHandshake  # noqa: E402

from muster_services import free_port, running_services  # noqa: E402

RESULTS = BENCH / "results"
DAPHNE = str(VENV_PYTHON.parent / "daphne")


def say(message: str) -> None:
    print(f"warroom: {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- one client ------------------------------------------------------------------------------


@dataclass
class Client:
    """A websocket client in a room: what it received, and when."""

    url: str
    token: str
    room: int
    ws: ClientConnection | None = None
    seen: dict[int, float] = field(default_factory=dict)  # message id -> perf_counter at receipt
    incident_status: dict[str, float] = field(default_factory=dict)  # status -> first seen
    replies: dict[int, float] = field(default_factory=dict)  # reply_to -> seen
    echoes: dict[str, int] = field(default_factory=dict)  # nonce -> message id
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task | None = None
    errors: int = 0
    retries: int = 0

    @property
    def last_id(self) -> int | None:
        return max(self.seen) if self.seen else None

    async def open(self, attempts: int = 12) -> None:
        """Connect and say hello; like a real client, retry with jittered backoff."""
        self.ready = asyncio.Event()
        for attempt in range(attempts):
            try:
                self.ws = await connect(
                    f"{self.url}/ws/rooms/{self.room}/",
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=20,
                    ping_interval=None,
                    max_queue=None,
                )
                break
            except (OSError, TimeoutError, InvalidHandshake):
                if attempt == attempts - 1:
                    raise
                self.retries += 1
                await asyncio.sleep(min(4.0, 0.1 * 2**attempt) * (0.5 + random.random()))
        self.reader = asyncio.create_task(self.read())
        await self.ws.send(json.dumps({"type": "hello", "after": self.last_id}))

    async def read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                now = time.perf_counter()
                event = json.loads(frame)
                kind = event.get("type")
                if kind == "message":
                    message = event["message"]
                    self.seen.setdefault(message["id"], now)
                    if event.get("nonce"):
                        self.echoes[event["nonce"]] = message["id"]
                    if message.get("reply_to"):
                        self.replies.setdefault(message["reply_to"], now)
                elif kind == "incident":
                    self.incident_status.setdefault(event["incident"]["status"], now)
                elif kind == "ready":
                    self.ready.set()
                elif kind == "error":
                    self.errors += 1

    async def say(self, body: str, nonce: str) -> float:
        assert self.ws is not None
        sent = time.perf_counter()
        await self.ws.send(json.dumps({"type": "say", "body": body, "nonce": nonce}))
        return sent

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(BaseException):
                await self.reader


async def open_all(clients: list[Client], batch: int = 100) -> None:
    for start in range(0, len(clients), batch):
        await asyncio.gather(*(c.open() for c in clients[start : start + batch]))
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), timeout=120)


async def wait_echo(client: Client, nonce: str, timeout: float = 10.0) -> int | None:
    deadline = time.perf_counter() + timeout
    while nonce not in client.echoes and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    return client.echoes.get(nonce)


# --- scenarios -------------------------------------------------------------------------------


async def fan_out(rooms: dict[int, list[Client]], seconds: float, tag: str) -> dict:
    """One message a second in every room; last-client latency per message."""
    sent: list[tuple[int, str, float]] = []  # room, nonce, sent at

    async def sender(room: int, members: list[Client], offset: float) -> None:
        await asyncio.sleep(offset)
        for k in range(int(seconds)):
            nonce = f"{tag}-{room}-{k}"
            sent.append((room, nonce, await members[0].say(f"{tag} message {k}", nonce)))
            await asyncio.sleep(1.0)

    count = len(rooms)
    await asyncio.gather(
        *(sender(room, members, i / count) for i, (room, members) in enumerate(rooms.items()))
    )
    await asyncio.sleep(2.0)  # let the last messages arrive
    latencies, missing = [], 0
    for room, nonce, at in sent:
        members = rooms[room]
        message_id = members[0].echoes.get(nonce)
        if message_id is None:
            missing += len(members)
            continue
        got = [c.seen.get(message_id) for c in members]
        missing += sum(1 for g in got if g is None)
        arrived = [g for g in got if g is not None]
        if arrived:
            latencies.append((max(arrived) - at) * 1000)
    return {
        "messages": len(sent),
        "deliveries": sum(len(rooms[r]) for r, _, _ in sent),
        "last_client_p50_ms": pct(latencies, 0.5),
        "last_client_p99_ms": pct(latencies, 0.99),
        "last_client_max_ms": max(latencies, default=float("nan")),
        "missing_deliveries": missing,
    }


async def ack_round_trips(rooms: dict[int, list[Client]]) -> dict:
    """A client of each room types /ack; until every client saw the state change."""
    typed: list[tuple[int, float, str]] = []

    async def ack(room: int, members: list[Client], offset: float) -> None:
        await asyncio.sleep(offset)
        nonce = f"ack-{room}"
        typed.append((room, await members[-1].say("/ack", nonce), nonce))

    count = len(rooms)
    await asyncio.gather(*(ack(r, m, 2.0 * i / count) for i, (r, m) in enumerate(rooms.items())))
    await asyncio.sleep(3.0)
    via_event, via_reply, missing = [], [], 0
    for room, at, nonce in typed:
        members = rooms[room]
        events = [c.incident_status.get("acknowledged") for c in members]
        if all(e is not None for e in events):
            via_event.append((max(events) - at) * 1000)
            continue
        command_id = members[-1].echoes.get(nonce)
        replies = [c.replies.get(command_id) for c in members] if command_id else [None]
        if all(r is not None for r in replies):
            via_reply.append((max(replies) - at) * 1000)
        else:
            missing += 1
    chosen = via_event or via_reply
    return {
        "acks": len(typed),
        "seen_by": "incident event" if via_event else "bot reply",
        "round_trip_p50_ms": pct(chosen, 0.5),
        "round_trip_p99_ms": pct(chosen, 0.99),
        "not_seen_by_everyone": missing,
    }


async def reconnect_storm(rooms: dict[int, list[Client]], posters: dict[int, Client]) -> dict:
    """Everyone drops; messages keep coming; everyone reconnects at once and catches up."""
    clients = [c for members in rooms.values() for c in members]
    await asyncio.gather(*(c.close() for c in clients))
    nonces = []
    for k in range(3):  # three messages per room while nobody listens
        for room, poster in posters.items():
            nonce = f"storm-{room}-{k}"
            await poster.say(f"while you were away {k}", nonce)
            nonces.append((room, nonce))
        await asyncio.sleep(0.2)
    started = time.perf_counter()
    await asyncio.gather(*(c.open() for c in clients), return_exceptions=True)
    opened = sum(1 for c in clients if c.ws is not None and c.reader and not c.reader.done())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), timeout=120)
    ready_s = time.perf_counter() - started
    for k in range(2):  # and a couple after, to the reconnected clients
        for room, poster in posters.items():
            nonce = f"after-{room}-{k}"
            await poster.say(f"welcome back {k}", nonce)
            nonces.append((room, nonce))
        await asyncio.sleep(0.5)
    await asyncio.sleep(3.0)
    lost, expected = 0, 0
    for room, poster in posters.items():
        ids = set(poster.seen)  # the poster never dropped: it saw every message of the room
        for client in rooms[room]:
            expected += len(ids)
            lost += len(ids - set(client.seen))
    return {
        "clients": len(clients),
        "retries": sum(c.retries for c in clients),
        "reconnected": opened,
        "all_ready_s": round(ready_s, 2),
        "messages_expected": expected,
        "lost": lost,
    }


# --- the run ---------------------------------------------------------------------------------


def server_argv(server: str, port: int) -> list[str]:
    if server == "daphne":
        return [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "-v", "0", "muster.asgi:application"]
    # uvicorn is not a dependency: `.venv/bin/pip install 'uvicorn[standard]'` to measure it.
    return [
        str(VENV_PYTHON.parent / "uvicorn"),
        "muster.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def start_server(server: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            server_argv(server, port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server} exited:\n{log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r,
        ):
            if r.status == 200:
                return proc
        time.sleep(0.1)
    raise RuntimeError(f"{server} did not come up")


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def measure(urls: list[str], world: dict, opts) -> dict:
    tokens = world["tokens"]
    rooms = world["rooms"]
    out: dict = {}
    seconds = 5 if opts.quick else opts.seconds

    say("one room, 500 clients")
    big = rooms[0]["room"]
    members = [
        Client(urls[i % len(urls)], tokens[i % len(tokens)], big) for i in range(opts.big_room)
    ]
    await open_all(members)
    out["one_room"] = await fan_out({big: members}, seconds, "big")
    await asyncio.gather(*(c.close() for c in members))

    say(f"{opts.rooms} rooms of 5")
    small = {
        r["room"]: [
            Client(urls[k % len(urls)], tokens[(i * 5 + k) % len(tokens)], r["room"])
            for k in range(5)
        ]
        for i, r in enumerate(rooms[1 : opts.rooms + 1])
    }
    await open_all([c for m in small.values() for c in m])
    out["rooms_of_5"] = await fan_out(small, seconds, "small")

    say("ack round trips")
    out["ack"] = await ack_round_trips(dict(list(small.items())[: opts.acks]))

    say("1,000 clients reconnecting at once")
    posters = {room: Client(urls[0], tokens[-1], room) for room in small}
    await open_all(list(posters.values()))
    out["reconnect"] = await reconnect_storm(small, posters)
    await asyncio.gather(*(c.close() for c in [*posters.values()]))
    await asyncio.gather(*(c.close() for m in small.values() for c in m))
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", default="pubsub,core", help="channel layers: pubsub,core")
    p.add_argument("--servers", default="daphne", help="daphne,uvicorn")
    p.add_argument("--processes", default="1", help="server processes sharing the rooms: 1,2")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of messages per scenario")
    p.add_argument("--big-room", type=int, default=500)
    p.add_argument("--rooms", type=int, default=200)
    p.add_argument("--acks", type=int, default=50)
    p.add_argument("--quick", action="store_true")
    opts = p.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    results = {}
    with running_services() as services, tempfile.TemporaryDirectory() as tmp:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")},
            **services.env(),
            "DJANGO_SETTINGS_MODULE": "muster.settings",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "MUSTER_DATA_DIR": tmp,
        }
        base.pop("MUSTER_TEST_SERVICES", None)
        subprocess.run(
            [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=base,
            check=True,
        )
        configs = [
            (layer, server, int(n))
            for layer in opts.layers.split(",")
            for server in opts.servers.split(",")
            for n in opts.processes.split(",")
        ]
        for layer, server, processes in configs:
            made = subprocess.run(
                [str(VENV_PYTHON), str(BENCH / "warroom_setup.py"), str(opts.rooms + 1), "120"],
                cwd=ROOT,
                env=base,
                check=True,
                capture_output=True,
            )
            world = json.loads(made.stdout.decode().strip().splitlines()[-1])
            env = {**base, "MUSTER_CHANNEL_LAYER": layer}
            name = f"{server}×{processes} {layer}"
            ports = [free_port() for _ in range(processes)]
            say(f"{name} on ports {ports}")
            procs = [
                start_server(server, env, port, Path(tmp) / f"{server}-{layer}-{port}.log")
                for port in ports
            ]
            try:
                urls = [f"ws://127.0.0.1:{port}" for port in ports]
                results[name] = asyncio.run(measure(urls, world, opts))
            except Exception as exc:  # a configuration that falls over is a figure too
                say(f"{name} failed: {exc!r}")
                results[name] = {"failed": repr(exc)}
            finally:
                for proc in procs:
                    stop(proc)
    print_table(results)
    path = RESULTS / f"warroom-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    say(f"wrote {path.relative_to(ROOT)}")
    return 0


def print_table(results: dict) -> None:
    print()
    print(f"{'server':<18} {'scenario':<24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  other")
    for layer, r in results.items():
        if "failed" in r:
            print(f"{layer:<18} failed: {r['failed']}")
            continue
        for name in ("one_room", "rooms_of_5"):
            x = r[name]
            print(
                f"{layer:<18} {name + ' (last client)':<24} {x['last_client_p50_ms']:>8.1f}"
                f" {x['last_client_p99_ms']:>8.1f} {x['last_client_max_ms']:>8.1f}"
                f"  {x['messages']} messages, {x['deliveries']} deliveries,"
                f" missing {x['missing_deliveries']}"
            )
        a = r["ack"]
        print(
            f"{layer:<18} {'ack round trip':<24} {a['round_trip_p50_ms']:>8.1f}"
            f" {a['round_trip_p99_ms']:>8.1f} {'':>8}  {a['acks']} acks, seen by"
            f" {a['seen_by']}, not seen by all {a['not_seen_by_everyone']}"
        )
        s = r["reconnect"]
        print(
            f"{layer:<18} {'reconnect storm':<24} {'':>8} {'':>8} {'':>8}  {s['clients']} clients,"
            f" {s['reconnected']} reconnected ({s['retries']} retries), all ready in"
            f" {s['all_ready_s']} s,"
            f" lost {s['lost']} of {s['messages_expected']}"
        )
    print()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

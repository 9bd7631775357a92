"""A light HTTP/1.1 load generator for bench/ingest.py, run in a process of its own.

    python bench/loadgen.py '{"port": 8000, "path": "/integrations/...", "shape": {...},
                              "slots": 8, "duration": 10, "rate": 500}'

With `rate`, it is open-loop: request n is due at start + n / rate whatever the server does,
and its latency runs from that due time (so a stalled server cannot hide its stall by slowing
the client down: no coordinated omission). Request n goes to slot n % slots as that slot's
request n // slots. Without `rate` it is closed-loop: `slots` connections each send their next
request as soon as the last one is answered. Connections are kept alive where the server allows
it and reopened where it closes them (gunicorn's sync workers close after every response).

It prints one JSON object: per-slot accounting (the same as wrk_ingest.lua's), latency
percentiles, status counts and the CPU time the client itself used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import sys
import time
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payloads import Shape, request_body

HOST = "127.0.0.1"


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.open = True

    @classmethod
    async def connect(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 22)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> int:
        """Send one request and read its whole response; return the status code."""
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                self.open = False
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            await self.reader.readexactly(length)
        else:
            await self.reader.read()
            self.open = False
        if head.startswith(b"HTTP/1.0"):
            self.open = False
        return status

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(Exception):
            self.writer.close()


class Run:
    def __init__(self, spec: dict):
        self.port = int(spec["port"])
        self.path = spec["path"]
        self.shape = Shape(**spec["shape"])
        self.slots = int(spec["slots"])
        self.duration = float(spec["duration"])
        self.rate = spec.get("rate")
        self.max_connections = int(spec.get("connections", 64))
        self.timeout = float(spec.get("timeout", 30))
        self.prefix = (
            f"POST {self.path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            "Content-Type: application/json\r\nUser-Agent: muster-bench\r\n"
        ).encode()
        self.sent = [0] * self.slots
        self.accepted = [0] * self.slots
        self.refused: list[list[str]] = [[] for _ in range(self.slots)]
        self.unanswered: list[list[int]] = [[] for _ in range(self.slots)]
        self.statuses: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.idle: deque[Connection] = deque()
        self.opened = 0
        self.connects = 0
        self.waiters: deque[asyncio.Future] = deque()
        self.background: set[asyncio.Task] = set()
        self.max_outstanding = int(spec.get("max_outstanding", 1000))
        self.overloaded = False
        self.late = 0  # open-loop: requests that could not start on time for want of a connection

    def request_bytes(self, slot: int, i: int) -> bytes:
        body = request_body(self.shape, slot, i)
        return self.prefix + b"Content-Length: %d\r\n\r\n" % len(body) + body

    async def acquire(self) -> Connection:
        if self.idle:
            return self.idle.popleft()
        if self.opened < self.max_connections:
            self.opened += 1
            try:
                self.connects += 1
                return await Connection.connect(self.port)
            except BaseException:
                self.opened -= 1
                raise
        self.late += 1
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: Connection | None) -> None:
        if conn is not None and conn.open:
            if self.waiters:
                self.waiters.popleft().set_result(conn)
            else:
                self.idle.append(conn)
            return
        if conn is not None:
            conn.close()
        self.opened -= 1
        if self.waiters:  # a slot freed: let a waiter open a fresh connection
            waiter = self.waiters.popleft()
            self.opened += 1

            async def reopen() -> None:
                try:
                    self.connects += 1
                    waiter.set_result(await Connection.connect(self.port))
                except Exception as exc:
                    self.opened -= 1
                    waiter.set_exception(exc)

            task = asyncio.ensure_future(reopen())
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    async def one(self, slot: int, i: int, due: float, conn: Connection | None = None) -> None:
        data = self.request_bytes(slot, i)
        self.sent[slot] += 1
        try:
            if conn is None:
                conn = await self.acquire()
            status = await asyncio.wait_for(conn.send(data), self.timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if conn is not None:
                conn.close()
                self.release(conn)
            self.unanswered[slot].append(i)
            self.statuses[type(exc).__name__] += 1
            return
        self.latencies.append(time.perf_counter() - due)
        self.statuses[str(status)] += 1
        if 200 <= status < 300:
            self.accepted[slot] += 1
        else:
            self.refused[slot].append(f"{i}:{status}")
        self.release(conn)

    async def closed_loop(self) -> float:
        start = time.perf_counter()
        deadline = start + self.duration

        async def worker(slot: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                await self.one(slot, i, time.perf_counter())
                i += 1

        self.max_connections = self.slots
        await asyncio.gather(*(worker(s) for s in range(self.slots)))
        return time.perf_counter() - start

    async def open_loop(self) -> float:
        rate = float(self.rate)
        start = time.perf_counter()
        total = int(self.duration * rate)
        tasks = set()
        for n in range(total):
            if len(tasks) > self.max_outstanding:
                self.overloaded = True  # the server fell far behind: stop offering more
                break
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self.one(n % self.slots, n // self.slots, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 5)
        return time.perf_counter() - start

    def report(self, elapsed: float, cpu: float) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 2)

        return {
            "elapsed_s": round(elapsed, 3),
            "requests": len(lat),
            "statuses": dict(self.statuses),
            "latency_ms": {
                "p50": pct(50),
                "p90": pct(90),
                "p99": pct(99),
                "max": round(lat[-1] * 1000, 2) if lat else None,
            },
            "client_cpu_s": round(cpu, 3),
            "connects": self.connects,
            "late_starts": self.late,
            "overloaded": self.overloaded,
            "threads": [
                {
                    "slot": s,
                    "sent": self.sent[s],
                    "accepted": self.accepted[s],
                    "in_flight": -1,
                    "refused": ",".join(self.refused[s]),
                    "unanswered": ",".join(str(i) for i in self.unanswered[s]),
                }
                for s in range(self.slots)
            ],
        }


async def amain(spec: dict) -> dict:
    run = Run(spec)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    elapsed = await (run.open_loop() if run.rate else run.closed_loop())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for conn in run.idle:
        conn.close()
    return run.report(elapsed, usage.ru_utime + usage.ru_stime - cpu0)


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        import uvloop  # optional: a lighter event loop when it is installed

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(amain(spec))), flush=True)


if __name__ == "__main__":
    main()

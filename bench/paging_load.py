"""The paging benchmark's client: open-loop (constant-rate) HTTP, in a process of its own.

    python bench/paging_load.py SPEC.json

SPEC: {"port": 8001, "duration": 25,
       "dup": {"rate": 50, "requests": [[path, body], ...]},     # sent round-robin
       "new": {"rate": 5, "requests": [[path, body, tag], ...]}, # each sent once, in order
       "max_outstanding": 32, "timeout": 10, "new_timeout": 30}

Request n of a stream is due at start + n / rate, whatever the server does (no coordinated
omission): dup latencies run from the due time. At most `max_outstanding` duplicate requests are
in flight (as a sender's own concurrency would bound them); a duplicate due while that many are
outstanding is skipped and counted, so an overloaded server shows as a shortfall in the rate
achieved rather than as an unbounded queue. New-incident requests are never skipped; each is
stamped with `time.time()` right before the request is written (after the connection is open),
and its answer is parsed for the incident number, so the benchmark can follow each one to its page.

gunicorn's sync workers close the connection after every response, so every request opens a
connection of its own (there is nothing to keep alive); `Connection: close` says so up front.
Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import sys
import time
from collections import Counter

HOST = "127.0.0.1"


async def post(port: int, path: str, body: bytes, timeout: float) -> tuple[float, int, bytes]:
    """POST `body`; return (time.time() just before writing, status, response body)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, port, limit=1 << 22), timeout
    )
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"User-Agent: muster-bench-paging\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sent_at = time.time()
        writer.write(head + body)
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head_part, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head_part[9:12]) if len(head_part) >= 12 else 0
    if b"transfer-encoding: chunked" in head_part.lower():
        payload = _dechunk(payload)
    return sent_at, status, payload


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


class Run:
    def __init__(self, spec: dict):
        self.port = int(spec["port"])
        self.duration = float(spec["duration"])
        self.timeout = float(spec.get("timeout", 10))  # a duplicate's
        self.new_timeout = float(
            spec.get("new_timeout", 30)
        )  # a new incident's: we want its number
        self.max_outstanding = int(spec.get("max_outstanding", 32))
        dup = spec.get("dup") or {}
        self.dup_rate = float(dup.get("rate") or 0)
        self.dup_requests = [(p, b.encode()) for p, b in dup.get("requests", [])]
        new = spec.get("new") or {}
        self.new_rate = float(new.get("rate") or 0)
        self.new_requests = [(p, b.encode(), tag) for p, b, tag in new.get("requests", [])]
        self.outstanding = 0  # duplicate requests in flight
        self.dup_answered_at: list[float] = []
        self.skipped = Counter()  # due but not sent: too many requests outstanding
        self.dup_latencies: list[float] = []
        self.dup_statuses: Counter[str] = Counter()
        self.dup_sent = 0
        self.new_records: list[dict] = []
        self.tasks: set[asyncio.Task] = set()

    async def one_dup(self, n: int, due: float) -> None:
        path, body = self.dup_requests[n % len(self.dup_requests)]
        try:
            _, status, _ = await post(self.port, path, body, self.timeout)
            self.dup_statuses[str(status)] += 1
            self.dup_latencies.append(time.perf_counter() - due)
            if 200 <= status < 300:
                self.dup_answered_at.append(time.time())
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            self.dup_statuses[type(exc).__name__] += 1
        finally:
            self.outstanding -= 1

    async def one_new(self, k: int, due_wall: float) -> None:
        path, body, tag = self.new_requests[k]
        record = {"k": k, "tag": tag, "path": path, "due": due_wall}
        try:
            sent_at, status, payload = await post(self.port, path, body, self.new_timeout)
            record.update(sent_at=sent_at, answered_at=time.time(), status=status)
            try:
                # Processing follows the answer; bench/paging.py reads the request's results.
                record.update(request=json.loads(payload)["request"])
            except (ValueError, KeyError, IndexError, TypeError):
                record["error"] = payload[:200].decode(errors="replace")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            record["error"] = type(exc).__name__
        self.new_records.append(record)

    def launch(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stream(self, rate: float, count: int | None, kind: str, start: float) -> None:
        """Launch requests of one stream at `rate` per second from `start` (perf_counter)."""
        if rate <= 0:
            return
        wall0 = time.time() - (time.perf_counter() - start)
        n = 0
        while True:
            due = start + n / rate
            if due - start >= self.duration or (count is not None and n >= count):
                return
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == "dup" and self.outstanding >= self.max_outstanding:
                self.skipped[kind] += 1
            elif kind == "dup":
                self.dup_sent += 1
                self.outstanding += 1
                self.launch(self.one_dup(n, due))
            else:
                self.launch(self.one_new(n, wall0 + (due - start)))
            n += 1

    async def run(self) -> dict:
        start = time.perf_counter() + 0.05
        began = time.time() + 0.05
        await asyncio.gather(
            self.stream(self.dup_rate, None, "dup", start),
            self.stream(self.new_rate, len(self.new_requests), "new", start),
        )
        ended_offering = time.time()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=max(self.timeout, self.new_timeout) + 5)
        return {
            "started_at": began,
            "offered_until": ended_offering,
            "finished_at": time.time(),
            "dup": {
                "offered_rate": self.dup_rate,
                "sent": self.dup_sent,
                "answered": len(self.dup_latencies),
                "accepted_in_window": sum(1 for t in self.dup_answered_at if t <= ended_offering),
                "max_outstanding": self.max_outstanding,
                "statuses": dict(self.dup_statuses),
                "latency_ms": percentiles(self.dup_latencies),
            },
            "new": sorted(self.new_records, key=lambda r: r["k"]),
            "skipped": dict(self.skipped),
        }


def percentiles(values: list[float]) -> dict:
    v = sorted(values)
    if not v:
        return {"p50": None, "p99": None, "max": None}

    def pct(p: float) -> float:
        return round(v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000, 1)

    return {"p50": pct(50), "p90": pct(90), "p99": pct(99), "max": round(v[-1] * 1000, 1)}


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    result = asyncio.run(Run(spec).run())
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    result["client_cpu_s"] = round(
        usage1.ru_utime + usage1.ru_stime - usage0.ru_utime - usage0.ru_stime, 3
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

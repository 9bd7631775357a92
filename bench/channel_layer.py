"""What a send to the channel layer costs from synchronous code (a task, a view).

    python bench/channel_layer.py [--sends 300]

Against throwaway Redis, with the channel layer production uses (channels_redis' pub/sub
layer): CPU and wall time per `group_send` made with `async_to_sync` (a new event loop in a new
thread each time, so a new Redis connection) and with core.live (one loop kept per process).
Not a test: nothing here passes or fails CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT, VENV_PYTHON = project.BENCH, project.ROOT, project.VENV_PYTHON

from muster_services import running_services  # noqa: E402

MESSAGE = {"type": "room.event", "event": {"kind": "message", "body": "disk full on db-1"}}


def timed(send, count: int) -> tuple[float, float]:
    send()  # warm up
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(count):
        send()
    return (time.process_time() - c0) / count * 1000, (time.perf_counter() - w0) / count * 1000


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sends", type=int, default=300)
    opts = p.parse_args(argv)
    with running_services(durable=False) as services:
        os.environ.update(services.env())
        os.environ.pop("MUSTER_TEST_SERVICES", None)
        os.environ.setdefault("SECRET_KEY", "bench-channel-layer-" + os.urandom(24).hex())
        os.environ["DJANGO_SETTINGS_MODULE"] = "muster.settings"
        import django

        django.setup()
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        from core import live

        layer = get_channel_layer()
        print(f"channel layer: {type(layer).__module__}.{type(layer).__name__}")
        figures = {
            "async_to_sync": timed(
                lambda: async_to_sync(layer.group_send)("bench", MESSAGE), opts.sends
            ),
            "core.live": timed(lambda: live.group_send("bench", MESSAGE), opts.sends),
        }
    for name, (cpu, wall) in figures.items():
        print(f"{name:<14} {cpu:6.2f} ms CPU, {wall:6.2f} ms wall per send ({opts.sends} sends)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

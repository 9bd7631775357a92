"""Muster's plain-HTTP tier in production: granian serving `muster.wsgi` (ingest, API, pages).

    python -m muster.webserver

granian parses HTTP in Rust and keeps client connections alive; each worker process runs the
Django app on one thread, with its own psycopg pool. bench/ingest.py measured it against
gunicorn's sync workers on the same box: 1.19 against 1.34 ms of server CPU per ingest request,
and 937 against 757 single-alert requests/s (docs/deploying/topology.md). Websockets do not
come here: nginx sends /ws/ to daphne (`muster.asgi`).

Settings come from the environment:

- `MUSTER_WEB_BIND`: host:port to listen on (default 127.0.0.1:8001);
- `WEB_CONCURRENCY`: worker processes (default 3: on 2 cores, one more than the cores keeps
  them busy while one waits on PostgreSQL);
- `MUSTER_WEB_THREADS`: threads per worker (default 1: more only add GIL contention);
- `LOG_LEVEL`: granian's own log level (requests are logged by nginx);
- `PROMETHEUS_MULTIPROC_DIR`: emptied at start, so /metrics adds up this run's workers only.

SIGHUP replaces the workers gracefully (`systemctl reload`); a worker that dies is respawned.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import django
from django.core.exceptions import ImproperlyConfigured
from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels

WSGI_APP = "muster.wsgi:application"


def bind_address(value: str) -> tuple[str, int]:
    """Split "host:port" (an IPv6 host in brackets) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"MUSTER_WEB_BIND must be host:port, not {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def empty_metrics_dir() -> None:
    """Start with no per-process counter files: they are an earlier run's workers'."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def server(environ: os._Environ | dict[str, str] = os.environ) -> Granian:
    host, port = bind_address(environ.get("MUSTER_WEB_BIND", "127.0.0.1:8001"))
    return Granian(
        WSGI_APP,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        websockets=False,
        workers=int(environ.get("WEB_CONCURRENCY", "3")),
        blocking_threads=int(environ.get("MUSTER_WEB_THREADS", "1")),
        log_level=LogLevels(environ.get("LOG_LEVEL", "warning").lower()),
        respawn_failed_workers=True,
        # On shutdown or reload, a request still running after this long is cut short.
        workers_kill_timeout=20,
    )


def check_delivery_or_exit() -> None:
    """Refuse to serve with a placeholder key or when pages would reach nobody (muster.startup)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")
    django.setup()
    # After django.setup(): the check reads settings and the app registry.
    from muster.startup import check_production

    try:
        check_production()
    except ImproperlyConfigured as exc:
        sys.exit(f"muster.webserver: refusing to start: {exc}")


def main() -> None:
    empty_metrics_dir()  # first: Django's imports create this process's metric files
    check_delivery_or_exit()
    server().serve()


if __name__ == "__main__":
    main()

"""gunicorn settings for Muster's plain-HTTP tier (ingest, API, admin): `muster.wsgi`.

    gunicorn -c deploy/gunicorn.conf.py muster.wsgi:application

Sync workers: each handles one request at a time, with its own psycopg pool (settings.py), so
a worker never waits on another's connection. Websockets do not come here: nginx sends /ws/ to
daphne (`muster.asgi`). Everything can be overridden by environment variables, and command-line
flags override this file (bench/ingest.py passes --bind and --workers).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

bind = os.environ.get("MUSTER_WEB_BIND", "127.0.0.1:8001")
# bench/ingest.py measured 2-4 sync workers on 2 cores; see deploy/README.md. More workers than
# that buy nothing on a CPU-bound box: every worker is busy in Python or waiting on PostgreSQL.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = os.environ.get("MUSTER_WEB_WORKER_CLASS", "sync")
# For gthread workers: threads per worker (they keep client connections alive).
threads = int(os.environ.get("MUSTER_WEB_THREADS", "1"))
# A request that takes longer than this is stuck; its worker is killed and replaced.
timeout = int(os.environ.get("MUSTER_WEB_TIMEOUT", "30"))
graceful_timeout = 20
# Behind nginx: trust X-Forwarded-* only from it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The heartbeat file on tmpfs, so a slow disk cannot get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# nginx logs requests; gunicorn logs only its own troubles.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "warning").lower()
control_socket_disable = True
# Ingest bodies are bounded by MUSTER_INGEST_MAX_BODY_BYTES in the view; headers stay small.
limit_request_line = 8190

# /metrics: with several workers, prometheus_client must add up every worker's counters.
_PROMETHEUS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server) -> None:
    """Start each run with an empty metrics directory (its files are per-process counters)."""
    if _PROMETHEUS_DIR:
        shutil.rmtree(_PROMETHEUS_DIR, ignore_errors=True)
        Path(_PROMETHEUS_DIR).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    """Let a dead worker's live gauges go, keeping its counters."""
    if _PROMETHEUS_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

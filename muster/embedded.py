"""The embedded mode: one process running daphne, a Celery worker and Celery beat.

The worker (thread pool) and beat run in threads beside daphne, on Celery's in-memory broker,
so tasks, the beat tick and websocket broadcasts (in-memory channel layer) all reach each other.
Production runs the same code with each part as its own process.
"""

from __future__ import annotations

import logging
import threading

from celery import beat

from muster.celery import app as celery_app

log = logging.getLogger(__name__)


def start_worker(concurrency: int = 4) -> threading.Thread:
    """Start a Celery worker with a thread pool in a daemon thread."""
    worker = celery_app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname="embedded@muster",
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()
    return thread


def start_beat() -> threading.Thread:
    """Start Celery beat in a daemon thread, keeping its schedule in memory only."""
    service = beat.EmbeddedService(celery_app, thread=True, scheduler_cls="celery.beat:Scheduler")
    service.start()
    return service


def serve(host: str, port: int) -> None:
    """Serve HTTP and websockets with daphne in this (the main) thread until interrupted."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    from muster.asgi import application

    Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
        verbosity=0,
    ).run()

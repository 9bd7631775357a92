"""The embedded mode: one process running daphne, a Celery worker and Celery beat.

The worker (thread pool) and beat run in threads beside daphne, on Celery's in-memory broker,
so tasks, the beat tick and websocket broadcasts (in-memory channel layer) all reach each other.
Production runs the same code with each part as its own process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from celery import beat
from celery.worker import WorkController
from daphne.endpoints import build_endpoint_description_strings

from core import pools
from muster.asgi import application
from muster.celery import app as celery_app

log = logging.getLogger(__name__)

# Once a second the tick is sent, received and run; at INFO that is three lines a second.
ROUTINE_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
STOP_TIMEOUT_SECONDS = 5.0


@dataclass
class Background:
    """The worker and beat running in this process's threads."""

    worker: WorkController
    worker_thread: threading.Thread
    beat: beat._Threaded

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop beat and the worker (running tasks finish), giving up after `timeout`.

        What a task leaves undone is safe: the database is the source of truth and the next
        start's tick picks it up. The threads are daemons, so exit never waits on them; a page
        being handed to its provider (core.pools) ends first, and those waiting are dropped.
        """
        pools.shut_down()
        deadline = time.monotonic() + timeout
        stoppers = [
            threading.Thread(target=stop, name=f"stop-{name}", daemon=True)
            for name, stop in (("beat", self.beat.stop), ("worker", self.worker.stop))
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(max(0.0, deadline - time.monotonic()))
            if stopper.is_alive():
                log.warning("%s did not finish within %.0fs", stopper.name, timeout)
        self.worker_thread.join(max(0.0, deadline - time.monotonic()))


def quiet_routine_logs() -> None:
    """Keep the once-a-second tick out of the console unless LOG_LEVEL asks for DEBUG."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ROUTINE_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def start_worker(concurrency: int = 4) -> tuple[WorkController, threading.Thread]:
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
    return worker, thread


def start_beat() -> beat._Threaded:
    """Start Celery beat in a daemon thread: the leased scheduler of production, on SQLite's
    row, keeping its schedule in memory only."""
    service = beat.EmbeddedService(
        celery_app, thread=True, scheduler_cls="muster.beat:LeasedScheduler"
    )
    service.start()
    return service


def start_background(concurrency: int = 4) -> Background:
    """Start the worker and beat; the caller serves HTTP and stops them afterwards."""
    quiet_routine_logs()
    worker, thread = start_worker(concurrency)
    return Background(worker=worker, worker_thread=thread, beat=start_beat())


def serve(host: str, port: int) -> None:
    """Serve HTTP and websockets with daphne in this (the main) thread until interrupted."""
    # Importing daphne.server installs Twisted's asyncio reactor: only in the process that serves.
    from daphne.server import Server

    Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
        verbosity=0,
    ).run()

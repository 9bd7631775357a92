"""Named crash points for the crash tests: `MUSTER_FAULT=after_claim` kills the worker there.

Real Celery worker processes are SIGKILLed at these points, the way a machine dies: no cleanup,
no exception handlers. Unset (always, in production) each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_claim", "before_send", "after_send", "ingest_before_commit")


def point(name: str) -> None:
    """Die here, at once, if the environment names this point."""
    if os.environ.get("MUSTER_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)

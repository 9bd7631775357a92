"""The project's own app: wires the Celery app and the worker's start-up check."""

from __future__ import annotations

from celery.signals import worker_init
from django.apps import AppConfig


class MusterConfig(AppConfig):
    name = "muster"

    def ready(self) -> None:
        # Importing the Celery app makes it Celery's current app, configured from settings:
        # every Django process (web, management commands, tests) needs that before a task is
        # queued, or `.delay()` would go to Celery's default app (AMQP on localhost).
        import muster.celery  # noqa: F401
        from muster import startup

        # A worker delivers pages: it refuses to start when they would reach nobody.
        worker_init.connect(startup.check_worker, dispatch_uid="muster.check_worker")

from __future__ import annotations

from django.apps import AppConfig


class MusterConfig(AppConfig):
    name = "muster"

    def ready(self) -> None:
        from celery.signals import worker_init

        from muster import startup

        # A worker delivers pages: it refuses to start when they would reach nobody.
        worker_init.connect(startup.check_worker, dispatch_uid="muster.check_worker")

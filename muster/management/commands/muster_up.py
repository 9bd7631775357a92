"""`manage.py muster_up`: migrate, seed a demo on first run, and run everything in one process."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from alerts.models import Integration, Kind
from incidents.models import Service
from muster import embedded

DEMO_ADMIN = "admin"


class Command(BaseCommand):
    help = "Run Muster embedded: daphne, a Celery worker and beat in one process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not create demo data.")

    def handle(self, *args, host: str, port: int, no_demo: bool, **options):
        if not settings.EMBEDDED:
            self.stderr.write(
                "REDIS_URL is set: run daphne, `celery worker` and `celery beat` as separate "
                "processes instead (see deploy/)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready.")
        if not no_demo:
            self._seed_demo(host, port)
        embedded.start_worker()
        embedded.start_beat()
        self.stdout.write(f"Muster is up at http://{host}:{port}/  (Ctrl-C stops it)")
        self.stdout.flush()
        embedded.serve(host, port)

    @transaction.atomic
    def _seed_demo(self, host: str, port: int) -> None:
        base = f"http://{host}:{port}"
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(DEMO_ADMIN, "", password, role=Role.ADMIN)
            self.stdout.write(
                f"Created the demo admin: user {DEMO_ADMIN!r}, password {password!r} "
                "(shown only now)."
            )
        service, _ = Service.objects.get_or_create(
            name="Demo service", defaults={"description": "Created by muster_up."}
        )
        integration, _ = Integration.objects.get_or_create(
            name="Demo Alertmanager", defaults={"kind": Kind.ALERTMANAGER, "service": service}
        )
        generic, _ = Integration.objects.get_or_create(
            name="Demo generic JSON", defaults={"kind": Kind.GENERIC, "service": service}
        )
        self.stdout.write(f"Alertmanager webhook URL: {base}{integration.ingest_path}")
        self.stdout.write(f"Generic JSON URL:         {base}{generic.ingest_path}")
        self.stdout.write(
            "Try: curl -H 'Content-Type: application/json' "
            f'-d \'{{"summary": "Disk full on db-1", "severity": "critical"}}\' '
            f"{base}{generic.ingest_path}"
        )

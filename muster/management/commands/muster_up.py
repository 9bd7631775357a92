"""`manage.py muster_up`: migrate, seed a demo on first run, and run everything in one process."""

from __future__ import annotations

import os
import secrets
import signal

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from alerts.models import Integration, Kind
from incidents.models import Service
from muster import embedded
from oncall.models import (
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    NotificationRule,
    ServicePolicy,
)

DEMO_ADMIN = "admin"


def _url_host(host: str) -> str:
    """Return how a URL names `host`: a wildcard address is reached on loopback."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class Command(BaseCommand):
    help = "Run Muster embedded: daphne, a Celery worker and beat in one process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not create demo data.")

    def handle(self, *args, host: str, port: int, no_demo: bool, **options):
        if not settings.EMBEDDED:
            # Beat and a worker in this process, on a Redis that production's own beat and
            # workers share, would be neither mode: refuse rather than half-run.
            raise CommandError(
                "REDIS_URL is set, and muster_up is the embedded mode: unset REDIS_URL, or run "
                "daphne, `celery -A muster worker` and `celery -A muster beat` as separate "
                "processes (see deploy/)."
            )
        if not os.environ.get("MUSTER_PUBLIC_URL"):
            # Unset, the public URL is where this process listens: the ingest URLs the API
            # shows admins must carry this --port, not the default's.
            settings.PUBLIC_URL = f"http://{_url_host(host)}:{port}"
            settings.CSRF_TRUSTED_ORIGINS = [*settings.CSRF_TRUSTED_ORIGINS, settings.PUBLIC_URL]
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready.")
        if not no_demo:
            self._seed_demo()
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            # Started as a shell's background job, which ignores SIGINT; daphne only takes over
            # Python's default handler, and `kill -INT` (or Ctrl-C after `fg`) should stop us.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        background = embedded.start_background()
        self.stdout.write(f"Muster is up at http://{host}:{port}/  (Ctrl-C stops it)")
        self.stdout.flush()
        try:
            embedded.serve(host, port)
        finally:
            background.stop()

    def _seed_paging(self, admin: User, service: Service) -> None:
        """Make the demo admin reachable, so a first alert shows a page in the console outbox."""
        method = ContactMethod.objects.create(
            user=admin,
            kind=ContactKind.SMS,
            address="+15555550100",
            label="demo number (console outbox until Twilio is configured)",
            verified_at=timezone.now(),
        )
        for urgency in ("high", "low"):
            NotificationRule.objects.create(
                user=admin, urgency=urgency, delay_minutes=0, contact_method=method
            )
        policy, _ = EscalationPolicy.objects.get_or_create(name="Demo policy")
        step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
        step.users.add(admin)
        ServicePolicy.objects.get_or_create(service=service, defaults={"policy": policy})

    @transaction.atomic
    def _seed_demo(self) -> None:
        admin = None
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(DEMO_ADMIN, "", password, role=Role.ADMIN)
            self.stdout.write(
                f"Created the demo admin: user {DEMO_ADMIN!r}, password {password!r} "
                "(shown only now)."
            )
        service, _ = Service.objects.get_or_create(
            name="Demo service", defaults={"description": "Created by muster_up."}
        )
        if admin is not None:
            self._seed_paging(admin, service)
        integration, _ = Integration.objects.get_or_create(
            name="Demo Alertmanager", defaults={"kind": Kind.ALERTMANAGER, "service": service}
        )
        generic, _ = Integration.objects.get_or_create(
            name="Demo generic JSON", defaults={"kind": Kind.GENERIC, "service": service}
        )
        self.stdout.write(f"Alertmanager webhook URL: {integration.ingest_url}")
        self.stdout.write(f"Generic JSON URL:         {generic.ingest_url}")
        self.stdout.write(
            "Try: curl -H 'Content-Type: application/json' "
            f'-d \'{{"summary": "Disk full on db-1", "severity": "critical"}}\' '
            f"{generic.ingest_url}"
        )

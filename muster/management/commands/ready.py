"""`manage.py ready [--role web|worker]`: the readiness report of /readyz, without HTTP.

For exec probes (compose's healthcheck, Kubernetes): a Celery worker serves no HTTP. It prints
the report as JSON (console_delivery included) and exits 1 when not ready for its role: web
needs the database; worker needs the database, the broker and a recent beat tick.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from muster.health import ROLES, readiness


class Command(BaseCommand):
    help = "Print the readiness report (as /readyz?role=...) and exit 1 when not ready."
    default_role = "web"

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--role",
            choices=ROLES,
            default=self.default_role,
            help=f"what this process does (default: {self.default_role})",
        )

    def handle(self, *args, **options):
        ready, report = readiness(options["role"])
        self.stdout.write(json.dumps(report, indent=2))
        if not ready:
            raise CommandError("not ready: " + "; ".join(report["problems"]))

"""`manage.py muster_ready`: the readiness report of /readyz, for a process without HTTP.

A Celery worker serves no HTTP; its probe (compose's healthcheck, a Kubernetes exec probe)
runs this. It prints the report as JSON (console_delivery included) and exits 1 when the
database, the broker or the beat tick is not answering.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from muster.health import readiness


class Command(BaseCommand):
    help = "Print the readiness report (as /readyz) and exit 1 when not ready."

    def handle(self, *args, **options):
        ready, report = readiness()
        self.stdout.write(json.dumps(report, indent=2))
        if not ready:
            raise CommandError("not ready: " + "; ".join(report["problems"]))

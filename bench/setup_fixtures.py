"""Create the benchmark's service and integrations; print their ingest paths as JSON.

Run by bench/ingest.py with DATABASE_URL set, after `manage.py migrate`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")

import django  # noqa: E402

django.setup()

from alerts.models import Integration, Kind  # noqa: E402
from incidents.models import Service  # noqa: E402


def main() -> None:
    service, _ = Service.objects.get_or_create(
        name="bench", defaults={"description": "bench/ingest.py"}
    )
    paths = {}
    for kind in (Kind.ALERTMANAGER, Kind.GENERIC):
        integration, _ = Integration.objects.get_or_create(
            name=f"bench-{kind}", defaults={"kind": kind, "service": service}
        )
        paths[str(kind)] = integration.ingest_path
    print(json.dumps({"service": service.pk, "paths": paths}))


if __name__ == "__main__":
    main()

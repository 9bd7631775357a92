"""Set up the soak's data; run by bench/soak.py with DATABASE_URL set.

    python bench/soak_setup.py

Creates, for each of the five ingest formats, a service `soak-<kind>` (chat off, no escalation
policy: nobody is paged) with one integration of that kind. Prints one JSON line: per kind, the
integration's id, token (PagerDuty's routing key, Opsgenie's GenieKey) and ingest path, and the
service's id.
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

from alerts.models import Integration  # noqa: E402
from incidents.models import ChatChannelMode, Service  # noqa: E402

KINDS = ("alertmanager", "grafana", "pagerduty", "opsgenie", "generic")


def setup() -> dict:
    out = {}
    for kind in KINDS:
        service = Service.objects.create(
            name=f"soak-{kind}",
            slack_channel_mode=ChatChannelMode.OFF,
            mattermost_channel_mode=ChatChannelMode.OFF,
        )
        integration = Integration.objects.create(name=f"soak {kind}", kind=kind, service=service)
        out[kind] = {
            "integration_id": integration.pk,
            "service_id": service.pk,
            "token": integration.token,
            "path": integration.ingest_path,
        }
    return out


if __name__ == "__main__":
    print(json.dumps(setup()))

"""Set up the soak's data; run by bench/soak.py (and bench/chaos.py) with DATABASE_URL set.

    python bench/soak_setup.py [--paging]

Creates, for each of the five ingest formats, a service `soak-<kind>` (chat off, no escalation
policy: nobody is paged) with one integration of that kind. Prints one JSON line: per kind, the
integration's id, token (PagerDuty's routing key, Opsgenie's GenieKey) and ingest path, and the
service's id.

With `--paging` (bench/chaos.py), each service gets a person with a verified SMS number paged at
once whatever the urgency, by a policy of one step that does not repeat, so each incident is
exactly one page; and a service `probe` with a generic integration and a person of its own
(key `probe`), for the alerts that measure recovery. Each entry then has its `phone`.
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

from django.utils import timezone  # noqa: E402

from accounts.models import Role, User  # noqa: E402
from alerts.models import Integration  # noqa: E402
from incidents.models import ChatChannelMode, Service  # noqa: E402
from oncall.models import (  # noqa: E402
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    NotificationRule,
    ServicePolicy,
)

KINDS = ("alertmanager", "grafana", "pagerduty", "opsgenie", "generic")


def setup(paging: bool = False) -> dict:
    out = {}
    for n, kind in enumerate([*KINDS, "probe"] if paging else KINDS):
        service = Service.objects.create(
            name=f"soak-{kind}",
            slack_channel_mode=ChatChannelMode.OFF,
            mattermost_channel_mode=ChatChannelMode.OFF,
        )
        integration = Integration.objects.create(
            name=f"soak {kind}", kind="generic" if kind == "probe" else kind, service=service
        )
        out[kind] = {
            "integration_id": integration.pk,
            "service_id": service.pk,
            "token": integration.token,
            "path": integration.ingest_path,
        }
        if paging:
            out[kind]["phone"] = _paged_person(service, n)
    return out


def _paged_person(service: Service, n: int) -> str:
    """A person paged by SMS at once for every incident of `service`, once; their number."""
    user = User.objects.create(username=f"{service.name}-oncall", role=Role.RESPONDER)
    number = f"+1555900{n:04d}"
    method = ContactMethod.objects.create(
        user=user, kind=ContactKind.SMS, address=number, verified_at=timezone.now()
    )
    for urgency in ("high", "low"):
        NotificationRule.objects.create(
            user=user, urgency=urgency, delay_minutes=0, contact_method=method
        )
    policy = EscalationPolicy.objects.create(name=f"{service.name} policy", repeat=0)
    step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=60)
    step.users.add(user)
    ServicePolicy.objects.create(service=service, policy=policy)
    return number


if __name__ == "__main__":
    print(json.dumps(setup(paging="--paging" in sys.argv[1:])))

"""Set up (or act on) the paging benchmark's data; run by bench/paging.py with DATABASE_URL set.

    python bench/paging_setup.py setup --services 50 --step1-delay 1 --step2-delay 10 \
        --pool pool.json
    python bench/paging_setup.py ack 1000 1001 ...

`setup` creates, per service: a primary and a secondary person, each with a verified SMS
contact method and one high-urgency notification rule at 0 minutes; an escalation policy whose
step 1 pages the primary and, `--step1-delay` minutes later, step 2 pages the secondary (no
repeat); an Alertmanager and a generic integration. It prints one JSON line: per service its
name, ingest paths and the two phone numbers (a page's recipient tells its step).

With `--pool FILE` (a JSON list of Alertmanager bodies, one per service, in service order), it
then ingests each body once through the real pipeline (`alerts.pipeline.ingest`, as the view
does) and acknowledges the incidents they open: the firing-alert pool that the duplicate load
re-sends, on incidents nobody is paged for any more. (Their escalation kicks wait in Redis
until the worker starts, and find the incidents acknowledged.)

`ack` acknowledges the incidents with these numbers (the benchmark's firing-alert pool, so the
duplicate load lands on incidents nobody is being paged for any more).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Role, User  # noqa: E402
from alerts import pipeline  # noqa: E402
from alerts.models import Integration, Kind  # noqa: E402
from alerts.sources.registry import PARSERS  # noqa: E402
from incidents.models import Incident, Service, Source, Status  # noqa: E402
from incidents.services import acknowledge_incident  # noqa: E402
from oncall.models import (  # noqa: E402
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    NotificationRule,
    ServicePolicy,
)


def phone(service: int, who: int) -> str:
    return f"+1555{service:04d}{who:03d}"


@transaction.atomic
def setup(count: int, step1_delay: int, step2_delay: int) -> list[dict]:
    now = timezone.now()
    out = []
    for i in range(count):
        name = f"paging-{i:02d}"
        service = Service.objects.create(name=name, description="bench/paging.py")
        people = []
        for who, role in ((1, "primary"), (2, "secondary")):
            user = User.objects.create(username=f"{name}-{role}", role=Role.RESPONDER)
            method = ContactMethod.objects.create(
                user=user, kind=ContactKind.SMS, address=phone(i, who), verified_at=now
            )
            NotificationRule.objects.create(
                user=user, urgency="high", delay_minutes=0, contact_method=method
            )
            people.append(user)
        policy = EscalationPolicy.objects.create(name=f"{name} policy", repeat=0)
        step1 = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=step1_delay)
        step1.users.add(people[0])
        step2 = EscalationStep.objects.create(policy=policy, position=1, delay_minutes=step2_delay)
        step2.users.add(people[1])
        ServicePolicy.objects.create(service=service, policy=policy)
        paths = {}
        for kind in (Kind.ALERTMANAGER, Kind.GENERIC):
            integration = Integration.objects.create(
                name=f"{name}-{kind}", kind=kind, service=service
            )
            paths[str(kind)] = integration.ingest_path
        out.append(
            {
                "index": i,
                "name": name,
                "service_id": service.pk,
                "paths": paths,
                "primary": phone(i, 1),
                "secondary": phone(i, 2),
            }
        )
    return out


def seed_pool(services: list[dict], bodies: list[str]) -> list[int]:
    numbers = set()
    for svc, body in zip(services, bodies, strict=True):
        integration = Integration.objects.get(service_id=svc["service_id"], kind=Kind.ALERTMANAGER)
        alerts = PARSERS[Kind.ALERTMANAGER](json.loads(body))
        for result in pipeline.ingest(integration, alerts, body=body.encode()):
            numbers.add(result.incident_number)
    numbers.discard(None)
    return sorted(numbers)


def ack(numbers: list[int]) -> int:
    done = 0
    for incident in Incident.objects.filter(number__in=numbers, status=Status.TRIGGERED):
        acknowledge_incident(incident, by=None, source=Source.API, actor_name="bench/paging.py")
        done += 1
    return done


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--services", type=int, default=50)
    s.add_argument("--step1-delay", type=int, default=1)
    s.add_argument("--step2-delay", type=int, default=10)
    s.add_argument("--pool", help="JSON file: one Alertmanager body per service, to seed")
    a = sub.add_parser("ack")
    a.add_argument("numbers", nargs="*", type=int)
    opts = p.parse_args()
    if opts.cmd == "setup":
        services = setup(opts.services, opts.step1_delay, opts.step2_delay)
        out = {"services": services}
        if opts.pool:
            with open(opts.pool) as f:
                bodies = json.load(f)
            out["pool_incidents"] = seed_pool(services, bodies)
            out["pool_acknowledged"] = ack(out["pool_incidents"])
        print(json.dumps(out))
    else:
        print(json.dumps({"acknowledged": ack(opts.numbers)}))


if __name__ == "__main__":
    main()

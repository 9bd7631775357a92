"""Every main page renders with a bounded number of SQL queries, whatever the number of rows.

Not timed (wall-clock belongs to bench/ui_pages.py): each page is rendered with a few hundred
incidents and timeline entries in the background, then with N of everything it lists, then with
3N; the query count must not change between N and 3N (no query per row: no N+1), and must stay
under a fixed ceiling (which also catches a query per row on lists paginated below N).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, User
from accounts.services import create_api_token
from alerts.models import Alert, Integration, Kind, RoutingRule, Silence
from incidents.models import EntryKind, Incident, Service, Source, Status, TimelineEntry
from oncall.models import (
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    Layer,
    LayerParticipant,
    NotificationRule,
    OutboxKind,
    OutboxMessage,
    Override,
    Page,
    PageStatus,
    Schedule,
)
from runbooks.models import Runbook
from warroom.models import Message
from warroom.services import incident_room

N = 4  # units of growth; each adds rows of every kind below (so 3N = 12 of each)
BACKGROUND_INCIDENTS = 300  # old resolved incidents, each with timeline entries
CEILING = 40  # queries a page may make, rows or not

STATUSES = (Status.TRIGGERED, Status.ACKNOWLEDGED, Status.RESOLVED)
ENTRY_KINDS = (EntryKind.NOTE, EntryKind.PAGE, EntryKind.COMMAND, EntryKind.ALERT_REPEATED)


@dataclass
class World:
    """What the pages show, grown a unit at a time."""

    alice: User
    focus: Incident  # the incident whose page, postmortem and exports are rendered
    schedule: Schedule  # the schedule whose week is rendered
    services: list[Service] = field(default_factory=list)
    integrations: list[Integration] = field(default_factory=list)
    policy: EscalationPolicy | None = None
    units: int = 0
    next_number: int = 100_000

    def number(self) -> int:
        self.next_number += 1
        return self.next_number

    def grow(self, units: int) -> None:
        """Add `units` of everything the main pages list, each touching new people and
        services, so a query per row (or per related object) shows in the count."""
        now = timezone.now()
        for _ in range(units):
            self.units += 1
            u = self.units
            person = User.objects.create_user(f"person-{u}", role=Role.RESPONDER)
            service = Service.objects.create(name=f"service-{u}")
            integration = Integration.objects.create(
                name=f"integration-{u}", kind=Kind.ALERTMANAGER, service=service
            )
            self.services.append(service)
            self.integrations.append(integration)

            # Incidents: open ones (the default list) and a resolved one, each with an alert
            # and a page (one on the console: the outbox).
            for i, status in enumerate(STATUSES):
                incident = Incident.objects.create(
                    number=self.number(),
                    title=f"Incident {u}.{i}",
                    service=service,
                    severity=1 + (u + i) % 5,
                    status=status,
                    triggered_at=now - timedelta(hours=u, minutes=i),
                    acknowledged_at=None if status == Status.TRIGGERED else now,
                    acknowledged_by=None if status == Status.TRIGGERED else person,
                    resolved_at=now if status == Status.RESOLVED else None,
                    resolved_by=person if status == Status.RESOLVED else None,
                    assignee=person,
                    group_key=f"g-{u}-{i}",
                )
                self.alert(incident, integration, f"fp-{u}-{i}")
                self.page(incident, person, "console" if i % 2 else "sms")

            # The focus incident: timeline entries by new people, an alert, a page, messages.
            for k in range(4):
                TimelineEntry.objects.create(
                    incident=self.focus,
                    at=now - timedelta(minutes=60 - u - k / 10),
                    kind=ENTRY_KINDS[k],
                    actor=person,
                    actor_name=person.username,
                    source=Source.WEB,
                    message=f"entry {u}.{k}",
                )
            self.alert(self.focus, integration, f"focus-{u}")
            self.page(self.focus, person, "console")
            room = incident_room(self.focus)
            Message.objects.bulk_create(
                Message(room=room, author=person, body=f"hello {u}.{m}", html=f"<p>hello {u}</p>")
                for m in range(3)
            )

            # On call: a new schedule with a layer; the focus schedule gets a participant and
            # overrides this week by the new person.
            schedule = Schedule.objects.create(name=f"schedule-{u}")
            self.layer(schedule, [person, self.alice])
            focus_layer = self.schedule.layers.first()
            LayerParticipant.objects.create(layer=focus_layer, user=person, position=u)
            for o in range(2):
                start = now + timedelta(hours=6 * (u * 2 + o))
                Override.objects.create(
                    schedule=self.schedule,
                    user=person,
                    start=start,
                    end=start + timedelta(hours=3),
                    created_by=self.alice,
                )

            # Setup: a policy with a step, a routing rule, a silence, a runbook.
            policy = EscalationPolicy.objects.create(name=f"policy-{u}")
            step = EscalationStep.objects.create(policy=policy, position=0, delay_minutes=5)
            step.users.add(person)
            step.schedules.add(schedule)
            if self.policy is not None:
                step = EscalationStep.objects.create(
                    policy=self.policy, position=u, delay_minutes=5
                )
                step.users.add(person)
                step.schedules.add(schedule)
            RoutingRule.objects.create(
                integration=integration,
                position=u,
                name=f"rule-{u}",
                matchers=[{"label": "team", "op": "=", "value": f"t{u}"}],
                service=service,
            )
            Silence.objects.create(
                matchers=[{"label": "host", "op": "=", "value": f"h{u}"}],
                service=service,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=u),
                created_by=person,
                comment=f"maintenance {u}",
            )
            Runbook.objects.create(title=f"runbook-{u}", service=service, body=f"# Step {u}")

            # Profile: alice's contact methods, notification rules and tokens.
            method = ContactMethod.objects.create(
                user=self.alice,
                kind=ContactKind.SMS,
                address=f"+1555010{u:04d}",
                label=f"phone {u}",
                verified_at=now,
            )
            NotificationRule.objects.create(
                user=self.alice, urgency="high", delay_minutes=u, contact_method=method
            )
            create_api_token(self.alice, name=f"token-{u}")

    def alert(self, incident: Incident, integration: Integration, fingerprint: str) -> None:
        Alert.objects.create(
            integration=integration,
            fingerprint=fingerprint,
            status="firing" if incident.is_open else "resolved",
            service=incident.service,
            incident=incident,
            summary=incident.title,
            severity=incident.severity,
            labels={"alertname": fingerprint, "host": "web-1"},
            links=[{"href": "https://grafana.example/d/1", "text": "graph"}],
            first_seen=incident.triggered_at,
            last_seen=incident.triggered_at,
        )

    def page(self, incident: Incident, person: User, channel: str) -> None:
        page = Page.objects.create(
            incident=incident,
            person=person,
            channel=channel,
            address="+15550100",
            status=PageStatus.DELIVERED,
            send_after=incident.triggered_at,
            sent_at=incident.triggered_at,
            body=f"Muster #{incident.number}",
            rule_key=Page.objects.count() + 1,
        )
        if channel == "console":  # what the console "sent": the dev outbox's rows
            OutboxMessage.objects.create(
                kind=OutboxKind.PAGE,
                page=page,
                person=person,
                channel="sms",
                address=page.address,
                body=page.body,
            )

    def layer(self, schedule: Schedule, people: list[User]) -> Layer:
        monday = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
        monday -= timedelta(days=monday.weekday() + 7)
        layer = Layer.objects.create(schedule=schedule, rotation="daily", start=monday)
        LayerParticipant.objects.bulk_create(
            LayerParticipant(layer=layer, user=user, position=i) for i, user in enumerate(people)
        )
        return layer


@pytest.fixture
def world(alice, service) -> World:
    """A few hundred old incidents and entries, one focus incident and one focus schedule."""
    now = timezone.now()
    old = Incident.objects.bulk_create(
        Incident(
            number=10_000 + i,
            title=f"Old incident {i}",
            service=service,
            status=Status.RESOLVED,
            triggered_at=now - timedelta(days=30, hours=i),
            resolved_at=now - timedelta(days=30, hours=i) + timedelta(minutes=20),
            resolved_by=alice,
        )
        for i in range(BACKGROUND_INCIDENTS)
    )
    TimelineEntry.objects.bulk_create(
        TimelineEntry(
            incident=incident,
            at=incident.triggered_at + timedelta(seconds=k),
            kind=EntryKind.NOTE,
            actor=alice,
            actor_name="alice",
            source=Source.WEB,
            message=f"old entry {k}",
        )
        for incident in old
        for k in range(2)
    )
    focus = Incident.objects.create(
        number=99_999,
        title="The focus incident",
        service=service,
        status=Status.RESOLVED,
        triggered_at=now - timedelta(hours=2),
        acknowledged_at=now - timedelta(hours=1, minutes=50),
        acknowledged_by=alice,
        resolved_at=now - timedelta(hours=1),
        resolved_by=alice,
    )
    schedule = Schedule.objects.create(name="Focus schedule")
    built = World(alice=alice, focus=focus, schedule=schedule, services=[service])
    built.layer(schedule, [alice])
    built.policy = EscalationPolicy.objects.create(name="Focus policy")
    return built


PAGES = {
    "incidents": "/incidents/",
    "incidents-all": "/incidents/?status=all",
    "incident": "/incidents/{focus}/",
    "incident-timeline": "/incidents/{focus}/timeline/",
    "postmortem": "/incidents/{focus}/postmortem/",
    "postmortem-md": "/incidents/{focus}/postmortem/export.md",
    "postmortem-json": "/incidents/{focus}/postmortem/export.json",
    "postmortem-print": "/incidents/{focus}/postmortem/print/",
    "oncall": "/oncall/",
    "schedule-week": "/oncall/schedules/{schedule}/",
    "person": "/oncall/people/{alice}/",
    "setup": "/setup/",
    "setup-services": "/setup/services/",
    "setup-integrations": "/setup/integrations/",
    "setup-integration": "/setup/integrations/{integration}/",
    "setup-routing": "/setup/routing/",
    "setup-silences": "/setup/silences/",
    "setup-policies": "/setup/policies/",
    "setup-policy": "/setup/policies/{policy}/",
    "setup-runbooks": "/setup/runbooks/",
    "insights": "/insights/",
    "outbox": "/outbox/",
    "profile": "/profile/",
}


def queries_to_render(client, path: str) -> int:
    """Render `path` once to settle one-time work (a room or postmortem made on first view),
    then again, counting its queries."""
    response = client.get(path)
    assert response.status_code == 200, f"{path}: HTTP {response.status_code}"
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200, f"{path}: HTTP {response.status_code}"
    return len(queries)


@pytest.mark.parametrize("name", PAGES)
def test_queries_do_not_grow_with_rows(name, world, web_alice):
    world.grow(N)
    path = PAGES[name].format(
        focus=world.focus.number,
        schedule=world.schedule.pk,
        alice=world.alice.pk,
        integration=world.integrations[0].pk,
        policy=world.policy.pk,
    )
    with_n = queries_to_render(web_alice, path)

    world.grow(2 * N)
    with_3n = queries_to_render(web_alice, path)

    assert with_3n == with_n, f"{path}: {with_n} queries with N rows, {with_3n} with 3N"
    assert with_n <= CEILING, f"{path}: {with_n} queries"

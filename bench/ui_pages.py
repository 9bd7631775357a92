"""Web UI benchmark: server-side render time of each main page on a big database.

    python bench/ui_pages.py                      # 10,000 incidents, 1,000,000 timeline events
    python bench/ui_pages.py --quick              # 1,000 incidents, 50,000 events, 10 requests
    python bench/ui_pages.py --requests 50 --incidents 20000 --events 2000000

Starts throwaway PostgreSQL and Redis (muster_services), migrates, and seeds with bulk SQL
(INSERT … SELECT over generate_series, nothing row by row): incidents over two services, their
timeline events (one incident has thousands of them), an alert, an ingest request and a page per
incident (half of the pages on the console: the dev outbox), a war room with a thousand
messages, schedules with layers and overrides, escalation policies. Then, in this process, Django's
test Client renders each main page signed in as an admin: a few warm-up requests, then
--requests timed ones (the view, middleware and templates: server-side time, no network), and one
more counting its SQL queries. Prints a table (p50/p99 ms, queries, size) and writes JSON to
bench/results/. The target: every page under 200 ms. A page whose URL does not resolve yet is
reported as missing; one that answers an error is reported with its status.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import project  # first: it re-runs this script under .venv's Python

project.run_in_venv()
BENCH, ROOT = project.BENCH, project.ROOT
RESULTS = BENCH / "results"
TARGET_MS = 200.0


from muster_services import running_services  # noqa: E402


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- seeding ---------------------------------------------------------------------------------


def insert_series(model, select_from: str, values: dict[str, str], **template) -> int:
    """INSERT INTO `model`'s table one row per row of `select_from` (SQL after SELECT …, e.g.
    "FROM generate_series(1, 100) AS g"); each column is the SQL expression in `values` named by
    field, else the default of a `model(**template)` instance, passed as a parameter. Return the
    number of rows inserted. `values` are trusted SQL written here, never user input."""
    from django.db import connection

    obj = model(**template)
    columns, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.name not in values:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in values:
            expressions.append(values[field.name])
        else:
            expressions.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(obj, add=True), connection))
    table = connection.ops.quote_name(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # names from the models
        f"SELECT {', '.join(expressions)} {select_from}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def table(model) -> str:
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def sql_array(values) -> str:
    return "ARRAY[" + ", ".join(str(int(v)) for v in values) + "]"


@dataclass
class Seeded:
    admin_id: int
    big_incident: int
    schedule_id: int
    integration_id: int
    policy_id: int
    incidents: int
    events: int
    big_events: int


def seed(incidents: int, events: int, big_events: int) -> Seeded:
    """Fill the database; return what the pages are measured on."""
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Role, User
    from alerts.models import Alert, IngestRequest, Integration, Kind
    from incidents.models import Counter, Incident, Service, TimelineEntry
    from oncall import models as oncall_models
    from oncall.models import (
        EscalationPolicy,
        EscalationStep,
        Layer,
        LayerParticipant,
        Override,
        Page,
        Schedule,
        ServicePolicy,
    )
    from warroom.models import Message, Room

    started = time.monotonic()
    n = incidents
    first = 1000  # the first incident number, as INCIDENT_NUMBER_START
    with transaction.atomic():
        admin = User.objects.create_superuser("bench-admin", "", "bench", role=Role.ADMIN)
        people = [
            admin,
            *User.objects.bulk_create(
                User(username=f"responder-{i}", role=Role.RESPONDER) for i in range(20)
            ),
        ]
        people_sql = sql_array(p.pk for p in people)
        services = [Service.objects.create(name=name) for name in ("checkout", "payments")]
        integrations = [
            Integration.objects.create(
                name=f"{s.name} alertmanager", kind=Kind.ALERTMANAGER, service=s
            )
            for s in services
        ]
        services_sql = sql_array(s.pk for s in services)
        integrations_sql = sql_array(i.pk for i in integrations)
        integration_of_incident = (
            f"({integrations_sql})[array_position({services_sql}, i.service_id)]"
        )

        # Incidents: numbers first .. first+n-1, one every 50 minutes up to now; the newest 300
        # open (triggered and acknowledged alternately), the rest resolved. The newest is the
        # big one, triggered.
        open_from = n - 300
        say(f"seeding {n:,} incidents")
        insert_series(
            Incident,
            f"FROM generate_series(1, {n}) AS g, "
            f"LATERAL (SELECT now() - (({n} - g) * interval '50 minutes') AS t) AS x, "
            "LATERAL (SELECT CASE WHEN g = "
            f"{n} OR (g > {open_from} AND mod(g, 2) = 0) THEN 'triggered' WHEN g > {open_from} "
            "THEN 'acknowledged' ELSE 'resolved' END AS st) AS y",
            {
                "number": f"{first - 1} + g",
                "title": "'Bench incident ' || g || ': error rate above threshold on web-' "
                "|| mod(g, 20)",
                "service": f"({services_sql})[1 + mod(g, 2)]",
                "severity": "1 + mod(g, 5)",
                "urgency": "CASE WHEN mod(g, 5) < 2 THEN 'high' ELSE 'low' END",
                "status": "st",
                "group_key": "'bench-' || g",
                "created_at": "t",
                "triggered_at": "t",
                "acknowledged_at": "CASE WHEN st <> 'triggered' "
                "THEN t + (1 + mod(g, 30)) * interval '1 minute' END",
                "acknowledged_by": f"CASE WHEN st <> 'triggered' "
                f"THEN ({people_sql})[1 + mod(g, {len(people)})] END",
                "resolved_at": "CASE WHEN st = 'resolved' "
                "THEN t + (31 + mod(g, 240)) * interval '1 minute' END",
                "resolved_by": f"CASE WHEN st = 'resolved' "
                f"THEN ({people_sql})[1 + mod(g, {len(people)})] END",
            },
            title="",
        )
        Counter.objects.update_or_create(name="incident", defaults={"value": first + n - 1})
        big_number = first + n - 1
        big = Incident.objects.get(number=big_number)
        big_start = (big.triggered_at + timedelta(hours=1)).isoformat()  # our value, not input

        # Timeline: `events` entries; `big_events` of them on the big incident, the rest spread
        # evenly, in time order after each incident's trigger.
        spread = events - big_events
        kinds = "(ARRAY['alert_repeated','page','note','command','status_update','page'])"
        say(f"seeding {events:,} timeline events ({big_events:,} on #{big_number})")
        insert_series(
            TimelineEntry,
            f"FROM generate_series(0, {spread - 1}) AS g "
            f"JOIN {table(Incident)} AS i ON i.number = {first} + mod(g, {n})",
            {
                "incident": "i.id",
                "at": f"i.triggered_at + (g / {n}) * interval '10 seconds'",
                "kind": f"CASE WHEN g < {n} THEN 'opened' ELSE {kinds}[1 + mod(g / {n}, 6)] END",
                "actor_name": "'Muster'",
                "source": "'system'",
                "message": "'Bench event ' || g || ' of ' || i.title",
            },
            message="",
        )
        insert_series(
            TimelineEntry,
            f"FROM generate_series(1, {big_events}) AS g",
            {
                "incident": str(big.pk),
                "at": f"'{big_start}'::timestamptz + g * interval '1 second'",
                "kind": "CASE WHEN mod(g, 3) = 0 THEN 'note' ELSE 'alert_repeated' END",
                "actor": f"CASE WHEN mod(g, 3) = 0 THEN {admin.pk} END",
                "actor_name": "CASE WHEN mod(g, 3) = 0 THEN 'bench-admin' ELSE 'checkout' END",
                "source": "CASE WHEN mod(g, 3) = 0 THEN 'web' ELSE 'alert' END",
                "message": "'Big incident event ' || g",
            },
            message="",
        )

        say(f"seeding {n:,} alerts, ingest requests and pages")
        insert_series(
            Alert,
            f"FROM {table(Incident)} AS i",
            {
                "integration": integration_of_incident,
                "fingerprint": "'fp-' || mod(i.number, 400)",
                "status": "CASE WHEN i.status = 'resolved' THEN 'resolved' ELSE 'firing' END",
                "service": "i.service_id",
                "incident": "i.id",
                "summary": "i.title",
                "severity": "i.severity",
                "labels": "jsonb_build_object('alertname', 'Alert' || mod(i.number, 400), "
                "'host', 'web-' || mod(i.number, 20))",
                "first_seen": "i.triggered_at",
                "last_seen": "i.triggered_at",
                "resolved_at": "i.resolved_at",
                "occurrences": "1 + mod(i.number, 7)",
            },
            fingerprint="",
            summary="",
        )
        insert_series(
            IngestRequest,
            f"FROM {table(Incident)} AS i",
            {
                "integration": integration_of_incident,
                "received_at": "i.triggered_at",
                "outcome": "'accepted'",
                "status_code": "200",
                "content_type": "'application/json'",
                "alert_count": "1",
                "warnings": "CASE WHEN mod(i.number, 50) = 0 "
                "THEN '[\"no severity label: assumed 3\"]'::jsonb ELSE '[]'::jsonb END",
                "processed_at": "i.triggered_at",
                "results": "jsonb_build_array(jsonb_build_object('action', 'opened', "
                "'incident', i.number))",
            },
            outcome="accepted",
            status_code=200,
        )
        insert_series(
            Page,
            f"FROM {table(Incident)} AS i",
            {
                "incident": "i.id",
                "person": f"({people_sql})[1 + mod(i.number, {len(people)})]",
                "channel": "CASE WHEN mod(i.number, 2) = 0 THEN 'console' ELSE 'sms' END",
                "address": "'+1555555' || lpad(mod(i.number, 10000)::text, 4, '0')",
                "status": "CASE WHEN i.status = 'triggered' THEN 'delivered' ELSE 'cancelled' END",
                "send_after": "i.triggered_at",
                "sent_at": "i.triggered_at + interval '2 seconds'",
                "finished_at": "i.triggered_at + interval '5 seconds'",
                "body": "'Muster #' || i.number || ': ' || i.title",
                "created_at": "i.triggered_at",
                "rule_key": "i.number",
            },
            channel="sms",
            send_after=timezone.now(),
        )

        # The dev outbox: what the console channel "sent", one per console page.
        outbox = getattr(oncall_models, "OutboxMessage", None)
        if outbox is not None:  # older trees listed console pages themselves
            insert_series(
                outbox,
                f"FROM {table(Page)} AS p WHERE p.channel = 'console'",
                {
                    "kind": "'page'",
                    "page": "p.id",
                    "person": "p.person_id",
                    "channel": "'sms'",
                    "address": "p.address",
                    "body": "p.body",
                    "created_at": "p.sent_at",
                },
                body="",
            )

        say("seeding a war room, schedules, overrides and policies")
        room = Room.objects.create(incident=big, name=f"#{big_number}")
        insert_series(
            Message,
            "FROM generate_series(1, 1000) AS g",
            {
                "room": str(room.pk),
                "author": f"({people_sql})[1 + mod(g, {len(people)})]",
                "body": "'Message ' || g || ' about the incident'",
                "html": "'<p>Message ' || g || ' about the incident</p>'",
                "created_at": "now() - (1000 - g) * interval '10 seconds'",
            },
            body="",
            html="",
        )
        monday = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
        monday -= timedelta(days=monday.weekday() + 28)
        schedules = []
        for s in range(5):
            schedule = Schedule.objects.create(name=f"Bench schedule {s}")
            schedules.append(schedule)
            for level, rotation in enumerate(("weekly", "daily")):
                layer = Layer.objects.create(
                    schedule=schedule,
                    name=f"layer {level}",
                    level=level,
                    rotation=rotation,
                    start=monday,
                    restrictions=[]
                    if level == 0
                    else [{"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}],
                )
                LayerParticipant.objects.bulk_create(
                    LayerParticipant(
                        layer=layer, user=people[(s + i + level) % len(people)], position=i
                    )
                    for i in range(4)
                )
            for o in range(20):
                start = timezone.now() + timedelta(hours=12 * o - 120)
                Override.objects.create(
                    schedule=schedule,
                    user=people[(s + o) % len(people)],
                    start=start,
                    end=start + timedelta(hours=6),
                    created_by=admin,
                )
        policy = None
        for p in range(3):
            policy = EscalationPolicy.objects.create(name=f"Bench policy {p}")
            for position in range(3):
                step = EscalationStep.objects.create(
                    policy=policy, position=position, delay_minutes=5 * (position + 1)
                )
                step.users.add(people[position])
                step.schedules.add(schedules[position])
        for service in services:
            ServicePolicy.objects.create(service=service, policy=policy)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(f"seeded in {time.monotonic() - started:.0f}s")
    return Seeded(
        admin_id=admin.pk,
        big_incident=big_number,
        schedule_id=schedules[0].pk,
        integration_id=integrations[0].pk,
        policy_id=policy.pk,
        incidents=n,
        events=events,
        big_events=big_events,
    )


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Measured:
    name: str
    path: str
    status: str  # "ok", "missing" or "HTTP <code>"
    first_ms: float | None = None  # the first request: cold template and chart caches
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    # This process's CPU time per request (p50): what the page costs the server's Python,
    # much less sensitive than wall-clock to other processes sharing the cores.
    cpu_p50_ms: float | None = None
    queries: int | None = None
    sql_ms: float | None = None  # the database's share, in the request that counted queries
    slowest_sql: str | None = None
    kbytes: float | None = None


def pages(seeded: Seeded) -> list[tuple[str, str]]:
    n, s = seeded.big_incident, seeded.schedule_id
    today = datetime.now(UTC).date()
    next_week = today - timedelta(days=today.weekday()) + timedelta(days=7)
    return [
        ("incidents (open)", "/incidents/"),
        ("incidents, all", "/incidents/?status=all"),
        ("incidents, resolved", "/incidents/?status=resolved"),
        (f"incident #{n} ({seeded.big_events:,}+ events)", f"/incidents/{n}/"),
        ("incident timeline", f"/incidents/{n}/timeline/"),
        ("postmortem", f"/incidents/{n}/postmortem/"),
        ("postmortem export.md", f"/incidents/{n}/postmortem/export.md"),
        ("postmortem export.json", f"/incidents/{n}/postmortem/export.json"),
        ("postmortem print", f"/incidents/{n}/postmortem/print/"),
        ("on call", "/oncall/"),
        ("a person's shifts", f"/oncall/people/{seeded.admin_id}/"),
        ("schedule week", f"/oncall/schedules/{s}/"),
        ("schedule next week", f"/oncall/schedules/{s}/?week={next_week.isoformat()}"),
        ("setup", "/setup/"),
        ("setup services", "/setup/services/"),
        ("setup integrations", "/setup/integrations/"),
        ("setup integration", f"/setup/integrations/{seeded.integration_id}/"),
        ("setup routing", "/setup/routing/"),
        ("setup silences", "/setup/silences/"),
        ("setup policies", "/setup/policies/"),
        ("setup policy", f"/setup/policies/{seeded.policy_id}/"),
        ("setup runbooks", "/setup/runbooks/"),
        ("insights", "/insights/"),
        ("outbox", "/outbox/"),
        ("profile", "/profile/"),
    ]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(seeded: Seeded, requests: int) -> list[Measured]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import Resolver404, resolve

    from accounts.models import User

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(User.objects.get(pk=seeded.admin_id))
    results = []
    for name, path in pages(seeded):
        try:
            resolve(path.split("?")[0])
        except Resolver404:
            results.append(Measured(name, path, "missing"))
            continue
        try:
            started = time.perf_counter()
            response = client.get(path)
            first_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # a page that crashes is a finding, not the end of the run
            results.append(Measured(name, path, f"error {type(exc).__name__}: {exc}"[:80]))
            continue
        if response.status_code != 200:
            results.append(Measured(name, path, f"HTTP {response.status_code}"))
            continue
        client.get(path)  # warm-up: template loading, first-use caches
        samples, cpu = [], []
        for _ in range(requests):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        body = response.content if not response.streaming else b"".join(response)
        timed = [(float(q["time"]) * 1000, q["sql"]) for q in queries.captured_queries]
        slowest = max(timed, default=(0.0, ""))
        results.append(
            Measured(
                name,
                path,
                "ok",
                first_ms=round(first_ms, 1),
                p50_ms=round(statistics.median(samples), 1),
                p99_ms=round(percentile(samples, 0.99), 1),
                max_ms=round(max(samples), 1),
                cpu_p50_ms=round(statistics.median(cpu), 1),
                queries=len(queries),
                sql_ms=round(sum(t for t, _ in timed), 1),
                slowest_sql=f"{slowest[0]:.1f} ms: {slowest[1][:300]}",
                kbytes=round(len(body) / 1024, 1),
            )
        )
        say(f"{name}: p50 {results[-1].p50_ms} ms, {len(queries)} queries")
    return results


def render(results: list[Measured], seeded: Seeded, requests: int) -> str:
    lines = [
        f"Web UI pages, server-side (Django test client in-process, PostgreSQL), "
        f"{seeded.incidents:,} incidents, {seeded.events:,} timeline events, "
        f"{requests} requests per page; target p99 < {TARGET_MS:.0f} ms. Load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. SQL ms: the database's share of "
        "one request; CPU ms: this process's CPU time per request, p50; first: the first request, "
        "cold caches.",
        "",
        f"{'page':<34} {'first':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms':>7} {'queries':>7} "
        f"{'SQL ms':>7} "
        f"{'KiB':>7}  verdict",
        "-" * 104,
    ]
    for r in results:
        if r.status != "ok":
            lines.append(f"{r.name:<34} {'':>55}  {r.status}")
            continue
        verdict = "ok" if r.p99_ms < TARGET_MS else "OVER"
        lines.append(
            f"{r.name:<34} {r.first_ms:>7.1f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} "
            f"{r.cpu_p50_ms:>7.1f} {r.queries:>7} {r.sql_ms:>7.1f} {r.kbytes:>7.1f}  {verdict}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--big-events", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="small data, 10 requests a page")
    opts = parser.parse_args()
    if opts.quick:
        opts.incidents, opts.events, opts.requests = 1_000, 50_000, 10
    if opts.events <= opts.big_events + opts.incidents:
        parser.error("--events must exceed --big-events plus --incidents")
    with running_services() as services:
        os.environ.update(services.env())
        os.environ["DJANGO_SETTINGS_MODULE"] = "muster.settings"
        os.environ.pop("DEBUG", None)
        import django
        from django.core.management import call_command

        django.setup()
        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        seeded = seed(opts.incidents, opts.events, opts.big_events)
        results = measure(seeded, opts.requests)
        from django.db import connections

        connections.close_all()
    report = render(results, seeded, opts.requests)
    print(report)
    for r in results:
        if r.status == "ok" and r.p99_ms >= TARGET_MS:
            print(f"slowest query of {r.name}: {r.slowest_sql}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ui_pages-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps(
            {
                "seeded": asdict(seeded),
                "requests": opts.requests,
                "pages": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    say(f"wrote {out.relative_to(ROOT)}")
    over = [r for r in results if r.status == "ok" and r.p99_ms >= TARGET_MS]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

"""/healthz (process alive), /readyz (ready for its role), /metrics.

Readiness depends on what the process needs (issue 15): a web node needs the database only,
so a dead beat or broker never takes every web node out of the load balancer; a worker needs
the database, the broker and a recent tick. The tick's heartbeat is in the database.
"""

from __future__ import annotations

import hmac
import os
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from kombu.exceptions import ChannelError
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from alerts.pending import pending_requests
from core.api_errors import error_json
from incidents.models import Incident
from muster import queues
from muster.celery import app as celery_app
from muster.tasks import seconds_since_last_tick
from oncall.channels.registry import console_fallbacks


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except DatabaseError as exc:
        return f"database: {exc}"


# Probes and scrapes must answer promptly even when the broker is down or unreachable.
BROKER_CONNECT_TIMEOUT_SECONDS = 2.0


def _broker_connection():
    """Return a connected broker connection, after one attempt (kombu would retry, sleeping)."""
    conn = celery_app.connection_for_write(connect_timeout=BROKER_CONNECT_TIMEOUT_SECONDS)
    try:
        conn.ensure_connection(max_retries=0, timeout=BROKER_CONNECT_TIMEOUT_SECONDS)
    except BaseException:
        conn.release()
        raise
    return conn


def _check_broker() -> str | None:
    try:
        with _broker_connection():
            return None
    except Exception as exc:  # kombu raises many kinds; any of them means "not ready"
        return f"broker: {exc}"


def _tick_age() -> tuple[float | None, str | None]:
    """Return the tick's age (None: never seen) and a problem if its heartbeat cannot be read."""
    try:
        return seconds_since_last_tick(), None
    except DatabaseError as exc:  # down is "not ready", not a 500
        return None, f"database: cannot read the beat tick's heartbeat: {exc}"


def _check_tick(age: float | None) -> str | None:
    limit = settings.READY_TICK_MAX_AGE_SECONDS
    if age is None:
        return "beat tick: never seen"
    if age > limit:
        return f"beat tick: last seen {age:.1f}s ago (limit {limit}s)"
    return None


# What each kind of process needs to do its work; "web" is the default.
ROLES = ("web", "worker")


def readiness(role: str = "web") -> tuple[bool, dict]:
    """Return whether this process is ready for `role`, and the report.

    web: the database. worker: the database, the broker and a beat tick within
    READY_TICK_MAX_AGE_SECONDS. The tick's age is reported for both, failed on for workers only.
    Channels that reach only the console are reported (`console_delivery`), never failed on:
    a delivery setting must not take ingest out of the load balancer.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    database = _check_database()
    age, tick_problem = _tick_age() if database is None else (None, None)
    checks = [database]
    if role == "worker":
        checks.append(_check_broker())
        if database is None:  # else the tick's age is unknown, and the database is the problem
            checks.append(tick_problem or _check_tick(age))
    problems = [p for p in checks if p]
    body = {
        "status": "ok" if not problems else "unavailable",
        "role": role,
        "problems": problems,
        "tick_age_seconds": None if age is None else round(age, 3),
        "console_delivery": console_fallbacks(),
    }
    return not problems, body


def readyz(request: HttpRequest) -> JsonResponse:
    role = request.GET.get("role", "web")
    if role not in ROLES:
        return error_json(400, f"unknown role {role!r}", [f"role: one of {', '.join(ROLES)}"])
    ready, body = readiness(role)
    return JsonResponse(body, status=200 if ready else 503)


class StateCollector:
    """Gauges read at scrape time: open incidents, ingest backlog, tick lag, task queue depth."""

    def collect(self):
        incidents = GaugeMetricFamily(
            "muster_open_incidents", "Open incidents, by status.", labels=["status"]
        )
        # What cannot be read right now is left out, rather than reported as zero.
        try:
            counts = dict(
                Incident.objects.open().order_by().values_list("status").annotate(n=Count("id"))
            )
        except DatabaseError:
            counts = None
        if counts is not None:
            for status in ("triggered", "acknowledged"):
                incidents.add_metric([status], counts.get(status, 0))
            yield incidents
        yield from _ingest_backlog()
        age, tick_problem = _tick_age()
        if tick_problem is None:
            yield GaugeMetricFamily(
                "muster_tick_lag_seconds",
                "Seconds since the beat tick last ran (-1: never).",
                value=-1 if age is None else age,
            )
        yield GaugeMetricFamily(
            "muster_console_delivery",
            "1 when SMS, calls or email reach only the console outbox (no provider configured).",
            value=1 if console_fallbacks() else 0,
        )
        depth = _queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "muster_task_queue_depth",
                "Tasks waiting in the paging and ingest queues.",
                value=depth,
            )


def _ingest_backlog():
    """Accepted requests not processed yet, and how long the oldest has waited."""
    try:
        backlog = pending_requests().aggregate(n=Count("id"), oldest=Min("received_at"))
    except DatabaseError:
        return
    yield GaugeMetricFamily(
        "muster_ingest_pending_requests",
        "Accepted ingest requests waiting to be processed.",
        value=backlog["n"],
    )
    oldest = backlog["oldest"]
    yield GaugeMetricFamily(
        "muster_ingest_lag_seconds",
        "How long the oldest pending ingest request has waited (0: none waits).",
        value=0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds()),
    )


def _queue_depth() -> int | None:
    """Tasks waiting in the queues of paging and ingest (the bot's posts wait by design)."""
    try:
        with _broker_connection() as conn:
            return sum(_waiting(conn, name) for name in queues.PAGING_AND_INGEST)
    except Exception:  # an unreachable broker: no figure rather than a 500
        return None


def _waiting(conn, queue: str) -> int:
    try:
        return conn.default_channel.queue_declare(queue, passive=True).message_count
    except ChannelError:  # not declared yet: nothing was ever sent or consumed
        return 0


_STATE = StateCollector()


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Refuse a scrape without MUSTER_METRICS_TOKEN, which production must set: 403 while it is
    unset (metrics name integrations and services, and count incidents), 401 without it."""
    token = settings.METRICS_TOKEN
    if not token:
        if not settings.DATABASE_URL:
            return None  # the embedded mode: loopback only, nothing to hide from its one user
        return HttpResponse(
            "/metrics is closed: set MUSTER_METRICS_TOKEN, and have the scraper send "
            "`Authorization: Bearer <token>` (docs/deploying/health.md)\n",
            status=403,
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes: compare_digest refuses str holding anything but ASCII (a header may hold Latin-1).
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.encode()
    ):
        response = HttpResponse("metrics need a bearer token\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


def metrics(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    started = time.monotonic()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    state = CollectorRegistry()
    state.register(_STATE)
    output += generate_latest(state)
    output += (
        b"# HELP muster_metrics_scrape_seconds Time to produce these metrics.\n"
        b"# TYPE muster_metrics_scrape_seconds gauge\n"
        + f"muster_metrics_scrape_seconds {time.monotonic() - started:.6f}\n".encode()
    )
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)

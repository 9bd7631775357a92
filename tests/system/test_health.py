"""/healthz, /readyz and /metrics against the real PostgreSQL and Redis of `./musterctl test`."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models.functions import Now
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from alerts.models import Integration, Kind
from incidents.models import Service
from muster import tasks
from muster.celery import app as celery_app
from muster.models import Heartbeat
from muster_services import free_port
from tests.helpers.api import METRICS_AUTH
from tests.helpers.ingest import results_of
from tests.helpers.system import require_postgresql


@pytest.fixture(autouse=True)
def _real_services():
    require_postgresql()
    assert settings.REDIS_URL and celery_app.conf.broker_url.startswith("redis://"), (
        "the broker check must reach a real Redis: run ./musterctl test"
    )


@pytest.fixture
def dead_broker():
    """Point the Celery app at a loopback port nothing listens on; restore it afterwards."""
    before = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        yield celery_app.conf.broker_url
    finally:
        celery_app.conf.broker_url = before


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse Prometheus text (failing on malformed output) into {(name, labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _age_the_tick(seconds: float) -> None:
    """Make the tick's heartbeat `seconds` old, by the database's clock."""
    tasks.record_tick()
    Heartbeat.objects.filter(name=tasks.TICK_HEARTBEAT).update(
        at=Now() - timedelta(seconds=seconds)
    )


@pytest.mark.django_db
def test_a_worker_needs_the_beat_tick_and_is_ready_once_it_ran(client):
    response = client.get("/readyz?role=worker")
    assert response.status_code == 503
    body = response.json()
    # The database and the broker answered; only the tick is missing.
    assert body["problems"] == ["beat tick: never seen"]
    assert (body["role"], body["tick_age_seconds"]) == ("worker", None)

    tasks.tick()

    response = client.get("/readyz?role=worker")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["problems"]) == ("ok", [])
    assert 0 <= body["tick_age_seconds"] < 5


@pytest.mark.django_db
def test_a_web_node_is_ready_with_the_database_alone(client, dead_broker):
    # No tick ever ran and the broker is down: a web node still takes requests.
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["role"], body["problems"]) == ("ok", "web", [])
    assert body["tick_age_seconds"] is None  # reported, never failed on
    assert client.get("/readyz?role=web").status_code == 200
    _age_the_tick(3600)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["tick_age_seconds"] >= 3600


@pytest.mark.django_db
def test_an_unknown_role_is_a_400_in_the_json_error_shape(client):
    response = client.get("/readyz?role=beat")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "status": 400,
            "message": "unknown role 'beat'",
            "problems": ["role: one of web, worker"],
        }
    }


@pytest.mark.django_db
def test_a_worker_is_refused_a_tick_older_than_the_limit(client):
    limit = settings.READY_TICK_MAX_AGE_SECONDS
    _age_the_tick(limit + 5)

    response = client.get("/readyz?role=worker")

    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("beat tick: last seen ") and f"(limit {limit}s)" in problem
    assert client.get("/readyz").status_code == 200  # the web role does not care


@pytest.mark.django_db
def test_a_flushed_redis_does_not_make_a_ticking_worker_look_dead(client):
    tasks.tick()
    assert client.get("/readyz?role=worker").status_code == 200

    # This test worker's whole Redis database (cache and broker): FLUSHALL would be the same
    # here, and would also wipe the other parallel test workers' databases.
    Redis.from_url(settings.REDIS_URL).flushdb()

    response = client.get("/readyz?role=worker")
    assert response.status_code == 200, response.json()
    assert 0 <= response.json()["tick_age_seconds"] < 5
    tasks.tick()  # the tick runs on after the flush, and says so
    assert client.get("/readyz?role=worker").status_code == 200


@pytest.mark.django_db
def test_a_worker_names_an_unreachable_broker_and_answers_promptly(client, dead_broker):
    tasks.tick()

    started = time.monotonic()
    response = client.get("/readyz?role=worker")
    took = time.monotonic() - started

    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("broker: ") and "refused" in problem.lower(), problem
    assert took < 2, f"/readyz took {took:.1f}s with the broker down"
    # ...and /metrics still answers, without the queue depth it cannot know.
    started = time.monotonic()
    response = client.get("/metrics", **METRICS_AUTH)
    assert response.status_code == 200
    assert time.monotonic() - started < 2
    assert "muster_task_queue_depth" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_and_metrics_answer_when_all_of_redis_is_down(client, dead_broker, settings):
    # In production one Redis is broker and cache; the tick's heartbeat is in the database.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": dead_broker,
        }
    }
    tasks.tick()

    started = time.monotonic()
    assert client.get("/readyz").status_code == 200
    response = client.get("/readyz?role=worker")

    assert response.status_code == 503
    problems = response.json()["problems"]
    assert [p.split(":")[0] for p in problems] == ["broker"], problems
    assert time.monotonic() - started < 3
    response = client.get("/metrics", **METRICS_AUTH)
    assert response.status_code == 200
    samples = metric_samples(response.content.decode())
    assert ("muster_open_incidents", (("status", "triggered"),)) in samples  # the database
    assert 0 <= samples[("muster_tick_lag_seconds", ())] < 5  # the database has it too


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "args", "ready_without_tick"),
    [("ready", [], True), ("ready", ["--role", "worker"], False), ("muster_ready", [], False)],
)
def test_the_ready_command_exits_1_when_not_ready_for_its_role(command, args, ready_without_tick):
    def run() -> tuple[int, dict]:
        out = StringIO()
        try:
            call_command(command, *args, stdout=out)
            return 0, json.loads(out.getvalue())
        except CommandError as exc:
            return exc.returncode, json.loads(out.getvalue())

    code, report = run()
    assert (code, report["status"]) == ((0, "ok") if ready_without_tick else (1, "unavailable"))
    tasks.tick()
    assert run()[0] == 0


def test_the_ready_command_refuses_an_unknown_role():
    with pytest.raises(CommandError, match="invalid choice: 'beat'"):
        call_command("ready", "--role", "beat")


@pytest.mark.django_db(transaction=True)
def test_metrics_count_incidents_and_show_the_tick_lag(client):
    service = Service.objects.create(name="metrics-probe")
    integration = Integration.objects.create(name="probe", kind=Kind.GENERIC, service=service)
    opened_key = ("muster_incidents_opened_total", (("service", "metrics-probe"),))
    before = metric_samples(client.get("/metrics", **METRICS_AUTH).content.decode())
    assert before[("muster_tick_lag_seconds", ())] == -1  # the tick never ran

    response = client.post(
        integration.ingest_path,
        {"summary": "Disk full on db-1", "severity": "critical"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert results_of(response)[0]["action"] == "opened"
    tasks.tick()

    response = client.get("/metrics", **METRICS_AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    after = metric_samples(response.content.decode())
    assert after[opened_key] == before.get(opened_key, 0) + 1
    assert after[("muster_open_incidents", (("status", "triggered"),))] == 1
    assert after[("muster_open_incidents", (("status", "acknowledged"),))] == 0
    assert 0 <= after[("muster_tick_lag_seconds", ())] < 5
    assert after[("muster_alerts_received_total", (("integration", "probe"),))] >= 1
    assert ("muster_task_queue_depth", ()) in after  # the live Redis answers

    tasks.tick.delay()  # no worker runs in the tests: it waits in Redis, in the paging queue

    waiting = metric_samples(client.get("/metrics", **METRICS_AUTH).content.decode())
    assert waiting[("muster_task_queue_depth", ())] == after[("muster_task_queue_depth", ())] + 1


@pytest.mark.django_db
def test_metrics_want_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape")
    assert response.status_code == 200
    assert b"muster_open_incidents" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer s3crét-scrape", "Bearer \u00ff\u00fe", "Bearer ü"])
def test_a_token_that_is_not_ascii_is_refused_not_a_500(client, settings, header):
    # Review L11: compare_digest(str, str) raised TypeError for anything but ASCII.
    settings.METRICS_TOKEN = "s3cret-scrape"
    assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == 401


@pytest.mark.django_db
def test_production_without_a_metrics_token_closes_metrics_saying_why(client, settings):
    # Review L7: /metrics names integrations and services; production must not serve it to all.
    settings.DATABASE_URL = "postgres://muster@db.example.com/muster"
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"set MUSTER_METRICS_TOKEN" in response.content
    assert b"muster_" not in response.content
    # The embedded mode (no DATABASE_URL) serves it on loopback without a token.
    settings.DATABASE_URL = ""
    assert client.get("/metrics").status_code == 200

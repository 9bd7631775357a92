"""/healthz, /readyz and /metrics against the real PostgreSQL and Redis of `./musterctl test`."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import Integration, Kind
from incidents.models import Service
from muster import tasks
from muster.celery import app as celery_app
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


@pytest.mark.django_db
def test_readyz_needs_the_beat_tick_and_passes_once_it_ran(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    # The database and the broker answered; only the tick is missing.
    assert body["problems"] == ["beat tick: never seen"]
    assert body["tick_age_seconds"] is None

    tasks.tick()

    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["problems"]) == ("ok", [])
    assert 0 <= body["tick_age_seconds"] < 5


@pytest.mark.django_db
def test_readyz_refuses_a_tick_older_than_the_limit(client):
    limit = settings.READY_TICK_MAX_AGE_SECONDS
    cache.set(tasks.LAST_TICK_KEY, time.time() - limit - 5, timeout=None)

    response = client.get("/readyz")

    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("beat tick: last seen ") and f"(limit {limit}s)" in problem


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker_and_answers_promptly(client, dead_broker):
    tasks.tick()  # the tick writes to the cache, which stays on the live Redis

    started = time.monotonic()
    response = client.get("/readyz")
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
    # In production one Redis is broker and cache: the tick's heartbeat is unreadable too.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": dead_broker,
        }
    }

    started = time.monotonic()
    response = client.get("/readyz")

    assert response.status_code == 503
    problems = response.json()["problems"]
    assert [p.split(":")[0] for p in problems] == ["broker", "cache"], problems
    assert time.monotonic() - started < 3
    response = client.get("/metrics", **METRICS_AUTH)
    assert response.status_code == 200
    samples = metric_samples(response.content.decode())
    assert ("muster_open_incidents", (("status", "triggered"),)) in samples  # the database
    assert ("muster_tick_lag_seconds", ()) not in samples  # unknown, not "never"


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

    tasks.tick.delay()  # no worker runs in the tests: it waits in Redis

    after = metric_samples(client.get("/metrics", **METRICS_AUTH).content.decode())
    assert after[("muster_task_queue_depth", ())] >= 1


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

"""Runbook actions against a real HTTP endpoint on loopback: what is sent, and what is recorded."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core import slots
from incidents.models import EntryKind, Service
from runbooks import actions
from runbooks.actions import ActionBusy, ActionError, ActionRefused, request_run
from runbooks.models import ActionRun, RunStatus
from runbooks.tasks import run_action
from tests.helpers.celery_tasks import SentTask, named, sent_tasks
from tests.helpers.slots import all_slots_taken, asked_again_in

LABELS = {"alertname": "DiskFull", "instance": "db-1:9100", "team": "db"}


def _entries(incident) -> list[str]:
    return list(
        incident.timeline.filter(kind=EntryKind.ACTION)
        .order_by("id")
        .values_list("message", flat=True)
    )


def test_a_run_sends_the_payload_templated_from_labels_to_the_configured_url(
    endpoint, make_action, make_incident, bob
):
    action = make_action(
        endpoint.url("/ok/job/restart?token=s3cret"),
        headers={"Authorization": "Bearer admin-set"},
    )
    incident = make_incident(LABELS)

    run = request_run(action, incident, bob)
    assert run.status == RunStatus.PENDING
    assert _entries(incident) == [
        f"bob started action restart-db: POST 127.0.0.1:{endpoint.base.rsplit(':', 1)[1]}"
        "/ok/job/restart"
    ]
    assert run_action(run.pk) == RunStatus.SUCCEEDED  # the Celery task, called directly

    (sent,) = endpoint.received
    assert (sent.method, sent.path) == ("POST", "/ok/job/restart?token=s3cret")
    assert sent.json() == {"host": "db-1:9100", "incident": incident.number, "by": "bob"}
    assert sent.headers["Authorization"] == "Bearer admin-set"
    assert sent.headers["Content-Type"] == "application/json; charset=utf-8"
    assert sent.headers["Idempotency-Key"] == f"muster-action-run-{run.pk}"
    run.refresh_from_db()
    assert (run.status, run.http_status) == (RunStatus.SUCCEEDED, 200)
    assert run.response_excerpt == '{"ok": true, "build": 17}'
    assert run.started_at <= run.finished_at
    # The timeline is read by observers: the answer's excerpt stays on the run.
    assert _entries(incident)[-1] == "action restart-db succeeded: HTTP 200"


def test_labels_never_reach_the_url_or_headers(endpoint, make_action, make_incident, alice):
    action = make_action(endpoint.url("/ok/fixed"), method="PUT", headers={"X-Team": "db"})
    hostile = {
        "instance": "evil.example/../../admin?x=1#",
        "team": "db\r\nX-Injected: 1",
    }
    incident = make_incident(hostile)
    run_action(request_run(action, incident, alice).pk)
    (sent,) = endpoint.received
    assert (sent.method, sent.path) == ("PUT", "/ok/fixed")
    assert sent.headers["X-Team"] == "db"
    assert "X-Injected" not in sent.headers
    assert sent.json()["host"] == hostile["instance"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://{{labels.instance}}/restart", "never templated"),
        ("https://jenkins.example.com/job/{labels.job}", "never templated"),
        ("ftp://files.example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https:///no-host", "http:// or https://"),
        ("http://jenkins:99999/x", "not valid"),
        ("http://jenkins example/x", "spaces"),
        ("https://jenkins/x#frag", "fragment"),
    ],
)
def test_only_fixed_absolute_http_urls_are_accepted(url, fragment):
    with pytest.raises(ActionError, match=fragment):
        actions.check_url(url)


def test_an_internal_hostname_is_a_fine_url():
    assert actions.check_url("http://jenkins:8080/job/x/build") == "http://jenkins:8080/job/x/build"


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Host": "evil"}, "set by Muster"),
        ({"X-A": "one\r\nX-B: two"}, "line breaks"),
        ({"X-A": "{{labels.instance}}"}, "never templated"),
        ({"Bad Name": "x"}, "not a valid header name"),
        ({"X-A": 1}, "must be a string"),
        (["X-A"], "must be an object"),
    ],
)
def test_headers_are_fixed_values_only(headers, fragment):
    with pytest.raises(ActionError, match=fragment):
        actions.check_headers(headers)


def test_an_endpoint_slower_than_the_timeout_is_recorded_as_timed_out(
    endpoint, make_action, make_incident, bob
):
    action = make_action(endpoint.url("/slow?seconds=4"), timeout_seconds=1)
    incident = make_incident(LABELS)
    run = request_run(action, incident, bob)
    started = time.monotonic()
    assert run_action(run.pk) == RunStatus.TIMED_OUT
    assert time.monotonic() - started < 2.5
    run.refresh_from_db()
    assert run.status == RunStatus.TIMED_OUT
    assert run.http_status is None
    assert "no answer within 1 s" in run.error
    assert _entries(incident)[-1].startswith("action restart-db timed out: no answer within 1 s")


def test_the_timeout_is_a_hard_deadline_even_for_an_endpoint_that_drips(
    endpoint, make_action, make_incident, bob
):
    # Each byte arrives well within the socket timeout, but the whole answer takes ~8 s.
    action = make_action(endpoint.url("/drip"), timeout_seconds=1)
    run = request_run(action, make_incident(LABELS), bob)
    started = time.monotonic()
    assert run_action(run.pk) == RunStatus.TIMED_OUT
    assert time.monotonic() - started < 2.5


def test_http_500_is_a_failure_with_the_start_of_the_answer_on_the_run(
    endpoint, make_action, make_incident, bob
):
    action = make_action(endpoint.url("/fail"))
    incident = make_incident(LABELS)
    run = request_run(action, incident, bob)
    assert run_action(run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert (run.http_status, run.response_excerpt) == (500, "boom: the job failed")
    assert _entries(incident)[-1] == "action restart-db failed: HTTP 500"  # not on the timeline


def test_redirects_are_not_followed(endpoint, make_action, make_incident, bob):
    action = make_action(endpoint.url("/redirect"))
    incident = make_incident(LABELS)
    run = request_run(action, incident, bob)
    assert run_action(run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert run.http_status == 302
    assert "redirects are not followed (to elsewhere.invalid/steal)" in run.error
    assert len(endpoint.received) == 1


def test_only_the_first_2_kib_of_an_answer_are_kept(endpoint, make_action, make_incident, bob):
    run = request_run(make_action(endpoint.url("/big")), make_incident(LABELS), bob)
    run_action(run.pk)
    run.refresh_from_db()
    assert run.response_excerpt == "x" * 2048


def test_a_closed_port_is_a_failure_saying_so(make_action, make_incident, bob):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    incident = make_incident(LABELS)
    run = request_run(make_action(f"http://127.0.0.1:{port}/x"), incident, bob)
    assert run_action(run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert run.error == "connection refused"
    assert _entries(incident)[-1] == "action restart-db failed: connection refused"


def test_an_observer_may_not_run_an_action_and_nothing_is_recorded(
    make_action, make_incident, charlie
):
    incident = make_incident(LABELS)
    with pytest.raises(ActionRefused) as refused:
        request_run(make_action("http://127.0.0.1:9/x"), incident, charlie)
    assert str(refused.value) == "Running restart-db needs the responder role; charlie is observer."
    assert not ActionRun.objects.exists()
    assert _entries(incident) == []


def test_an_admin_only_action_refuses_a_responder(make_action, make_incident, bob, alice):
    action = make_action("http://127.0.0.1:9/x", role="admin")
    incident = make_incident(LABELS)
    with pytest.raises(ActionRefused, match="needs the admin role; bob is responder"):
        request_run(action, incident, bob)
    assert request_run(action, incident, alice).status == RunStatus.PENDING


def test_an_action_of_another_services_runbook_does_not_run(
    make_action, make_runbook, make_incident, bob
):
    search = Service.objects.create(name="search")
    action = make_action("http://127.0.0.1:9/x", runbook=make_runbook("Search", service=search))
    with pytest.raises(ActionError, match=r"incident #\d+ is on checkout"):
        request_run(action, make_incident(LABELS), bob)


def test_a_payload_naming_a_missing_label_refuses_to_run(make_action, make_incident, bob):
    incident = make_incident({"alertname": "DiskFull"})
    with pytest.raises(ActionError, match=r"needs labels\.instance"):
        request_run(make_action("http://127.0.0.1:9/x"), incident, bob)
    assert not ActionRun.objects.exists()


def test_a_second_run_waits_for_the_first(make_action, make_incident, bob, alice):
    action = make_action("http://127.0.0.1:9/x")
    incident = make_incident(LABELS)
    request_run(action, incident, bob)
    with pytest.raises(ActionBusy, match=r"already pending .*started by bob"):
        request_run(action, incident, alice)


def test_a_task_delivered_twice_calls_once(endpoint, make_action, make_incident, bob):
    run = request_run(make_action(endpoint.url("/ok")), make_incident(LABELS), bob)
    assert run_action(run.pk) == RunStatus.SUCCEEDED
    assert run_action(run.pk) is None
    assert run_action(999_999) is None
    assert len(endpoint.received) == 1


def test_a_run_waits_while_the_workers_action_threads_wait_on_endpoints(
    endpoint, make_action, make_incident, bob, settings
):
    settings.ACTION_THREADS = 1
    run = request_run(make_action(endpoint.url("/ok")), make_incident(LABELS), bob)
    before = datetime.now().astimezone()
    with all_slots_taken("ACTION_THREADS", 1), sent_tasks() as sent:
        assert run_action(run.pk) is None
    run.refresh_from_db()
    assert (run.status, endpoint.received) == (RunStatus.PENDING, [])
    [again] = named(sent, "runbooks.run_action")
    assert again.args == (run.pk,)
    assert 0 < asked_again_in(again, before) <= slots.RETRY_SECONDS + 1

    assert run_action(run.pk) == RunStatus.SUCCEEDED  # asked again, with a thread free
    assert len(endpoint.received) == 1

    with all_slots_taken("ACTION_THREADS", 1), sent_tasks() as sent:
        assert run_action(run.pk) is None  # a late retry of a finished run: nothing to ask
    assert sent == []


def test_a_deleted_action_fails_its_pending_run(make_action, make_incident, bob):
    action = make_action("http://127.0.0.1:9/x")
    run = request_run(action, make_incident(LABELS), bob)
    action.delete()
    assert run_action(run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert (run.action_name, run.error) == ("restart-db", "the action was deleted before it ran")


def run_sent(sent: list[SentTask]) -> None:
    """Run the action runs sent to the broker, as a worker takes them."""
    for task in named(sent, "runbooks.run_action"):
        run_action(*task.args)


def test_the_run_is_enqueued_after_commit_and_the_task_records_the_result(
    endpoint, make_action, make_incident, bob, django_capture_on_commit_callbacks
):
    action = make_action(endpoint.url("/ok"))
    incident = make_incident(LABELS)
    with sent_tasks() as sent:
        with django_capture_on_commit_callbacks(execute=True):
            run = request_run(action, incident, bob)
            assert sent == []  # nothing is enqueued before the commit
        assert named(sent, "runbooks.run_action") == [SentTask("runbooks.run_action", (run.pk,))]
    assert endpoint.received == []
    run_sent(sent)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert len(endpoint.received) == 1


def test_the_sweep_restarts_forgotten_runs_and_closes_lost_ones(
    endpoint, make_action, make_incident, bob
):
    incident = make_incident(LABELS)
    forgotten = request_run(make_action(endpoint.url("/ok")), incident, bob)
    ancient = request_run(make_action(endpoint.url("/ok"), name="flush-cache"), incident, bob)
    lost = request_run(make_action(endpoint.url("/ok"), name="vacuum"), incident, bob)
    now = timezone.now()
    ActionRun.objects.filter(pk=forgotten.pk).update(created_at=now - timedelta(minutes=1))
    ActionRun.objects.filter(pk=ancient.pk).update(created_at=now - timedelta(hours=1))
    ActionRun.objects.filter(pk=lost.pk).update(
        status=RunStatus.RUNNING, started_at=now - timedelta(minutes=5)
    )

    with sent_tasks() as sent:
        assert actions.sweep_runs() == 2
    assert [task.args for task in named(sent, "runbooks.run_action")] == [(forgotten.pk,)]
    run_sent(sent)

    statuses = dict(ActionRun.objects.values_list("pk", "status"))
    assert statuses == {
        forgotten.pk: RunStatus.SUCCEEDED,
        ancient.pk: RunStatus.FAILED,
        lost.pk: RunStatus.FAILED,
    }
    assert len(endpoint.received) == 1
    assert "may or may not have acted" in ActionRun.objects.get(pk=lost.pk).error
    assert "never picked up" in ActionRun.objects.get(pk=ancient.pk).error


def test_a_form_action_posts_url_encoded_fields(endpoint, make_action, make_incident, bob):
    action = make_action(
        endpoint.url("/ok/buildWithParameters"),
        content_type="application/x-www-form-urlencoded",
        payload_template='{"HOST": "{{labels.instance}}", "INCIDENT": "{{incident.number}}"}',
    )
    incident = make_incident({**LABELS, "instance": "db-1&evil=1"})
    run_action(request_run(action, incident, bob).pk)
    (sent,) = endpoint.received
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert sent.body.decode() == f"HOST=db-1%26evil%3D1&INCIDENT={incident.number}"

"""Real Celery workers SIGKILLed at each crash point of a delivery: no page twice, no step lost.

Each test runs `celery -A muster worker --pool solo` as a subprocess on the test's PostgreSQL
database and Redis, with Twilio's API served by tests/fakes/twilio.py in this process. The worker
is killed with SIGKILL — no cleanup, no exception handlers — at a named point
(`MUSTER_FAULT`, core/faults.py) or while the fake holds its request open. A new worker
without the fault is started, and this process plays Celery beat: it calls the tick
(`muster.tasks.tick`: run_due_escalations, then sweep_outbox) a few times a second. Every
claim is counted where it matters, at the fake Twilio:

- died after claiming, before the provider was called: the sweep requeues the page and it is
  sent exactly once;
- died while Twilio had the request, or after Twilio accepted it: it is never sent again, it
  becomes `unknown`, and the policy's next step still fires on time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Role, User
from incidents import opening
from incidents.models import Incident, Service, Source
from muster.celery import app as celery_app
from muster.tasks import tick
from oncall.models import (
    ContactKind,
    ContactMethod,
    Escalation,
    EscalationPolicy,
    EscalationStatus,
    EscalationStep,
    NotificationRule,
    Page,
    PageStatus,
    ServicePolicy,
)
from tests.fakes.twilio import FakeTwilio
from tests.helpers.system import (
    database_url_of_tests,
    kill_group,
    require_postgresql,
    start_logged,
    wait_for,
)

TWILIO_SID = "AC" + "c0" * 16
TWILIO_TOKEN = "crash-test-auth-token"
OUR_NUMBER = "+15005550006"
BOB_PHONE = "+14155550201"
ALICE_PHONE = "+14155550202"

REQUEUE_AFTER = 1  # PAGE_REQUEUE_AFTER_SECONDS, for the worker and for this process's sweep
SENDING_DEADLINE = 2  # PAGE_SENDING_DEADLINE_SECONDS
TICK_EVERY = 0.2  # seconds between ticks, as beat would (about every second) but quicker
STEP_2_AFTER = 3.0  # seconds from when the test arranges it to when step 2 is due
ON_TIME = 2.0  # step 2's SMS reaches Twilio within this many seconds of being due
SETTLE = REQUEUE_AFTER + SENDING_DEADLINE + 1.0  # ticking on, to see that nothing is resent
WORKER_READY_TIMEOUT = 60.0
CRASH_TIMEOUT = 30.0  # from opening the incident to the worker dying at its fault
OUTCOME_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0


# --- the worker processes --------------------------------------------------------------------


@dataclass
class Worker:
    """A `celery worker` subprocess and its log."""

    process: subprocess.Popen
    log_path: Path
    fault: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def diagnostics(self) -> str:
        return f"worker (MUSTER_FAULT={self.fault or '-'}) log, end:\n{self.log()[-4000:]}"

    def wait_ready(self) -> None:
        wait_for(
            lambda: " ready." in self.log() or self.process.poll() is not None,
            timeout=WORKER_READY_TIMEOUT,
            interval=0.05,
            what="the Celery worker to be ready",
        )
        assert self.process.poll() is None, f"the worker exited\n{self.diagnostics()}"

    def wait_killed(self, timeout: float = CRASH_TIMEOUT) -> None:
        """Wait for the worker to die of SIGKILL (its fault point, or the test's kill)."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker is still alive after {timeout:.0f}s\n{self.diagnostics()}")
        assert self.process.returncode == -signal.SIGKILL, (
            f"the worker exited with {self.process.returncode}, not SIGKILL\n{self.diagnostics()}"
        )

    def kill(self) -> None:
        """SIGKILL it, the way a machine dies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.wait_killed(KILL_TIMEOUT)


def _worker_env(fake: FakeTwilio, fault: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MUSTER_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="muster.settings",
        DATABASE_URL=database_url_of_tests(),
        # This process's Redis, database index included (one per xdist worker, so parallel
        # test processes never take each other's tasks).
        REDIS_URL=settings.REDIS_URL,
        TWILIO_ACCOUNT_SID=TWILIO_SID,
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        TWILIO_FROM_NUMBER=OUR_NUMBER,
        TWILIO_API_BASE_URL=fake.url,
        MUSTER_PUBLIC_URL="http://127.0.0.1:9",  # status callbacks are not part of these tests
        MUSTER_PAGE_REQUEUE_AFTER_SECONDS=str(REQUEUE_AFTER),
        MUSTER_PAGE_SENDING_DEADLINE_SECONDS=str(SENDING_DEADLINE),
        # SMS go to the Twilio fake; email has no server here, on purpose.
        MUSTER_ALLOW_CONSOLE_DELIVERY="1",
        PYTHONUNBUFFERED="1",
    )
    if fault:
        env["MUSTER_FAULT"] = fault
    return env


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN) as fake:
        yield fake


@pytest.fixture
def start_worker(transactional_db, fake, tmp_path) -> Iterator[Callable[[str], Worker]]:
    """Start a real worker (pool solo: the task runs in the process a fault kills); every
    worker started is SIGKILLed at the end, before the database is flushed."""
    started: list[Worker] = []

    def start(fault: str = "") -> Worker:
        log_path = tmp_path / f"worker-{len(started)}.log"
        process = start_logged(
            [
                *(sys.executable, "-m", "celery", "-A", "muster", "worker"),
                *("--pool", "solo", "--concurrency", "1", "-Q", "paging,celery"),
                *("--hostname", f"crash{len(started)}-{os.getpid()}@%h", "--loglevel", "INFO"),
                *("--without-heartbeat", "--without-mingle", "--without-gossip"),
            ],
            _worker_env(fake, fault),
            log_path,
        )
        worker = Worker(process, log_path, fault)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            kill_group(worker.process, KILL_TIMEOUT)


# --- the scenario ----------------------------------------------------------------------------


def _reachable(user: User, number: str) -> None:
    method = ContactMethod.objects.create(
        user=user, kind=ContactKind.SMS, address=number, verified_at=timezone.now()
    )
    NotificationRule.objects.create(
        user=user, urgency="high", delay_minutes=0, contact_method=method
    )


@dataclass
class World:
    service: Service
    bob: User
    alice: User


@pytest.fixture
def world(transactional_db, settings, fake) -> World:
    """Step 1 texts bob; a minute later step 2 texts alice; no repeat. This process's
    settings match the worker's: Twilio (the fake), and the short sweep windows."""
    require_postgresql()
    assert celery_app.conf.broker_url == settings.REDIS_URL, celery_app.conf.broker_url
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = OUR_NUMBER
    settings.TWILIO_API_BASE_URL = fake.url
    settings.PAGE_REQUEUE_AFTER_SECONDS = REQUEUE_AFTER
    settings.PAGE_SENDING_DEADLINE_SECONDS = SENDING_DEADLINE
    bob = User.objects.create_user("bob", "bob@example.com", "pw", role=Role.RESPONDER)
    alice = User.objects.create_user("alice", "alice@example.com", "pw", role=Role.RESPONDER)
    _reachable(bob, BOB_PHONE)
    _reachable(alice, ALICE_PHONE)
    service = Service.objects.create(name="checkout")
    policy = EscalationPolicy.objects.create(name="checkout primary", repeat=0)
    for position, person in enumerate((bob, alice)):
        step = EscalationStep.objects.create(policy=policy, position=position, delay_minutes=1)
        step.users.add(person)
    ServicePolicy.objects.create(service=service, policy=policy)
    return World(service, bob, alice)


def open_incident(world: World) -> Incident:
    """Open a SEV1 incident: on commit, oncall's receiver enqueues start_escalation, which
    the worker runs; it fires step 1 and enqueues the delivery of bob's page."""
    return opening.open_incident(
        world.service, title="Disk full on db-1", severity=1, source=Source.ALERT
    )


def texts_to(fake: FakeTwilio, number: str) -> list:
    """Every Messages request the fake received for `number`, answered or not."""
    return [
        r
        for r in fake.requests
        if r.method == "POST"
        and r.path.endswith("/Messages.json")
        and r.params.get("To") == [number]
    ]


def the_page(incident: Incident, person: User) -> Page:
    [page] = Page.objects.filter(incident=incident, person=person)
    return page


def tick_until(
    condition: Callable[[], object], *, timeout: float, what: str, fake: FakeTwilio | None = None
) -> object:
    """Tick as beat would, until `condition` holds; with `fake`, fail as soon as bob is texted
    a second time."""

    def ticked() -> object:
        tick()
        if fake is not None:
            never_twice(fake)
        return condition()

    return wait_for(ticked, timeout=timeout, interval=TICK_EVERY, what=what)


def step_2_due_soon(incident: Incident) -> float:
    """Make step 2 due STEP_2_AFTER seconds from now (its policy says a minute: the worker's
    clock cannot be moved); return when, as a Unix time."""
    escalation = Escalation.objects.get(incident=incident)
    assert escalation.status == EscalationStatus.ACTIVE and escalation.step == 1, escalation
    due = timezone.now() + timedelta(seconds=STEP_2_AFTER)
    Escalation.objects.filter(pk=escalation.pk).update(next_at=due)
    return due.timestamp()


def step_2_fires_on_time(fake: FakeTwilio, incident: Incident, world: World, due: float) -> None:
    """Step 2 is not held up by step 1's fate: alice's SMS reaches Twilio once it is due."""
    [text] = tick_until(
        lambda: texts_to(fake, ALICE_PHONE),
        timeout=STEP_2_AFTER + OUTCOME_TIMEOUT,
        what="step 2's SMS to alice at the fake Twilio",
        fake=fake,
    )
    assert due <= text.received_at <= due + ON_TIME, (
        f"step 2 reached Twilio {text.received_at - due:+.2f}s from when it was due"
    )
    tick_until(
        lambda: the_page(incident, world.alice).status == PageStatus.SENT,
        timeout=OUTCOME_TIMEOUT,
        what="alice's page to be sent",
    )


def never_twice(fake: FakeTwilio) -> None:
    texts = texts_to(fake, BOB_PHONE)
    assert len(texts) <= 1, f"bob was texted {len(texts)} times: {texts}"


def settle(fake: FakeTwilio, seconds: float = SETTLE) -> None:
    """Keep ticking past every sweep window, so a page that would be sent again would be."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tick()
        never_twice(fake)
        time.sleep(TICK_EVERY)


def assert_each_step_reached_twilio_once(fake: FakeTwilio, incident: Incident) -> None:
    assert len(texts_to(fake, BOB_PHONE)) == 1, fake.requests
    assert len(texts_to(fake, ALICE_PHONE)) == 1, fake.requests
    assert len(fake.requests) == 2, fake.requests
    bodies = [m.body for m in fake.messages]
    assert all(f"#{incident.number}" in body for body in bodies), bodies
    escalation = Escalation.objects.get(incident=incident)
    assert escalation.status == EscalationStatus.DONE, escalation
    assert Page.objects.filter(incident=incident).count() == 2


# --- the crash points ------------------------------------------------------------------------


def test_a_worker_killed_after_claiming_is_sent_exactly_once(world, fake, start_worker):
    dying = start_worker("after_claim")
    incident = open_incident(world)
    dying.wait_killed()

    # Claimed and never handed to Twilio: nothing reached it.
    page = the_page(incident, world.bob)
    assert page.status == PageStatus.SENDING and page.handed_at is None, page.__dict__
    assert page.attempts == 1
    assert fake.requests == []

    start_worker()
    due = step_2_due_soon(incident)
    # After PAGE_REQUEUE_AFTER_SECONDS the sweep puts the page back in the queue and enqueues
    # it again; the new worker sends it.
    tick_until(
        lambda: the_page(incident, world.bob).status == PageStatus.SENT,
        timeout=OUTCOME_TIMEOUT,
        what="bob's page to be requeued and sent",
        fake=fake,
    )
    page.refresh_from_db()
    assert page.attempts == 2 and page.provider_id.startswith("SM"), page.__dict__
    assert [m.sid for m in fake.messages if m.to == BOB_PHONE] == [page.provider_id]

    step_2_fires_on_time(fake, incident, world, due)
    settle(fake)
    assert the_page(incident, world.bob).status == PageStatus.SENT
    assert_each_step_reached_twilio_once(fake, incident)


def assert_unknown_and_never_resent(fake: FakeTwilio, incident: Incident, world: World) -> None:
    """Twilio had bob's page and nobody knows what it did: never again, and it counts as failed."""
    page = the_page(incident, world.bob)
    assert page.status == PageStatus.UNKNOWN, page.__dict__
    assert page.handed_at is not None and page.attempts == 1, page.__dict__
    assert page.finished_at - page.handed_at >= timedelta(seconds=SENDING_DEADLINE)
    assert incident.timeline.filter(message__contains="outcome unknown").exists()
    # Bob has no other contact method to fall back to: counted as failed, the incident says
    # nobody could be paged at step 1 (and step 2 goes on regardless).
    incident.refresh_from_db()
    assert incident.unpaged
    assert incident.timeline.filter(message__contains="every page of level 1 failed").exists()


def test_a_worker_killed_while_twilio_holds_the_request_never_sends_twice(
    world, fake, start_worker
):
    hold = fake.hold_next()
    doomed = start_worker()
    incident = open_incident(world)
    assert hold.arrived.wait(CRASH_TIMEOUT), f"no request reached Twilio\n{doomed.diagnostics()}"
    doomed.kill()
    hold.release()  # the fake answers a connection nobody holds any more
    assert len(texts_to(fake, BOB_PHONE)) == 1
    page = the_page(incident, world.bob)
    assert page.status == PageStatus.SENDING and page.handed_at is not None, page.__dict__

    start_worker()
    due = step_2_due_soon(incident)
    tick_until(
        lambda: the_page(incident, world.bob).status == PageStatus.UNKNOWN,
        timeout=OUTCOME_TIMEOUT,
        what="bob's page to become unknown",
        fake=fake,
    )
    step_2_fires_on_time(fake, incident, world, due)
    settle(fake)
    assert_unknown_and_never_resent(fake, incident, world)
    assert_each_step_reached_twilio_once(fake, incident)


def test_a_worker_killed_after_twilio_accepted_never_sends_twice(world, fake, start_worker):
    dying = start_worker("after_send")
    incident = open_incident(world)
    dying.wait_killed()
    # Twilio accepted it (201, a message SID); the worker died before writing that down.
    [message] = fake.wait_for_messages(1, timeout=1)
    assert message.to == BOB_PHONE and [r.status for r in fake.requests] == [201]
    page = the_page(incident, world.bob)
    assert page.status == PageStatus.SENDING and page.provider_id == "", page.__dict__

    start_worker()
    due = step_2_due_soon(incident)
    tick_until(
        lambda: the_page(incident, world.bob).status == PageStatus.UNKNOWN,
        timeout=OUTCOME_TIMEOUT,
        what="bob's page to become unknown",
        fake=fake,
    )
    step_2_fires_on_time(fake, incident, world, due)
    settle(fake)
    assert_unknown_and_never_resent(fake, incident, world)
    assert_each_step_reached_twilio_once(fake, incident)


@contextlib.contextmanager
def incident_locked(incident: Incident) -> Iterator[None]:
    """Hold the incident's row lock from another connection (a long transaction elsewhere)."""
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                Incident.objects.locked().get(pk=incident.pk)
                locked.set()
                release.wait(OUTCOME_TIMEOUT)
        except BaseException as exc:  # reported in the test's thread
            failures.append(exc)
            locked.set()
        finally:
            connection.close()

    holder = threading.Thread(target=hold, name="incident-lock", daemon=True)
    holder.start()
    assert locked.wait(10) and not failures, failures
    try:
        yield
    finally:
        release.set()
        holder.join(10)
    assert not holder.is_alive() and not failures, failures


def test_a_worker_stalled_past_the_requeue_window_before_handing_over_never_sends_twice(
    world, fake, start_worker
):
    # Bob's page waits a minute (his rule's delay), so the worker is idle once step 1 fired.
    NotificationRule.objects.filter(user=world.bob).update(delay_minutes=1)
    start_worker()
    incident = open_incident(world)
    wait_for(
        lambda: Page.objects.filter(incident=incident, person=world.bob).exists(),
        timeout=CRASH_TIMEOUT,
        what="step 1 to create bob's page",
    )
    with incident_locked(incident):
        # Due now: the sweep enqueues it, the worker claims it and then waits for the
        # incident's lock — a delivery stalled between claim and hand-over (a lock held by a
        # long transaction, a GC pause, a suspended VM).
        Page.objects.filter(incident=incident, person=world.bob).update(send_after=timezone.now())
        tick_until(
            lambda: the_page(incident, world.bob).status == PageStatus.SENDING,
            timeout=OUTCOME_TIMEOUT,
            what="the worker to claim bob's page",
        )
        claimed = the_page(incident, world.bob)
        assert claimed.handed_at is None and claimed.attempts == 1
        # Claimed and not handed over past PAGE_REQUEUE_AFTER_SECONDS: the sweep takes it back
        # and enqueues it again, as it must for a worker that died there.
        tick_until(
            lambda: the_page(incident, world.bob).status == PageStatus.QUEUED,
            timeout=OUTCOME_TIMEOUT,
            what="the sweep to take the stalled claim back",
        )
        assert fake.requests == []
    # The stalled delivery wakes up: its claim is no longer its own, so it must not send.
    tick_until(
        lambda: the_page(incident, world.bob).status == PageStatus.SENT,
        timeout=OUTCOME_TIMEOUT,
        what="bob's page to be sent",
        fake=fake,
    )
    settle(fake)
    page = the_page(incident, world.bob)
    assert page.status == PageStatus.SENT and page.attempts == 2, page.__dict__
    assert [m.sid for m in fake.messages] == [page.provider_id]
    assert len(texts_to(fake, BOB_PHONE)) == 1

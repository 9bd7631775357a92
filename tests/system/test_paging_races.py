"""The tick firing a level while a verb acts on the same incident, on real PostgreSQL.

Every verb (and the stop, follow and escalate that follow them) locks the incident, then its
run. The tick used to lock the run first and then, through the foreign keys of the pages it
inserted, need the incident: with an acknowledgement's stop in between, PostgreSQL found a
deadlock and killed one of them (a lost stop, a 500 on escalate, a tick cut short).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from incidents import opening
from incidents.models import EntryKind, Incident, Source
from oncall import escalation
from oncall.models import Escalation, EscalationStatus, Page
from tests.helpers.system import require_postgresql
from tests.oncall.builders import make_person, make_policy, reachable


@pytest.mark.django_db(transaction=True)
def test_the_tick_never_deadlocks_with_a_verb_holding_the_incident(service):
    require_postgresql()
    bob, alice = make_person("bob"), make_person("alice")
    reachable(bob)
    reachable(alice)
    make_policy("checkout", {"users": [bob], "delay": 5}, {"users": [alice]}, service=service)
    incident = opening.open_incident(service, title="Disk full", severity=1, source="alert")
    escalation.follow(incident.timeline.get(kind=EntryKind.OPENED).pk)
    run = Escalation.objects.get(incident=incident)
    Escalation.objects.filter(pk=run.pk).update(next_at=timezone.now() - timedelta(seconds=1))

    holding = threading.Event()
    fired: list[object] = []
    failures: list[BaseException] = []

    def verb_in_flight() -> None:
        # What an acknowledgement's stop does: the incident, then its run.
        try:
            with transaction.atomic():
                Incident.objects.locked().get(pk=incident.pk)
                holding.set()
                done.wait(10)
                Escalation.objects.filter(pk=run.pk).update(
                    status=EscalationStatus.STOPPED, next_at=None
                )
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    def tick() -> None:
        try:
            holding.wait(10)
            fired.append(escalation.fire_escalation(run.pk))
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()
            connection.close()

    done = threading.Event()
    threads = [threading.Thread(target=verb_in_flight), threading.Thread(target=tick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    # The tick left the busy incident to the next tick rather than wait (or deadlock) on it.
    assert fired == [False]
    assert not Page.objects.filter(person=alice).exists()
    run.refresh_from_db()
    assert run.status == EscalationStatus.STOPPED
    # And a tick on a free incident fires as ever.
    other = opening.open_incident(service, title="CPU hot", severity=1, source=Source.ALERT)
    escalation.follow(other.timeline.get(kind=EntryKind.OPENED).pk)
    due = Escalation.objects.get(incident=other)
    Escalation.objects.filter(pk=due.pk).update(next_at=timezone.now() - timedelta(seconds=1))
    assert escalation.fire_escalation(due.pk) is True
    assert Page.objects.filter(person=alice, incident=other).exists()

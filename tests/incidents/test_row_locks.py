"""Locking an incident locks that incident, never its service.

`select_for_update()` with `select_related("service")` locks every joined row. Each action on
an incident then held its service's row: incidents of one service waited on each other, and the
sweep recovering one incident deadlocked against an alert processed for another (the soak's
"while locking tuple … in relation incidents_service").
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from incidents import opening, services
from incidents.models import Incident, Service, Source
from oncall import escalation

ROOT = Path(__file__).resolve().parents[2]
POSTGRESQL_ONLY = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has no row locks to hold"
)


def _service_row_is_free(service: Service) -> bool:
    """From another connection: can the service's row be locked at once?"""
    answer: list[bool] = []

    def probe() -> None:
        try:
            with transaction.atomic():
                Service.objects.select_for_update(nowait=True).get(pk=service.pk)
            answer.append(True)
        except DatabaseError:
            answer.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=10)
    return answer == [True]


@POSTGRESQL_ONLY
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "lock", [services._lock, escalation._lock], ids=["incident verbs", "escalation"]
)
def test_holding_an_incident_leaves_its_service_free(lock: Callable[[int], Incident]):
    service = Service.objects.create(name="Checkout")
    incident = opening.open_incident(service, title="Checkout is slow", source=Source.API)
    with transaction.atomic():
        locked = lock(incident.pk)
        assert locked.service == service  # still read along, in the same query
        assert _service_row_is_free(service)


@POSTGRESQL_ONLY
@pytest.mark.django_db(transaction=True)
def test_the_probe_sees_a_held_service_row():
    service = Service.objects.create(name="Checkout")
    with transaction.atomic():
        Service.objects.select_for_update().get(pk=service.pk)
        assert not _service_row_is_free(service)


def _chain(node: ast.AST) -> list[ast.Call]:
    """The calls of one method chain, outermost first: `a.b().c().d()` → d, c, b."""
    calls = []
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        calls.append(node)
        node = node.func.value
    return calls


def test_every_lock_that_reads_related_rows_names_the_rows_it_locks():
    """The guard for every other place: a locking query that joins names `of=("self",)`."""
    unnamed = set()
    for path in sorted(ROOT.glob("*/**/*.py")):
        if path.parts[len(ROOT.parts)] in {".venv", "tests", "bench", "node_modules"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = {call.func.attr: call for call in _chain(node)}
            lock = names.get("select_for_update")
            if lock and "select_related" in names and not any(k.arg == "of" for k in lock.keywords):
                unnamed.add(f"{path.relative_to(ROOT)}:{lock.lineno}")
    assert sorted(unnamed) == []


@pytest.mark.django_db
def test_a_slices_groups_open_incidents_are_found_in_id_order_and_closed_ones_left_out():
    """`lock_open_incidents` (its SQL written by hand): each group's open incident, across
    services, in id order; a resolved incident and a group without one are left out."""
    checkout, search = Service.objects.create(name="Checkout"), Service.objects.create(name="S")

    def opened(service: Service, group: str) -> Incident:
        return opening.open_incident(service, title=group, group_key=group, source=Source.API)

    a, b, c = opened(search, "a"), opened(checkout, "b"), opened(checkout, "c")
    closed = opened(checkout, "closed")
    services.resolve_incident(closed, by=None, source=Source.API)
    wanted = [(checkout.pk, "c"), (search.pk, "a"), (checkout.pk, "closed"), (checkout.pk, "b")]
    wanted += [(search.pk, "b"), (checkout.pk, "none"), (checkout.pk, "it's; -- odd")]

    with transaction.atomic():
        found = opening.lock_open_incidents(wanted)

    assert [i.pk for i in found] == [a.pk, b.pk, c.pk]
    assert [(i.service_id, i.group_key, i.status) for i in found] == [
        (search.pk, "a", "triggered"),
        (checkout.pk, "b", "triggered"),
        (checkout.pk, "c", "triggered"),
    ]
    assert found[0].triggered_at == a.triggered_at  # read back as the ORM reads it

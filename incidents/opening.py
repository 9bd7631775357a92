"""Opening incidents: the verb that opens one, and the ingest's find-or-open for a group key.

Incident numbers come from a counter row whose lock serializes the transactions that take them;
two transactions opening the same group meet at the partial unique index of open incidents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from core import json_rows
from core.compiled import Lookup
from core.text import one_line
from incidents.metrics import INCIDENTS_OPENED
from incidents.models import OPEN_STATUSES, Counter, EntryKind, Incident, Service, Status
from incidents.timeline import by_phrase, record


def next_incident_number() -> int:
    """Take the next incident number from its counter (its row lock serializes takers)."""
    table = connection.ops.quote_name(Counter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET value = value + 1 WHERE name = %s RETURNING value",  # noqa: S608
            ["incident"],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    try:
        with transaction.atomic():
            Counter.objects.create(name="incident", value=settings.INCIDENT_NUMBER_START)
        return settings.INCIDENT_NUMBER_START
    except IntegrityError:
        return next_incident_number()  # another transaction created it first


@transaction.atomic(savepoint=False)
def open_incident(
    service: Service,
    *,
    title: str,
    severity: int = 3,
    group_key: str = "",
    source: str,
    by: User | None = None,
    actor_name: str = "",
    data: dict[str, Any] | None = None,
) -> Incident:
    """Open a triggered incident on `service` and record it: in a transaction of its own, or in
    the caller's without a savepoint (a round trip each way; find_or_open_incident has one).
    """
    now = timezone.now()
    incident = Incident(
        number=next_incident_number(),
        title=one_line(title)[:1024],
        service=service,
        severity=severity,
        urgency=service.urgency_for(severity),
        status=Status.TRIGGERED,
        group_key=group_key,
        created_via=source,
        triggered_at=now,
    )
    json_rows.insert([incident])  # as create(), without compiling an INSERT each time
    record(
        incident,
        EntryKind.OPENED,
        message=f"Incident #{incident.number} opened on {service.name} by "
        f"{by_phrase(by, actor_name, source)}: {incident.title}",
        source=source,
        by=by,
        actor_name=actor_name,
        data={"severity": severity, "urgency": incident.urgency, **(data or {})},
        at=now,
    )
    transaction.on_commit(lambda: INCIDENTS_OPENED.labels(service.name).inc())
    return incident


def find_or_open_incident(
    service: Service,
    *,
    group_key: str,
    title: str,
    severity: int,
    source: str,
    actor_name: str = "",
) -> tuple[Incident, bool]:
    """Return the open incident of `service` for `group_key`, opening one if there is none.

    Must run inside a transaction. Two transactions racing to open the same group meet at the
    partial unique index; the loser takes the winner's incident.
    """
    found = _locked_open_incident(service, group_key)
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return (
                open_incident(
                    service,
                    title=title,
                    severity=severity,
                    group_key=group_key,
                    source=source,
                    actor_name=actor_name,
                ),
                True,
            )
    except IntegrityError:
        found = _locked_open_incident(service, group_key)
        if found is None:
            raise
        return found, False


def lock_open_incidents(groups: Iterable[tuple[int, str]]) -> list[Incident]:
    """Lock the open incidents of these (service id, group key) groups in one statement, in id
    order (one order for every caller, so two that share incidents cannot deadlock on them);
    a group without one is left out. Must run inside a transaction.

    In SQL written here, as the ORM would write it (`status IN (…) AND ((service_id = … AND
    group_key IN (…)) OR …)`, index lookups whatever the table's size): compiling it through the
    ORM, a new query for every slice of a batch, was 7% of the worker's CPU in a storm of
    batches (`py-spy --gil` over `bench/ingest.py --scenarios batch`, 2026-12-07).
    """
    keys: dict[int, list[str]] = {}
    for service_id, group_key in groups:
        keys.setdefault(service_id, []).append(group_key)
    if not keys:
        return []
    qn = connection.ops.quote_name
    of_groups = " OR ".join(
        f"({qn('service_id')} = %s AND {qn('group_key')} IN ({', '.join(['%s'] * len(k))}))"
        for k in keys.values()
    )
    params: list[Any] = [status.value for status in OPEN_STATUSES]
    for service_id, group_keys in keys.items():
        params += [service_id, *group_keys]
    sql = (
        f"SELECT * FROM {qn(Incident._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('status')} IN ({', '.join(['%s'] * len(OPEN_STATUSES))}) AND ({of_groups}) "
        f"ORDER BY {qn('id')}"
    )
    if connection.features.has_select_for_update:
        sql += " " + connection.ops.for_update_sql(no_key=True)
    return list(Incident.objects.raw(sql, params))


def _locked_open_incident(service: Service, group_key: str) -> Incident | None:
    found = _OPEN_IN_GROUP.instances(service.pk, group_key)
    return found[0] if found else None


# Compiled once (core.compiled): ingest asks once per group a batch; compiling was most of it.
_OPEN_IN_GROUP = Lookup(
    lambda service, group_key: (
        Incident.objects.open().locked().filter(service_id=service, group_key=group_key)
    ).order_by("pk")[:1],
    takes=(int, str),
)

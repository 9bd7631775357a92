"""Store a firing alert: one INSERT … ON CONFLICT on the partial unique index of open alerts.

A new fingerprint inserts a row; a repeat of an open alert counts one more occurrence and
refreshes what senders update, atomically, however many processors race.

The one place DESIGN.md allows raw SQL: the ORM cannot upsert against a partial unique index,
add to the stored count and return the stored row in one statement (bulk_create's
update_conflicts takes neither the index's WHERE nor an expression). Many rows a statement
(`upsert_firing`): `bench/profile_ingest.py --scenarios batch --process`, 2026-12-06, two runs of
each back to back: 20–23 ms CPU to upsert a request of 100 new alerts, against 44–51 ms one row
a statement; processing 0.42–0.49 against 0.77–0.86 ms CPU an alert.

On PostgreSQL the rows travel as one JSON document (core.json_rows): one short statement,
which psycopg parses once, and one parameter. SQLite takes a VALUES list.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field

from alerts.context import Context
from alerts.models import Alert, AlertStatus
from alerts.sources.base import FIRING, NormalizedAlert
from core import json_rows

_UPSERT_COLUMNS = (
    "integration_id",
    "fingerprint",
    "status",
    "service_id",
    "silence_id",
    "incident_id",
    "summary",
    "severity",
    "labels",
    "annotations",
    "links",
    "warnings",
    "starts_at",
    "ends_at",
    "first_seen",
    "last_seen",
    "occurrences",
    "raw",
)
# On a repeat, keep identity (labels, service, first_seen) and refresh what senders update.
_REFRESHED_ON_REPEAT = (
    "summary",
    "annotations",
    "links",
    "warnings",
    "ends_at",
    "last_seen",
    "raw",
)


# Columns whose values need the field's conversion for a VALUES list (JSON, bytes, datetimes).
_CONVERTED = tuple(
    (i, field)
    for i, c in enumerate(_UPSERT_COLUMNS)
    if not c.endswith("_id")
    and isinstance(field := Alert._meta.get_field(c), Field)  # a column, not a reverse relation
    and field.get_internal_type() in ("JSONField", "DateTimeField", "BinaryField")
)
UPSERT_CHUNK = 100  # rows per statement: well under every database's parameter limit


def _conflict_sql() -> str:
    """What the upsert does with a fingerprint already firing, and what it returns."""
    qn = connection.ops.quote_name
    table = qn(Alert._meta.db_table)
    refresh = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in _REFRESHED_ON_REPEAT)
    return (
        f"ON CONFLICT ({qn('integration_id')}, {qn('fingerprint')}) "
        f"WHERE {qn('status')} = 'firing' "
        f"DO UPDATE SET {qn('occurrences')} = {table}.{qn('occurrences')} + 1, {refresh} "
        f"RETURNING {qn('id')}, {qn('occurrences')}, {qn('incident_id')}, {qn('service_id')}, "
        f"{qn('silence_id')}, {qn('fingerprint')}"
    )


def _values_sql(rows: int) -> str:
    """The upsert of `rows` rows as a VALUES list (SQLite)."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _UPSERT_COLUMNS)
    row = "(" + ", ".join(["%s"] * len(_UPSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO {qn(Alert._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES {', '.join([row] * rows)} {_conflict_sql()}"
    )


@functools.cache
def _json_rows_sql() -> str:
    """The upsert of any number of rows sent as one JSON array of rows (PostgreSQL)."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _UPSERT_COLUMNS)
    selected = ", ".join(
        json_rows.column_sql(_field(column), i) for i, column in enumerate(_UPSERT_COLUMNS)
    )
    return (
        f"INSERT INTO {qn(Alert._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {selected} FROM jsonb_array_elements(%s::jsonb) AS r {_conflict_sql()}"
    )


def _field(column: str) -> Field:
    field = Alert._meta.get_field(column)
    assert isinstance(field, Field)  # a column, not a reverse relation
    return field


def stored_fingerprint(fingerprint: str) -> str:
    """Return the fingerprint as stored: as sent if it fits the column, else shortened.

    A longer one (an Opsgenie alias may have 512 characters) keeps its start, for people to
    read, and ends in a hash of the whole, so two keys with one long prefix stay apart and a
    resolve finds the alert its trigger stored.
    """
    limit = Alert._meta.get_field("fingerprint").max_length
    assert limit is not None  # a CharField's
    if len(fingerprint) <= limit:
        return fingerprint
    digest = hashlib.sha256(fingerprint.encode("utf-8", "replace")).hexdigest()
    return f"{fingerprint[: limit - len(digest) - 1]}~{digest}"


def _raw_bytes(alert: NormalizedAlert) -> bytes:
    try:
        return json.dumps(alert.raw, ensure_ascii=False, default=str).encode("utf-8", "replace")
    except (ValueError, RecursionError):
        return repr(alert.raw).encode("utf-8", "replace")[:65536]


_INCIDENT = _UPSERT_COLUMNS.index("incident_id")


def _upsert_values(
    context: Context, alert: NormalizedAlert, service_id: int, silence_id: int | None
) -> list[Any]:
    """A row's values as Python has them; each statement converts them its own way. A new row
    has no incident, unless it goes ahead into its group's open incident (`upsert_ahead`)."""
    return [
        context.integration.pk,
        stored_fingerprint(alert.fingerprint),
        AlertStatus.FIRING,
        service_id,
        silence_id,
        None,
        alert.summary[:1024],
        alert.severity,
        alert.labels,
        alert.annotations,
        [{"kind": k.kind, "url": k.url, "text": k.text} for k in alert.links],
        alert.warnings,
        alert.starts_at,
        alert.ends_at,
        context.now,
        context.now,
        1,
        _raw_bytes(alert),
    ]


def _upsert_rows(rows: list[list[Any]]) -> list[tuple]:
    """Upsert alert rows (distinct fingerprints); return (id, occurrences, incident, service,
    silence, stored fingerprint) for each, in no particular order."""
    returned: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), UPSERT_CHUNK):
            chunk = rows[start : start + UPSERT_CHUNK]
            if connection.vendor == "postgresql":
                cursor.execute(_json_rows_sql(), [json_rows.dumps(chunk)])
            else:
                cursor.execute(_values_sql(len(chunk)), _converted(chunk))
            returned.extend(cursor.fetchall())
    return returned


def _converted(rows: list[list[Any]]) -> list[Any]:
    """The rows' values, one after another, each converted by its field for the database."""
    values: list[Any] = []
    for row in rows:
        row = list(row)
        for i, field in _CONVERTED:
            row[i] = field.get_db_prep_save(row[i], connection)
        values.extend(row)
    return values


def upsert(
    context: Context, alert: NormalizedAlert, service_id: int, silence_id: int | None
) -> tuple:
    """Upsert one firing alert, or take its row upserted ahead; return (id, occurrences,
    incident id, service id, silence id) as stored."""
    ahead = context.upserted.pop(stored_fingerprint(alert.fingerprint), None)
    if ahead is not None:
        return ahead[:5]
    [row] = _upsert_rows([_upsert_values(context, alert, service_id, silence_id)])
    return row[:5]


def upsert_firing(context: Context, alerts: list[NormalizedAlert]) -> None:
    """Upsert one request's firing alerts ahead (`upsert_ahead` for a request alone): those
    whose fingerprint appears once in it and that its batch did not upsert ahead already.
    None goes in an incident ahead: only a batch's slices, for their urgent requests, do."""
    upsert_ahead([(context, context.now, alerts)], may_be_new=[False])


def upsert_ahead(
    received: list[tuple[Context, datetime, list[NormalizedAlert]]],
    *,
    may_be_new: list[bool] | None = None,
) -> None:
    """Upsert the firing alerts of several requests (their context, when each was received, its
    alerts) in one statement per context, ahead of processing them in order.

    Only fingerprints that appear once in all of them, for their integration: any other
    is upserted in its turn, so arrival order still holds; and not one upserted ahead already.
    The requests must then all be processed (each `upsert` takes its row), in this transaction.

    A new row goes in linked to its group's open incident, locked first for all of them in one
    statement (Context.lock_groups): written once, where linking it afterwards wrote each row
    twice (its UPDATE was two fifths of PostgreSQL's time on a batch of new alerts). Until its
    turn, such an alert is `prelinked` (see Context.pending_prelinked). `may_be_new`: for each
    request, whether it may hold a new alert (its `urgent`, worked out at accept); a request of
    repeats locks no incident ahead, so a storm of repeats holds its incidents no longer than
    before (a new alert in it all the same is linked in its turn).
    """
    seen: dict[tuple[int, str], int] = {}
    for context, _at, alerts in received:
        for alert in alerts:
            key = (context.integration.pk, alert.fingerprint)
            seen[key] = seen.get(key, 0) + 1
    rows: dict[int, tuple[Context, list[tuple[list[Any], tuple[int, str] | None]]]] = {}
    for n, (context, at, alerts) in enumerate(received):
        context.now = at  # first seen, and the silences it falls under, as in its turn
        context.placements = {}
        new_possible = may_be_new is None or may_be_new[n]
        for alert in alerts:
            if (
                alert.status != FIRING
                or seen[(context.integration.pk, alert.fingerprint)] != 1
                or stored_fingerprint(alert.fingerprint) in context.upserted
            ):
                continue
            service_id, silence = context.place(alert)
            values = _upsert_values(context, alert, service_id, silence.pk if silence else None)
            group = context.group_of(service_id, alert) if new_possible and not silence else None
            rows.setdefault(context.integration.pk, (context, []))[1].append((values, group))
    ahead = [(context, values) for context, values in rows.values() if len(values) > 1]
    # One row gains nothing from going ahead.
    Context.lock_groups([(c, group) for c, values in ahead for _, group in values if group])
    for context, values in ahead:
        for row, group in values:
            incident = context.group_incidents.get(group) if group else None
            row[_INCIDENT] = incident.pk if incident is not None else None
        # One lock order for every processor: by fingerprint.
        upserted = _upsert_rows(sorted((row for row, _ in values), key=lambda row: row[1]))
        context.upserted.update({row[5]: row for row in upserted})
        context.prelinked.update({row[0]: row[2] for row in upserted if row[1] == 1 and row[2]})

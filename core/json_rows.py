"""Many rows in one statement, sent to PostgreSQL as one JSON document.

A statement with a placeholder per value (a VALUES list, as bulk_create writes for SQLite) is
parsed afresh by psycopg each time once it has more than 50 of them, and each value is quoted
on its own; Django's bulk_create on PostgreSQL sends one array per column instead, whose every
value psycopg quotes in Python (the quotes of a JSON column's text one regex substitution
each). One JSON array of rows, made by one `json.dumps` and read back by
`jsonb_array_elements`, is one parameter of one short statement, which psycopg parses once.
`bench/profile_ingest.py --scenarios batch --process`, 2026-12-07: upserting 100 new alerts
6 ms CPU, against 33 ms as a VALUES list and 26 ms as arrays.

`column_sql` says how each column is read back from a row; `dumps` writes the rows.
`insert` is bulk_create through it, on PostgreSQL (bulk_create itself elsewhere); `update`
writes some fields of many saved instances, each its own values, in one statement (a prepared
UPDATE per row elsewhere).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from django.db import connection
from django.db.models import Field, Model

# Text goes in as text: the column's own assignment cast then refuses a value too long for a
# varchar(n), where an explicit cast to varchar(n) would cut it silently.
_TEXT = frozenset({"CharField", "TextField", "SlugField", "EmailField", "URLField"})
_AUTO_KEYS = frozenset({"AutoField", "BigAutoField", "SmallAutoField"})
# What a row's JSON can carry and the select list reads back exactly; a model with another
# kind of field (its own database conversion, say) goes through bulk_create.
_SUPPORTED = _TEXT | {
    "JSONField",
    "BinaryField",
    "DateTimeField",
    "DateField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
    "BooleanField",
    "UUIDField",
    "DecimalField",
    "ForeignKey",
    "OneToOneField",
}


def column_sql(field: Field, index: int, row: str = "r") -> str:
    """The SQL reading `field`'s value from element `index` of the JSON array `row`."""
    kind = field.get_internal_type()
    if kind == "JSONField":
        return f"nullif({row} -> {index}, 'null'::jsonb)"  # None is SQL NULL, as Django stores it
    if kind == "BinaryField":
        return f"decode({row} ->> {index}, 'hex')"
    if kind in _TEXT:
        return f"({row} ->> {index})"
    return f"({row} ->> {index})::{field.db_type(connection)}"


def _cell(value: Any) -> Any:
    """What JSON cannot say itself, as the column's SQL reads it back."""
    if isinstance(value, datetime | date):
        return value.isoformat()  # with its offset: PostgreSQL reads the same instant back
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column's value")


def dumps(rows: Sequence[Sequence[Any]]) -> str:
    """The rows as one JSON document for `jsonb_array_elements`.

    Written by orjson, six times faster than the standard library (the upsert's rows of 100
    Alertmanager alerts: 1.16 → 0.19 ms), to the same JSON values: the document's text
    differs (UTF-8 where the standard library escapes), never what PostgreSQL reads.
    What orjson refuses (an integer beyond 64 bits, a lone surrogate, a key that is not a
    string) goes the standard library's way. Where they differ: orjson writes NaN and
    infinities as null, where the standard library's NaN would fail the statement (ingest
    stores a label's or annotation's number as text), and a UTC offset to the minute (RFC
    3339), where a zone's offset of seconds (local mean time, before 1900) kept them; the rows'
    datetimes are UTC.
    """
    try:
        return orjson.dumps(rows, default=_cell).decode()
    except orjson.JSONEncodeError:
        return json.dumps(rows, default=_cell, separators=(",", ":"))


def insert(objs: Sequence[Model]) -> None:
    """Insert unsaved model instances of one model in one statement; give each its pk."""
    if not objs:
        return
    model = type(objs[0])
    fields = _fields(model)
    if connection.vendor != "postgresql" or not _carried(model, fields):
        model._default_manager.bulk_create(objs)
        return
    for obj in objs:
        # As bulk_create does: a related object not saved yet is refused, not stored as NULL.
        obj._prepare_related_fields_for_save(operation_name="insert")  # type: ignore[attr-defined]
    rows = [[field.get_prep_value(field.pre_save(obj, True)) for field in fields] for obj in objs]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model), [dumps(rows)])
        ids = [pk for (pk,) in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def update(objs: Sequence[Model], names: Sequence[str]) -> None:
    """Write the fields `names` of saved instances of one model, each its own values: in one
    statement on PostgreSQL, a prepared UPDATE per row elsewhere. Marking a batch's requests
    processed by a prepared UPDATE each, which psycopg sends in a pipeline row by row in
    Python, was a sixth of the worker's CPU in a storm of single alerts (`py-spy --gil`,
    2026-12-08)."""
    if not objs:
        return
    model = type(objs[0])
    fields = _named(model, names)
    if connection.vendor != "postgresql" or not _carried(model, fields):
        rows = [
            [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] + [obj.pk]
            for obj in objs
        ]
        with connection.cursor() as cursor:
            cursor.executemany(_update_one_sql(model, tuple(names)), rows)
        return
    document = dumps(
        [[obj.pk] + [f.get_prep_value(getattr(obj, f.attname)) for f in fields] for obj in objs]
    )
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(model, tuple(names)), [document])


def _named(model: type[Model], names: Sequence[str]) -> list[Field]:
    """The concrete fields `names`, each once; their values are written as they are (no
    pre_save, no field encoder of its own)."""
    if len(set(names)) != len(names):
        raise ValueError(f"a field named twice in {list(names)}")
    fields = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete or field.primary_key:
            raise ValueError(f"{name} is not a column update() can write")
        fields.append(field)
    return fields


def _fields(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _carried(model: type[Model], fields: list[Field]) -> bool:
    """Whether a JSON row carries every value of `model` exactly: an automatic primary key (the
    database gives it), no database default, and fields of kinds read back as they were, a
    relation's target an integer key (a varchar key would be cast, and cut)."""
    pk = model._meta.pk
    if pk is None or pk.get_internal_type() not in _AUTO_KEYS:  # one the database gives
        return False
    for field in fields:
        kind = field.get_internal_type()
        if kind not in _SUPPORTED or field.has_db_default():
            return False
        target = getattr(field, "target_field", None)  # a relation's
        if target is not None and target.get_internal_type() not in _AUTO_KEYS:
            return False
    return True


@functools.cache
def _insert_sql(model: type[Model]) -> str:
    qn = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None  # _carried checked it
    fields = _fields(model)
    columns = ", ".join(qn(str(f.column)) for f in fields)
    selected = ", ".join(column_sql(f, i, "r.v") for i, f in enumerate(fields))
    # In the document's order (WITH ORDINALITY), so RETURNING gives the ids in that order.
    return (
        f"INSERT INTO {qn(model._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {selected} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(v, n) "
        f"ORDER BY r.n RETURNING {qn(str(pk.column))}"
    )


@functools.cache
def _update_sql(model: type[Model], names: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    pk = model._meta.pk
    assert pk is not None  # _carried checked it
    sets = ", ".join(
        f"{qn(str(f.column))} = {column_sql(f, i, 'r.v')}"
        for i, f in enumerate(_named(model, names), start=1)
    )
    return (
        f"UPDATE {table} SET {sets} "  # noqa: S608
        f"FROM jsonb_array_elements(%s::jsonb) AS r(v) "
        f"WHERE {table}.{qn(str(pk.column))} = {column_sql(pk, 0, 'r.v')}"
    )


@functools.cache
def _update_one_sql(model: type[Model], names: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    sets = ", ".join(f"{qn(str(f.column))} = %s" for f in _named(model, names))
    return f"UPDATE {qn(model._meta.db_table)} SET {sets} WHERE {qn(str(pk.column))} = %s"  # noqa: S608

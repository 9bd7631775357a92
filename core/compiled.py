"""ORM queries compiled to SQL once, then run with fresh values.

Django compiles a queryset to SQL each time it runs it. For the tick's lookups, twice a second
whatever happens, the compilation was the cost: the outbox sweep's query for lost escalation
runs took 5.2 ms of CPU through the ORM against 0.25 ms for the same SQL run directly, and the
whole tick 25 ms on an empty database (2026-12-07). So was it for ingest's lookup of a group's
open incident, once per group a batch: 13% of the worker's CPU in a storm of single alerts, in
compiling alone (`py-spy --gil`, 2026-12-07, ninth session).

`Lookup` builds its queryset once per database engine, with stand-ins for the values it takes
(datetimes, ints, strings: `takes`), keeps the SQL, and runs it with the values given. `rows()`
returns the rows as the database sends them: use it for ids and existence (no converters run).
`instances()` returns model instances, as the ORM would, for a queryset of one model's rows,
with the rows select_related joins in (no values() or annotations).

`Update` does the same for an UPDATE (`QuerySet.update`'s queryset and values), and returns how
many rows it changed.

A list of ids is one value too, as a JSON array in a string: `Ids(field, text)` is the
condition "`field` is one of them", one parameter whatever the list's length, where the ORM's
`__in` writes a placeholder per id (so a query of its own for each length).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django.db.models import F, Model
from django.db.models import Lookup as FieldLookup
from django.db.models.query import RelatedPopulator, get_related_populators
from django.db.models.sql import UpdateQuery

MAX_VALUES = 8
# Two sets of stand-ins, one per value a lookup uses. A lookup is compiled with each, and taken
# only if both give the same SQL with the values in the same places: the ORM may rewrite a value
# it is given (a range check that drops a condition for an int out of a small column's range,
# LIKE escaping for a string with % or _), and then it does so for one set and not the other;
# a constant of the query equal to a stand-in shows as a difference too. First set: the first
# seconds of 1901, ints below any id, strings with a control character no form or API accepts;
# second: 1902, small positive ints, strings with the characters LIKE escapes.
_STAND_INS: tuple[dict[type, tuple[Any, ...]], ...] = (
    {
        datetime: tuple(datetime(1901, 1, 1, 0, 0, i, tzinfo=UTC) for i in range(MAX_VALUES)),
        int: tuple(-1_901_000_000 - i for i in range(MAX_VALUES)),
        str: tuple(f"\x01stand-in {i}\x01" for i in range(MAX_VALUES)),
    },
    {
        datetime: tuple(datetime(1902, 2, 2, 0, 0, i, tzinfo=UTC) for i in range(MAX_VALUES)),
        int: tuple(19_021 + i for i in range(MAX_VALUES)),
        str: tuple(f"\x02stand_in%{i}\\\x02" for i in range(MAX_VALUES)),
    },
)


class Ids(FieldLookup):
    """`Ids(F("pk"), "[3, 5, 8]")`: the integer column is one of the JSON array's integers."""

    lookup_name = "ids"
    prepare_rhs = False  # the text is not a value of the column

    def __init__(self, field: str | F, text: str):
        super().__init__(F(field) if isinstance(field, str) else field, text)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "postgresql":
            ids = f"SELECT (jsonb_array_elements_text({rhs}::jsonb))::bigint"
        else:
            ids = f"SELECT value FROM json_each({rhs})"  # noqa: S608 (rhs is a placeholder)
        return f"{lhs} IN ({ids})", (*lhs_params, *rhs_params)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: list[Any]
    slots: list[list[int]]  # where each value goes in params
    model: type[Model] | None  # for instances(): the model of the rows, and their columns
    attnames: list[str]
    converters: list[tuple[int, tuple[list[Callable], Any]]]
    related: list[RelatedPopulator]  # the select_related models' instances, from the same rows


class _CompiledOnce:
    """A statement built by `build(*values)`, compiled once per database engine.

    `takes` gives the type of each value, in the order `build` takes them (by default one
    datetime).
    """

    def __init__(self, build: Callable[..., Any], takes: tuple[type, ...] = (datetime,)):
        if len(takes) > MAX_VALUES:
            raise ValueError(f"a lookup takes 0 to {MAX_VALUES} values")
        for kind in takes:
            if kind not in _STAND_INS[0]:
                raise ValueError(f"a lookup takes datetimes, ints and strings, not {kind}")
        self._build = build
        self._takes = takes
        self._compiled: dict[str, _Compiled] = {}

    def _bind(self, compiled: _Compiled, values: tuple[Any, ...]) -> list[Any]:
        if len(values) != len(self._takes):
            raise TypeError(f"this lookup takes {len(self._takes)} values, not {len(values)}")
        bound = list(compiled.params)
        for value, kind, places in zip(values, self._takes, compiled.slots, strict=True):
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise TypeError(f"this lookup takes a {kind.__name__}, not {value!r}")
            prepared = (
                connection.ops.adapt_datetimefield_value(value)
                if isinstance(value, datetime)
                else value
            )
            for place in places:
                # As the ORM wrapped it: psycopg's Int8 for a bigint column, say.
                wrapper = type(compiled.params[place])
                bound[place] = prepared if kind is not int else wrapper(prepared)
        return bound

    def _compile(self) -> _Compiled:
        engine = connection.vendor
        if engine not in self._compiled:
            compiled = [self._compile_with(stand_ins) for stand_ins in _STAND_INS]
            first = compiled[0]
            if any(c.sql != first.sql or c.slots != first.slots for c in compiled[1:]):
                raise ValueError("the query rewrites a value it is given; use the ORM")
            self._compiled[engine] = first
        return self._compiled[engine]

    def _compile_with(self, stand_ins_of: dict[type, tuple[Any, ...]]) -> _Compiled:
        counts: dict[type, int] = {}
        stand_ins = []
        for kind in self._takes:
            stand_ins.append(stand_ins_of[kind][counts.get(kind, 0)])
            counts[kind] = counts.get(kind, 0) + 1
        compiler = self._compiler(*stand_ins)
        try:
            sql, built = compiler.as_sql()
        except (EmptyResultSet, FullResultSet) as exc:
            raise ValueError("the query drops a condition on a value it is given") from exc
        params = list(built)
        slots = []
        for stand_in in stand_ins:
            marker = (
                connection.ops.adapt_datetimefield_value(stand_in)
                if isinstance(stand_in, datetime)
                else stand_in
            )
            places = [
                i
                for i, param in enumerate(params)
                if isinstance(param, type(marker))
                and not isinstance(param, bool)
                and param == marker
            ]
            if not places:
                raise ValueError("the query does not use every value it is given")
            slots.append(places)
        return _Compiled(sql, params, slots, *_model_rows(compiler))

    def _compiler(self, *stand_ins: Any) -> Any:
        raise NotImplementedError


class Lookup(_CompiledOnce):
    """A query built by `build(*values)` (a QuerySet), compiled once per database engine."""

    def rows(self, *values: Any) -> list[tuple]:
        """Run the query with these values, in the order `build` takes them."""
        compiled = self._compile()
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, self._bind(compiled, values))
            return cursor.fetchall()

    def exists(self, *values: Any) -> bool:
        """Whether the query finds a row (build it with a limit of one)."""
        return bool(self.rows(*values))

    def instances(self, *values: Any) -> list[Any]:
        """The model instances the queryset finds with these values, as the ORM makes them."""
        compiled = self._compile()
        if compiled.model is None:
            raise TypeError("instances() needs a queryset of one model's rows")
        found = []
        for row in self.rows(*values):
            columns = list(row)
            for pos, (converters, expression) in compiled.converters:
                value = columns[pos]
                for converter in converters:
                    value = converter(value, expression, connection)
                columns[pos] = value
            instance = compiled.model.from_db(
                connection.alias, compiled.attnames, columns[: len(compiled.attnames)]
            )
            for populator in compiled.related:
                populator.populate(columns, instance)
            found.append(instance)
        return found

    def get(self, *values: Any) -> Any:
        """The instance the queryset finds with these values (build it to find one at most);
        the model's DoesNotExist if none, as the ORM's get() raises."""
        found = self.instances(*values)
        if not found:
            model: Any = self._compile().model  # a concrete model: instances() checked
            raise model.DoesNotExist(f"{model.__name__} matching {values!r} does not exist")
        return found[0]

    def _compiler(self, *stand_ins: Any) -> Any:
        return self._build(*stand_ins).query.get_compiler(connection=connection)


class Update(_CompiledOnce):
    """An UPDATE: `build(*values)` returns the queryset to update and the new values, as
    `QuerySet.update` takes them (expressions too), compiled once per database engine. An
    UPDATE through the ORM cost 0.35 ms of CPU, most of it compiling (2026-12-08)."""

    def run(self, *values: Any) -> int:
        """Run the UPDATE with these values; return how many rows it changed."""
        compiled = self._compile()
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, self._bind(compiled, values))
            return cursor.rowcount

    def _compiler(self, *stand_ins: Any) -> Any:
        queryset, changes = self._build(*stand_ins)
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(changes)
        query.annotations = {}  # as QuerySet.update: the rows' annotations are not set
        return query.get_compiler(connection=connection)


def _model_rows(compiler) -> tuple[type[Model] | None, list[str], list, list]:
    """The model whose rows the compiled query selects, its columns' attribute names (they come
    first), the converters of every column, and the populators of the select_related models
    (as Django's ModelIterable makes them); no model for anything else (values(), ...)."""
    info = compiler.klass_info
    if not info or compiler.annotation_col_map:
        return None, [], [], []
    columns = [expression for expression, _, _ in compiler.select]
    own = list(info["select_fields"])
    if own != list(range(len(own))):
        return None, [], [], []
    attnames = [column.target.attname for column in columns[: len(own)]]
    # django-stubs describe Django 6's signature (a fetch mode); this is Django 5.2's.
    related = get_related_populators(info, compiler.select, connection.alias)  # type: ignore[call-arg]
    return info["model"], attnames, list(compiler.get_converters(columns).items()), related

"""Migration operations that work on both databases Muster runs on."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently as _PostgresOnly
from django.db import migrations


class AddIndexConcurrently(_PostgresOnly):
    """Add an index without blocking writes on PostgreSQL (CREATE INDEX CONCURRENTLY: a
    large table, such as the timeline, stays writable while it is built); on SQLite (the
    embedded default, one process) a plain CREATE INDEX. The migration needs `atomic = False`.

    A concurrent build that failed half-way (cancelled, its process killed) leaves an invalid
    index behind and the migration unrecorded: the next `migrate` drops that index first, where
    CREATE INDEX would fail on the name forever.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        _drop_if_invalid(schema_editor, self.index.name)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


def _drop_if_invalid(schema_editor, name: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace "
            "AND NOT i.indisvalid",
            [name],
        )
        if cursor.fetchone() is None:
            return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


def drop_single_column_index(app_label: str, model_name: str, column: str) -> migrations.RunPython:
    """Drop the index of `column` alone (Django's index of a foreign key), whatever its name,
    with DROP INDEX (CONCURRENTLY on PostgreSQL: writes go on; the migration needs
    `atomic = False`), where AlterField(db_index=False) would copy the whole table on SQLite.
    For SeparateDatabaseAndState, beside that AlterField as its state operation. Backwards it
    leaves the index out (a composite index leading with the column serves its lookups)."""

    def forwards(apps, schema_editor) -> None:
        table = apps.get_model(app_label, model_name)._meta.db_table
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, table)
        for name, found in constraints.items():
            if (
                found["index"]
                and not found["unique"]
                and not found["primary_key"]
                and found["columns"] == [column]
            ):
                concurrently = " CONCURRENTLY" if connection.vendor == "postgresql" else ""
                schema_editor.execute(
                    f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}"
                )

    return migrations.RunPython(forwards, migrations.RunPython.noop, atomic=False)

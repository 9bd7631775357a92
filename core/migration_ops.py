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

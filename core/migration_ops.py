"""Migration operations that work on both databases Muster runs on."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently as _PostgresOnly
from django.db import migrations


class AddIndexConcurrently(_PostgresOnly):
    """Add an index without blocking writes on PostgreSQL (CREATE INDEX CONCURRENTLY: a
    large table, such as the timeline, stays writable while it is built); on SQLite (the
    embedded default, one process) a plain CREATE INDEX. The migration needs `atomic = False`.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )

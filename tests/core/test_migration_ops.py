"""A concurrent index build that failed half-way is built again by the next `migrate`."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection

from core.migration_ops import _drop_if_invalid

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="CREATE INDEX CONCURRENTLY is PostgreSQL's"
)


def index_state(name: str) -> bool | None:
    """Whether the index is valid; None if there is none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


@pytest.mark.django_db(transaction=True)  # CONCURRENTLY refuses to run in a transaction
def test_an_invalid_index_left_by_a_failed_build_is_dropped_and_a_valid_one_kept():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE muster_index_probe (n integer)")
        cursor.execute("INSERT INTO muster_index_probe VALUES (1), (1)")
        cursor.execute("CREATE INDEX muster_index_probe_ok ON muster_index_probe (n)")
    try:
        # A unique index over duplicates fails half-way, as a killed build does: left invalid.
        with pytest.raises(DatabaseError), connection.cursor() as cursor:
            cursor.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY muster_index_probe_u ON muster_index_probe (n)"
            )
        assert index_state("muster_index_probe_u") is False

        with connection.schema_editor(atomic=False) as editor:
            _drop_if_invalid(editor, "muster_index_probe_u")
            _drop_if_invalid(editor, "muster_index_probe_ok")
            _drop_if_invalid(editor, "muster_no_such_index")

        assert index_state("muster_index_probe_u") is None
        assert index_state("muster_index_probe_ok") is True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE muster_index_probe")


@pytest.mark.django_db
def test_the_foreign_keys_covered_by_a_composite_index_have_no_index_of_their_own():
    """alerts/0005 and incidents/0009 drop them by name (drop_single_column_index); the
    composite indexes leading with the column stay."""
    for table, composite in (
        ("alerts_alert", ["incident_id", "status"]),
        ("incidents_timelineentry", ["incident_id", "at", "id"]),
    ):
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, table)
        indexed = [c["columns"] for c in found.values() if c["index"] and not c["primary_key"]]
        assert ["incident_id"] not in indexed, table
        assert composite in indexed, table

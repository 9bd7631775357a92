"""Make the timeline append-only in the database itself, not only in the ORM."""

from django.db import migrations

POSTGRES_UP = """
CREATE FUNCTION incidents_timeline_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'timeline entries are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER incidents_timeline_append_only
    BEFORE UPDATE OR DELETE ON incidents_timelineentry
    FOR EACH ROW EXECUTE FUNCTION incidents_timeline_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS incidents_timeline_append_only ON incidents_timelineentry;
DROP FUNCTION IF EXISTS incidents_timeline_append_only();
"""
SQLITE_UP = [
    """CREATE TRIGGER incidents_timeline_no_update BEFORE UPDATE ON incidents_timelineentry
       BEGIN SELECT RAISE(ABORT, 'timeline entries are append-only'); END;""",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS incidents_timeline_no_update;"]


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        # SQLite's flush deletes rows one table at a time, so only updates are refused there.
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]
    operations = [migrations.RunPython(up, down)]

import django.db.models.deletion
from django.db import migrations, models

from core.migration_ops import drop_single_column_index


class Migration(migrations.Migration):
    """timelineentry.incident loses its own index: (incident, at, id) leads with it. Dropped by
    name, not through AlterField, which on SQLite copies the whole table to drop an index."""

    atomic = False  # DROP INDEX CONCURRENTLY

    dependencies = [
        ("incidents", "0008_timeline_starting_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="timelineentry",
                    name="incident",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="timeline",
                        to="incidents.incident",
                    ),
                ),
            ],
            database_operations=[
                drop_single_column_index("incidents", "timelineentry", "incident_id")
            ],
        ),
    ]

import django.db.models.deletion
from django.db import migrations, models

from core.migration_ops import drop_single_column_index


class Migration(migrations.Migration):
    """alert.incident loses its own index: (incident, status) leads with it. Dropped by name,
    not through AlterField, which on SQLite copies the whole table to drop an index."""

    atomic = False  # DROP INDEX CONCURRENTLY

    dependencies = [
        ("alerts", "0004_pending_keyless_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="alert",
                    name="incident",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="alerts",
                        to="incidents.incident",
                    ),
                ),
            ],
            database_operations=[drop_single_column_index("alerts", "alert", "incident_id")],
        ),
    ]

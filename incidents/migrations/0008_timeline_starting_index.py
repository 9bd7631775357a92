from django.db import migrations, models

from core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("incidents", "0007_service_archive_chat_channels_and_more"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="timelineentry",
            index=models.Index(
                condition=models.Q(
                    ("kind__in", ["escalated", "opened", "reassigned", "triggered", "unacknowledged"])
                ),
                fields=["incident", "id"],
                name="timeline_starting",
            ),
        ),
    ]

from django.db import migrations, models

from core.migration_ops import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("alerts", "0003_ingest_order"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="ingestrequest",
            index=models.Index(
                condition=models.Q(
                    ("order_key__isnull", True),
                    ("outcome", "accepted"),
                    ("processed_at__isnull", True),
                ),
                fields=["integration", "id"],
                name="ingest_pending_keyless",
            ),
        ),
    ]

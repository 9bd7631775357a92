from django.db import migrations, models
from django.db.models import Max

ALERT_KINDS = ("alert_attached", "alert_resolved", "alert_repeated")


def mark_what_is_there(apps, schema_editor) -> None:
    """Rooms opened before the mark was kept count their incidents' alert entries so far as
    posted (the bot kept that mark in the cache then): no room repeats its history."""
    Room = apps.get_model("warroom", "Room")
    TimelineEntry = apps.get_model("incidents", "TimelineEntry")
    marks: dict[int, dict[str, int]] = {}
    last = (
        TimelineEntry.objects.filter(kind__in=ALERT_KINDS)
        .values("incident_id", "kind")
        .annotate(last=Max("pk"))
    )
    for row in last.iterator():
        marks.setdefault(row["incident_id"], {})[row["kind"]] = row["last"]
    rooms = list(Room.objects.filter(incident_id__in=list(marks)).only("pk", "incident_id"))
    for room in rooms:
        room.alerts_posted = marks[room.incident_id]
    Room.objects.bulk_update(rooms, ["alerts_posted"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0009_alter_timelineentry_incident"),
        ("warroom", "0005_chatchannel_chatpost"),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="alerts_posted",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(mark_what_is_there, migrations.RunPython.noop),
    ]

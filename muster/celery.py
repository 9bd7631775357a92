"""The Celery app. Tasks live in each app's tasks.py; the beat schedule is in settings.

`celery -A muster worker` finds it here (Celery looks for `muster.celery` when the package has
no `app` of its own); Django processes import it in `MusterConfig.ready()`.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")

app = Celery("muster")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    [
        "muster",
        "accounts",
        "alerts",
        "incidents",
        "oncall",
        "warroom",
        "warroom.chat",
        "warroom.slack",
        "runbooks",
    ]
)

"""The Celery app. Tasks live in each app's tasks.py; the beat schedule is in settings.

`celery -A muster worker` finds it here (Celery looks for `muster.celery` when the package has
no `app` of its own); Django processes import it in `MusterConfig.ready()`.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_shutting_down
from kombu.transport import TRANSPORT_ALIASES

from core import pools

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")
# Broker URLs redis:// and rediss:// name kombu's Redis transport mended so that workers
# outlive a Redis restart (muster.broker). By name, not as CELERY_BROKER_TRANSPORT: a transport
# given outright overrides the URL's scheme, and a rediss:// URL lost its TLS.
TRANSPORT_ALIASES.update(redis="muster.broker:Transport", rediss="muster.broker:Transport")

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


@worker_shutting_down.connect
def _drop_pooled_work(**kwargs) -> None:
    # Pages waiting for a provider's thread are still queued in the database: the sweep hands
    # them to another worker, rather than this one sending them while it stops (core.pools).
    pools.shut_down()

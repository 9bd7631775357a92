"""The rows that keep the tick alive without a single point of failure (issue 15).

`Lease`: which beat may publish the periodic tasks, until when (muster/leases.py).
`Heartbeat`: when the tick last ran, for readiness and metrics (muster/tasks.py): in the
database, because Redis is a cache and a flushed Redis must not make workers look dead.
"""

from __future__ import annotations

from django.db import models


class Lease(models.Model):
    """A named right held by one process until `expires_at`, by the database's clock."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField(null=True)
    renewed_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'nobody'} until {self.expires_at}"


class Heartbeat(models.Model):
    """When something periodic last ran (by the database's clock)."""

    name = models.CharField(max_length=64, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at}"

"""Celery tasks of alerts."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from alerts.models import Alert, IngestRequest


@shared_task(name="alerts.purge_raw_payloads")
def purge_raw_payloads() -> int:
    """Drop raw bodies older than the retention period; alerts, incidents and timelines stay."""
    cutoff = timezone.now() - timedelta(days=settings.RAW_PAYLOAD_RETENTION_DAYS)
    deleted, _ = IngestRequest.objects.filter(received_at__lt=cutoff).delete()
    Alert.objects.filter(last_seen__lt=cutoff).exclude(raw=b"").update(raw=b"")
    return deleted

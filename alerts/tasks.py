"""Celery tasks of alerts."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from alerts.models import Alert, IngestRequest, Outcome
from alerts.processor import process_pending


@shared_task(name="alerts.purge_raw_payloads")
def purge_raw_payloads() -> int:
    """Drop raw bodies older than the retention period; alerts, incidents and timelines stay."""
    cutoff = timezone.now() - timedelta(days=settings.RAW_PAYLOAD_RETENTION_DAYS)
    # A request still waiting to be processed keeps its body, whatever its age.
    old = IngestRequest.objects.filter(received_at__lt=cutoff).exclude(
        outcome=Outcome.ACCEPTED, processed_at__isnull=True
    )
    deleted, _ = old.delete()
    Alert.objects.filter(last_seen__lt=cutoff).exclude(raw=b"").update(raw=b"")
    return deleted


@shared_task(name="alerts.process_ingest_requests", ignore_result=True)
def process_ingest_requests(lane: int | None = None) -> int:
    """Process the accepted requests pending in `lane`, or without one (the tick, and tasks
    queued before lanes) in every lane no other processor holds (see alerts.processor)."""
    return process_pending(lane)

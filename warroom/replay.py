"""Twilio requests act once (review L6): a replayed inbound SMS or keypress changes nothing.

Twilio's signature carries no nonce and no time, so a captured request stays valid. An inbound
SMS is acted on once per MessageSid; a keypress once per (CallSid, gather step), since one call
legitimately posts several keys, one per Gather (the step is in the Gather's URL, which the
signature covers). The keys seen are kept in PostgreSQL (`RequestSeen`, unique) for
MUSTER_TWILIO_REPLAY_WINDOW_DAYS, and an hourly task forgets older ones. Delivery-status
callbacks are not deduplicated: they only move a page forward (oncall.callbacks).

Slack's requests use the same table: each signed request once (by its signature: a replay within
Slack's 5-minute window is refused), and each Events API event once (by its event_id, so Slack's
retries act once). So do the messages of Mattermost's incident channels, by post id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from warroom.models import RequestSeen

MAX_KEY = 100


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def first_time(key: str) -> bool:
    """Record `key`; return False if it was recorded before (a replay).

    One statement, INSERT … ON CONFLICT DO NOTHING: of two identical requests at once, the
    second waits for the first's transaction and is then a replay. Call it in the transaction
    that acts, so that a request that fails is not remembered and can be sent again.
    """
    table = _qn(RequestSeen._meta.db_table)
    # Quoted identifiers only; the values are bound parameters.
    sql = (
        f"INSERT INTO {table} ({_qn('key')}, {_qn('seen_at')}) VALUES (%s, %s) "  # noqa: S608
        f"ON CONFLICT ({_qn('key')}) DO NOTHING RETURNING {_qn('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key[:MAX_KEY], timezone.now()])
        return cursor.fetchone() is not None


def sms_key(message_sid: str) -> str:
    return f"sms:{message_sid}"


def keypress_key(call_sid: str, step: int) -> str:
    return f"key:{call_sid}:{step}"


def slack_request_key(signature: str) -> str:
    """A Slack request by its signature (v0=<64 hex>, unique to its timestamp and body)."""
    return f"slack-sig:{signature}"


def slack_event_key(event_id: str) -> str:
    """An Events API event by its event_id: Slack's retries carry the same one."""
    return f"slack-event:{event_id}"


def chat_link_key(nonce: str) -> str:
    """A `/muster link` link (Slack's or Mattermost's), used once. (Named for Slack, whose
    links came first: a link used before an upgrade stays used after it.)"""
    return f"slack-link:{nonce}"


def mattermost_post_key(post_id: str) -> str:
    """A message in a Mattermost incident channel, by its post id: acted on once."""
    return f"mm-post:{post_id}"


def window() -> timedelta:
    return timedelta(days=settings.TWILIO_REPLAY_WINDOW_DAYS)


def forget_old(now: datetime | None = None) -> int:
    """Forget the requests seen before the replay window; return how many."""
    cutoff = (now or timezone.now()) - window()
    deleted, _ = RequestSeen.objects.filter(seen_at__lt=cutoff).delete()
    return deleted

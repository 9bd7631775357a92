"""Celery's queues and which tasks go where (settings' CELERY_TASK_QUEUES and _ROUTES).

Every worker takes from all three, in this order on Redis (kombu's "priority" order, set in
settings; `-Q` lists them in the order taken): a thread that comes free takes the next task of
the first queue that has one. The embedded mode's in-memory broker takes them in turn.

- "paging": escalations, page deliveries and the beat's tick. A page waits for a free thread,
  not behind queued ingest processing: in `python bench/paging.py`'s load phase (500 alerts/s
  of repeats), processors kicked 100–150 times a second queued ahead of the pages in one shared
  queue, and an alert's first page waited there 0.3–1.4 s at p50 (2026-12-07, thirteenth
  session). The price: pages come before processing, so a Twilio that hangs would hold
  every thread with them; core.pools gives them threads of their own (docs/deploying).
- "celery": ingest processing and the rest.
- "bot": the war room's posts and chat calls, only when both are empty (they wait on Slack and
  Mattermost, and a room can take a line a second later).

A worker restricted with `-Q` must leave no queue without a worker: "paging" carries the tick.
Upgrading from a release without "paging": add it, first, to every `-Q` list, and restart the
workers before the web tier and beat; a worker of the older release does not take it.
"""

from __future__ import annotations

from kombu import Exchange, Queue

DEFAULT = "celery"
QUEUES = (
    Queue("paging", Exchange("celery"), routing_key="paging"),
    Queue("celery", Exchange("celery"), routing_key="celery"),
    Queue("bot", Exchange("celery"), routing_key="bot"),
)
PAGING_AND_INGEST = ("paging", "celery")  # what muster_task_queue_depth counts
ROUTES = {
    "oncall.*": {"queue": "paging"},
    "muster.tick": {"queue": "paging"},
    "warroom.follow_entry": {"queue": "bot"},
    "warroom.follow_entries": {"queue": "bot"},
    "warroom.chat_deliver": {"queue": "bot"},
    "warroom.chat_create_channels": {"queue": "bot"},
    "warroom.mail_status_update": {"queue": "bot"},
}

"""The chat outbox: posts (and channel operations) written in the transaction of what they
tell, delivered after commit, in order per channel, at the provider's pace.

A channel's posts go out one batch at a time: the oldest unsettled post leads, and the queued
posts right after it ride along in one message when they fit (a storm of lines in a channel that
takes one post a second is a few posts, not a queue of minutes). A 429 or an outage puts the
batch back with the provider's `Retry-After` (or a backoff); a call that may have been acted on
(a timeout after sending) makes the batch `unknown`, never sent again, as with pages. The sweep
(`warroom.chat_sweep`, every few seconds) delivers what no worker was told about (a flushed
broker), and settles posts that never got an answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.audit import CREATED, record_change, snapshot
from accounts.models import User
from core import json_rows, slots
from core.compiled import Ids, Lookup, Update
from incidents.chat_settings import channel_id_error
from warroom.chat.asking import ask, backoff_seconds, started
from warroom.chat.platform import ChatRefused, ChatUnavailable, NewChannel, Outgoing
from warroom.chat.platforms import PLATFORMS
from warroom.models import ChatChannel, ChatChannelState, ChatPost, ChatPostState, Message

log = logging.getLogger(__name__)

DELIVER_TASK = "warroom.chat_deliver"
MERGEABLE = frozenset({"opening", "line", "chat", "summary", "test"})
BATCH_MOST = 20  # posts in one message
ROUNDS = 50  # batches one task sends before it hands over to a later task
# ... or after this long: against a platform that answers slowly (5 s a call) one channel does
# not keep the worker's slot (core.slots) for ROUNDS calls while the others wait.
TURN_SECONDS = 10
SWEEP_AFTER = timedelta(seconds=2)  # a queued post this old was surely announced


def queue(
    platform: str,
    target: str,
    kind: str,
    *,
    incident_id: int | None = None,
    body: str = "",
    data: dict[str, Any] | None = None,
    message: Message | None = None,
) -> ChatPost:
    """Write a post (or an operation: invite, archive) for `target` on `platform`; it is
    delivered after the caller's transaction commits."""
    post = ChatPost(
        platform=platform,
        incident_id=incident_id,
        message=message,
        kind=kind,
        body=body,
        data=data or {},
        target=target,
    )
    json_rows.insert([post])  # as create(), without compiling an INSERT each time
    transaction.on_commit(lambda: kick(platform, target), robust=True)
    return post


class CannotSendTest(Exception):
    """A test message that cannot go: the platform is not configured, or the id is no id."""


def send_test(platform: str, channel_id: str, *, by: User) -> ChatPost:
    """Queue a test message to `channel_id` on `platform` from the setup page, audited; it is
    delivered after commit like any post, and its state says how it went."""
    if platform not in PLATFORMS:
        raise CannotSendTest(f"unknown chat platform {platform!r}")
    if not PLATFORMS[platform].configured():
        raise CannotSendTest(f"{PLATFORMS[platform].label} is not configured")
    error = channel_id_error(platform, channel_id)
    if error:
        raise CannotSendTest(error)
    who = by.get_username()
    body = (
        f"Test message from Muster, sent by {who} from the setup page. If you can read this, "
        "Muster can post to this channel."
    )
    with transaction.atomic():
        post = queue(platform, channel_id, "test", body=body, data={"by": who})
        summary = f"{who} sent a {PLATFORMS[platform].label} test message to {channel_id}"
        record_change(by, CREATED, post, snapshot(post), summary=summary)
    return post


def kick(platform: str, target: str, *, countdown: float = 0, again: bool = False) -> None:
    """Ask a worker to deliver `target`'s posts (see asking.ask)."""
    ask(DELIVER_TASK, (platform, target), countdown=countdown, again=again)


def deliver(platform_name: str, target: str) -> None:
    """Deliver `target`'s queued posts, batch by batch, until none is due; if this worker's
    chat threads are all taken, ask for it again shortly (core.slots)."""
    # Started, whatever comes next: a post queued from now on must get a task of its own (the
    # task sent for it may be this one, about to find nothing to do).
    started(DELIVER_TASK, (platform_name, target))
    with slots.slot("CHAT_THREADS", platform_name) as free:
        if not free:
            now = timezone.now()
            due = ChatPost.objects.filter(
                Q(not_before__isnull=True) | Q(not_before__lte=now),
                platform=platform_name,
                target=target,
                state=ChatPostState.QUEUED,
            )
            if due.exists():  # what waits until later has its own kick (a backoff's)
                slots.ask_again_later(
                    f"{DELIVER_TASK}:{platform_name}:{target}",
                    lambda countdown: kick(platform_name, target, countdown=countdown),
                )
            return
        platform = PLATFORMS[platform_name]
        turn_ends = time.monotonic() + TURN_SECONDS
        for _ in range(ROUNDS):
            batch = _claim(platform, target)
            if not batch or not _send(platform, target, batch):
                return
            if time.monotonic() > turn_ends:
                break
    # Its turn is over: the channel goes on in a while, so that the other channels' tasks,
    # asking every RETRY_SECONDS, may take the platform's slot meanwhile.
    kick(platform_name, target, countdown=slots.RETRY_SECONDS)


def _claim(platform: Any, target: str) -> list[ChatPost]:
    """Mark the channel's next batch `sending` and return it; none while another worker has
    the channel's oldest post, or while it must wait."""
    now = timezone.now()
    with transaction.atomic():
        found = _FIRST.instances(platform.name, target)
        first = found[0] if found else None
        if first is None or first.state == ChatPostState.SENDING:
            return []
        if _OLDER.exists(platform.name, target, first.pk):
            return []  # the oldest is another worker's
        if first.not_before and first.not_before > now:
            kick(platform.name, target, countdown=(first.not_before - now).total_seconds())
            return []
        batch = [first]
        if first.kind in MERGEABLE:
            for post in _NEXT.instances(platform.name, target, first.pk):
                if len(batch) >= BATCH_MOST:
                    break
                waiting = post.not_before and post.not_before > now
                if post.state != ChatPostState.QUEUED or post.kind not in MERGEABLE or waiting:
                    break
                if not platform.fits([outgoing(p) for p in [*batch, post]]):
                    break
                batch.append(post)
        _SENDING.run(json.dumps([p.pk for p in batch]), now)
    return batch


# A channel's posts not settled yet, oldest first: every delivery reads them. Compiled once.
_AFTER_FIRST = BATCH_MOST - 1  # the most a batch may take after its first (the SQL's limit)


def _unsettled(platform: str, target: str) -> QuerySet[ChatPost]:
    states = (ChatPostState.QUEUED, ChatPostState.SENDING)
    return ChatPost.objects.filter(platform=platform, target=target, state__in=states)


_FIRST = Lookup(
    lambda platform, target: (
        _unsettled(platform, target).order_by("id").select_for_update(skip_locked=True)[:1]
    ),
    takes=(str, str),
)
_OLDER = Lookup(
    lambda platform, target, pk: (
        _unsettled(platform, target).filter(id__lt=pk).values_list("pk")[:1]
    ),
    takes=(str, str, int),
)
_NEXT = Lookup(
    lambda platform, target, pk: (
        _unsettled(platform, target).filter(id__gt=pk).order_by("id")[:_AFTER_FIRST]
    ),
    takes=(str, str, int),
)
_SENDING = Update(
    lambda ids, now: (
        ChatPost.objects.filter(Ids("pk", ids)),
        {"state": ChatPostState.SENDING, "sending_at": now},
    ),
    takes=(str, datetime),
)


def outgoing(post: ChatPost) -> Outgoing:
    return Outgoing(kind=post.kind, body=post.body, data=post.data)


def _send(platform: Any, target: str, batch: list[ChatPost]) -> bool:
    """Send one batch and settle it; return whether the channel may go on now."""
    head = batch[0]
    remote = ""
    try:
        if head.kind == "invite":
            missing = platform.invite(target, _emails(head.data.get("people", [])))
            remote = f"not found: {', '.join(missing)}" if missing else ""
        elif head.kind == "archive":
            _archive(platform, target)
        else:
            remote = platform.post(target, [outgoing(post) for post in batch])
    except ChatUnavailable as exc:
        return _unavailable(platform, target, batch, exc)
    except ChatRefused as exc:
        log.warning("%s refused a post to %s: %s", platform.label, target, exc)
        _settle(batch, ChatPostState.FAILED, error=str(exc))
        return True
    _settle(batch, ChatPostState.SENT, remote_id=remote[:64])
    return True


def _unavailable(platform: Any, target: str, batch: list[ChatPost], exc: ChatUnavailable) -> bool:
    if exc.maybe_sent:
        _settle(batch, ChatPostState.UNKNOWN, error=f"no answer from {platform.label}: {exc}")
        return True
    now = timezone.now()
    failures = batch[0].attempts + (0 if exc.retry_after is not None else 1)
    if failures >= settings.CHAT_MAX_ATTEMPTS:
        _settle(batch, ChatPostState.FAILED, error=f"{platform.label} unavailable: {exc}")
        return True
    wait = exc.retry_after if exc.retry_after is not None else backoff_seconds(failures)
    not_before = now + timedelta(seconds=max(wait, 0.5))
    ChatPost.objects.filter(pk__in=[p.pk for p in batch]).update(
        state=ChatPostState.QUEUED,
        attempts=failures,
        not_before=not_before,
        sending_at=None,
        error=str(exc)[:500],
    )
    kick(platform.name, target, countdown=(not_before - now).total_seconds())
    return False


def _settle(batch: Sequence[ChatPost], state: str, *, remote_id: str = "", error: str = "") -> None:
    ids = json.dumps([p.pk for p in batch])
    if state == ChatPostState.SENT:
        _SENT.run(ids, timezone.now(), remote_id, error[:500])
    else:
        _SETTLED.run(ids, state, remote_id, error[:500])


def _settling(ids: str, changes: dict[str, Any]) -> tuple[QuerySet[ChatPost], dict[str, Any]]:
    return ChatPost.objects.filter(Ids("pk", ids), state=ChatPostState.SENDING), changes


_SENT = Update(
    lambda ids, now, remote, error: _settling(
        ids, {"state": ChatPostState.SENT, "sent_at": now, "remote_id": remote, "error": error}
    ),
    takes=(str, datetime, str, str),
)
_SETTLED = Update(
    lambda ids, state, remote, error: _settling(
        ids, {"state": state, "sent_at": None, "remote_id": remote, "error": error}
    ),
    takes=(str, str, str, str),
)


def _emails(people: Any) -> list[str]:
    ids = [p for p in people if isinstance(p, int)] if isinstance(people, list) else []
    return list(
        User.objects.filter(pk__in=ids, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )


def _archive(platform: Any, channel_id: str) -> None:
    channel = ChatChannel.objects.filter(platform=platform.name, channel_id=channel_id).first()
    hook_id = channel.hook_id if channel is not None else ""
    platform.archive(NewChannel(channel_id, hook_id=hook_id))
    ChatChannel.objects.filter(platform=platform.name, channel_id=channel_id).update(
        state=ChatChannelState.ARCHIVED, archived_at=timezone.now(), hook_id="", hook_token=""
    )


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Settle posts that never got an answer, and deliver what no worker was told about."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.CHAT_SENDING_DEADLINE_SECONDS)
    unknown = ChatPost.objects.filter(state=ChatPostState.SENDING, sending_at__lt=deadline).update(
        state=ChatPostState.UNKNOWN, error="no answer from the provider"
    )
    due = (
        ChatPost.objects.filter(state=ChatPostState.QUEUED, created_at__lt=now - SWEEP_AFTER)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by()
        .values_list("platform", "target")
        .distinct()[:1000]
    )
    kicked = 0
    for platform, target in due:
        if platform in PLATFORMS:
            kick(platform, target, again=True)
            kicked += 1
    return {"unknown": unknown, "kicked": kicked}

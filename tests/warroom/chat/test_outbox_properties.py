"""The outbox over random sequences of posts, deliveries, 429s, outages, timeouts and sweeps
against Slack's double: nothing is posted twice, each channel's posts arrive in the order they
were written, and once Slack answers again every post is settled."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import pytest
from django.db import connection
from django.test import TestCase
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fakes.slack import Failure
from warroom.chat import outbox
from warroom.models import ChatPost, ChatPostState
from warroom.slack import client

CHANNELS = 3
HANG = 0.5  # seconds a timed-out call takes to be carried out (the client waits 0.2)
SEQ = re.compile(r"post-(\d+)")

operations = st.lists(
    st.one_of(
        st.tuples(st.just("queue"), st.integers(0, CHANNELS - 1)),
        st.tuples(st.just("deliver"), st.integers(0, CHANNELS - 1)),
        st.tuples(st.just("fail"), st.sampled_from(["429", "500", "down", "timeout", "refused"])),
        st.tuples(st.just("later"), st.just(0)),
        st.tuples(st.just("sweep"), st.just(0)),
    ),
    max_size=25,
)


def seqs_in(post) -> list[int]:
    text = json.dumps(post.blocks or [])
    return [int(n) for n in SEQ.findall(text)]


@given(ops=operations)
@example(ops=[("queue", 0), ("fail", "timeout"), ("deliver", 0), ("queue", 0)])
@example(ops=[("queue", 0), ("queue", 1), ("fail", "429"), ("deliver", 0), ("queue", 0)])
@example(ops=[("queue", 0), ("fail", "down"), ("deliver", 0), ("fail", "down"), ("queue", 0)])
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_posts_arrive_once_and_in_order(fake_slack, monkeypatch, ops):
    monkeypatch.setattr(client, "TIMEOUT_SECONDS", 0.2)
    fake_slack.limits["chat.postMessage"] = (10_000, 1.0)
    fake_slack.limits["chat.postMessage/workspace"] = (10_000, 1.0)
    run = uuid.uuid4().hex[:6].upper()
    targets = [f"C{run}{k}" for k in range(CHANNELS)]
    ChatPost.objects.all().delete()
    fake_slack.posts.clear()
    seq = 0
    for op, arg in ops:
        if op == "queue":
            seq += 1
            with TestCase.captureOnCommitCallbacks(execute=False):
                outbox.queue("slack", targets[arg], "line", body=f"post-{seq}")
        elif op == "deliver":
            outbox.deliver("slack", targets[arg])
        elif op == "fail":
            _fail(fake_slack, arg)
        elif op == "later":
            ChatPost.objects.update(not_before=None)
        else:
            outbox.sweep()
    # Slack answers again, and time passes: everything is settled.
    fake_slack.clear_failures()
    if not fake_slack.running:
        fake_slack.start()
    for _ in range(10):
        ChatPost.objects.update(not_before=None)
        for target in targets:
            outbox.deliver("slack", target)
    if ("fail", "timeout") in ops:
        time.sleep(HANG + 0.2)  # a call answered late is carried out late: let it land
    posts = {p.body: p for p in ChatPost.objects.all()}
    assert {p.state for p in posts.values()} <= {
        ChatPostState.SENT,
        ChatPostState.UNKNOWN,
        ChatPostState.FAILED,
    }
    arrived: dict[str, list[int]] = {}
    for message in fake_slack.posts:
        arrived.setdefault(message.channel, []).extend(seqs_in(message))
    every = [n for numbers in arrived.values() for n in numbers]
    assert len(every) == len(set(every)), "a post reached Slack twice"
    for numbers in arrived.values():
        assert numbers == sorted(numbers), "a channel's posts arrived out of order"
    for body, post in posts.items():
        got = int(body.removeprefix("post-")) in every
        if post.state == ChatPostState.SENT:
            assert got
        elif post.state == ChatPostState.FAILED:
            assert not got


def _fail(fake, kind: str) -> None:
    if kind == "429":
        fake.fail_next("chat.postMessage", Failure(429, "ratelimited", retry_after=1))
    elif kind == "500":
        fake.fail_next("chat.postMessage", Failure(500, "internal_error", retry_after=None))
    elif kind == "refused":
        fake.fail_next("chat.postMessage", Failure(200, "channel_not_found", retry_after=None))
    elif kind == "timeout":
        fake.hang_next("chat.postMessage", HANG, processed=True)
    elif fake.running:
        fake.stop()
    else:
        fake.start()


@pytest.mark.django_db(transaction=True)
def test_workers_delivering_one_channel_at_once_keep_its_order_and_send_once(fake_slack):
    """Four workers deliver one channel while posts keep coming: Slack sees each post once,
    in the order it was written (each call takes a little while, so they overlap)."""
    fake_slack.limits["chat.postMessage"] = (10_000, 1.0)
    fake_slack.limits["chat.postMessage/workspace"] = (10_000, 1.0)
    fake_slack.hang_next("chat.postMessage", 0.05, processed=True, count=1000)
    target = "CRACE"
    done = threading.Event()

    def worker() -> None:
        try:
            while not done.is_set():
                outbox.deliver("slack", target)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for n in range(1, 61):
        outbox.queue("slack", target, "line", body=f"post-{n}")
        time.sleep(0.005)
    deadline = time.monotonic() + 30
    while ChatPost.objects.exclude(state=ChatPostState.SENT).exists():
        assert time.monotonic() < deadline, "the posts were not all delivered"
        time.sleep(0.05)
    done.set()
    for thread in workers:
        thread.join()
    arrived = [n for message in fake_slack.posts_in(target) for n in seqs_in(message)]
    assert arrived == list(range(1, 61))

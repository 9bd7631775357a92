"""A worker's threads for one kind of third-party call are counted per process (core.slots)."""

from __future__ import annotations

import functools
import time

import pytest

from core import slots


def test_slots_are_counted_per_party_and_given_back(settings):
    settings.CHAT_THREADS = 2
    slack = functools.partial(slots.slot, "CHAT_THREADS", "slack")
    with slack() as first, slack() as second:
        with slack() as third:
            assert (first, second, third) == (True, True, False)
        with slots.slot("CHAT_THREADS", "mattermost") as other_platform:
            assert other_platform  # a hung Slack holds up no Mattermost post
        with slots.slot("ACTION_THREADS") as other_kind:
            assert other_kind
    with slack() as again:
        assert again  # given back; the refused one took nothing


def test_a_slot_is_given_back_when_the_call_raises(settings):
    settings.CHAT_THREADS = 1
    with pytest.raises(RuntimeError), slots.slot("CHAT_THREADS"):
        raise RuntimeError("Slack answered nonsense")
    with slots.slot("CHAT_THREADS") as free:
        assert free


def test_a_setting_below_one_still_lets_one_call_through(settings):
    settings.CHAT_THREADS = 0
    with slots.slot("CHAT_THREADS") as free:
        assert free


def test_tasks_of_one_key_finding_no_slot_ask_again_once_a_second():
    asked: list[tuple[str, float]] = []
    for _ in range(5):  # the task's own retry, and the sweeps' re-asks, at once
        slots.ask_again_later("chat:C0SHARED", lambda countdown: asked.append(("a", countdown)))
    slots.ask_again_later("chat:C0OTHER", lambda countdown: asked.append(("b", countdown)))
    assert asked == [("a", slots.RETRY_SECONDS), ("b", slots.RETRY_SECONDS)]

    time.sleep(slots._ONE_ASK_SECONDS + 0.1)  # the retry runs after the mark is gone
    assert slots._ONE_ASK_SECONDS < slots.RETRY_SECONDS
    slots.ask_again_later("chat:C0SHARED", lambda countdown: asked.append(("a", countdown)))
    assert asked[-1] == ("a", slots.RETRY_SECONDS) and len(asked) == 3

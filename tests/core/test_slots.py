"""A worker's threads for one kind of third-party call are counted per process (core.slots)."""

from __future__ import annotations

import threading
import time

import pytest

from core import slots
from tests.helpers.slots import all_slots_taken


def test_slots_are_counted_per_party_and_given_back(settings):
    settings.CHAT_THREADS = 2
    with all_slots_taken("CHAT_THREADS", 2, "slack"):  # two other threads hold Slack's
        with slots.slot("CHAT_THREADS", "slack") as third:
            assert not third
        with slots.slot("CHAT_THREADS", "mattermost") as other_platform:
            assert other_platform  # a hung Slack holds up no Mattermost post
        with slots.slot("ACTION_THREADS") as other_kind:
            assert other_kind
    with slots.slot("CHAT_THREADS", "slack") as again:
        assert again  # given back; the refused one took nothing


def test_a_slot_is_given_back_when_the_call_raises(settings):
    settings.CHAT_THREADS = 1
    with pytest.raises(RuntimeError), slots.slot("CHAT_THREADS"):
        raise RuntimeError("Slack answered nonsense")
    with slots.slot("CHAT_THREADS") as free:
        assert free


def test_a_setting_below_one_lets_one_call_through_at_a_time(settings):
    settings.CHAT_THREADS = 0
    with slots.slot("CHAT_THREADS") as free:
        assert free
    with all_slots_taken("CHAT_THREADS", 1), slots.slot("CHAT_THREADS") as second:
        assert not second


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


def test_a_thread_holding_a_slot_has_it_again_nested_and_gives_it_back_once(settings):
    # A task run eagerly inside another (bench/profile_incident.py) is the same thread: it
    # takes no second slot, and is not refused the one it holds.
    settings.CHAT_THREADS = 1
    other: list[bool] = []

    def another_thread() -> None:
        with slots.slot("CHAT_THREADS", "slack") as free:
            other.append(free)

    with slots.slot("CHAT_THREADS", "slack") as outer:
        with slots.slot("CHAT_THREADS", "slack") as nested:
            assert (outer, nested) == (True, True)
        thread = threading.Thread(target=another_thread)
        thread.start()
        thread.join()
    assert other == [False]  # still held by the outer block after the nested one ended
    thread = threading.Thread(target=another_thread)
    thread.start()
    thread.join()
    assert other == [False, True]

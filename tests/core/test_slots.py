"""A worker's threads for one kind of third-party call are counted per process (core.slots)."""

from __future__ import annotations

import threading
import time

import pytest

from core import slots
from tests.helpers.slots import all_slots_taken, held_in_a_thread


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


def test_a_caller_waits_for_a_slot_while_the_call_holding_it_is_young(settings):
    # Twilio busy in a storm, answering in good time: the next page waits for the thread
    # rather than being sent away for 2 s.
    settings.PAGING_THREADS = 1
    with held_in_a_thread("PAGING_THREADS", "twilio") as release:
        threading.Timer(0.2, release.set).start()
        with slots.slot("PAGING_THREADS", "twilio", patience=30) as free:
            assert free
            assert release.is_set()  # it was given the slot once the holder let it go


def test_the_youngest_call_decides_whether_to_wait(settings):
    # One call stuck past the patience does not send away a page the other slot would take
    # in a moment.
    settings.PAGING_THREADS = 2
    with held_in_a_thread("PAGING_THREADS", "twilio"):
        time.sleep(0.5)  # the first call is older than the patience below
        with held_in_a_thread("PAGING_THREADS", "twilio") as young:
            threading.Timer(0.1, young.set).start()
            with slots.slot("PAGING_THREADS", "twilio", patience=0.4) as free:
                assert free
                assert young.is_set()


@pytest.fixture
def waits(monkeypatch) -> list[float | None]:
    """Every wait for a slot, by how long it was allowed to last."""
    waited: list[float | None] = []
    wait = slots._changed.wait

    def noted(timeout: float | None = None) -> bool:
        waited.append(timeout)
        return wait(timeout)

    monkeypatch.setattr(slots._changed, "wait", noted)
    return waited


def test_a_caller_is_refused_at_once_when_every_call_is_older_than_its_patience(settings, waits):
    # Twilio hanging: every page after the first ones is sent away at once, none holding a
    # thread for its patience in turn.
    settings.PAGING_THREADS = 1
    with held_in_a_thread("PAGING_THREADS", "twilio"):
        time.sleep(0.3)
        with slots.slot("PAGING_THREADS", "twilio", patience=0.2) as free:
            assert not free
        with slots.slot("PAGING_THREADS", "mail", patience=0.2) as other_provider:
            assert other_provider
    assert waits == []
    with slots.slot("PAGING_THREADS", "twilio") as again:
        assert again


def test_one_caller_at_a_time_waits_for_a_party(settings, waits):
    # A party that begins to hang holds its slots and one waiting thread, not every thread.
    settings.PAGING_THREADS = 1
    outcome: list[bool] = []

    def wait_for_a_slot() -> None:
        with slots.slot("PAGING_THREADS", "twilio", patience=30) as free:
            outcome.append(free)

    with held_in_a_thread("PAGING_THREADS", "twilio"):
        waiter = threading.Thread(target=wait_for_a_slot)
        waiter.start()
        deadline = time.monotonic() + 10
        while not waits and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(waits) == 1  # the first caller waits
        with slots.slot("PAGING_THREADS", "twilio", patience=30) as second:
            assert not second  # the second is refused while the first waits
        assert len(waits) == 1 and outcome == []
    waiter.join()
    assert outcome == [True]  # the waiter had the slot once the holder gave it back

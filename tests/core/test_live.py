"""core.live: sends to the channel layer from synchronous code through one kept event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer

from core import live


def test_a_send_from_sync_code_reaches_the_group():
    layer = get_channel_layer()

    async def scenario() -> dict:
        channel = await layer.new_channel()
        await layer.group_add("live-test", channel)
        try:
            await asyncio.to_thread(live.group_send, "live-test", {"type": "t.event", "n": 1})
            return await asyncio.wait_for(layer.receive(channel), 5)
        finally:
            await layer.group_discard("live-test", channel)

    assert asyncio.run(scenario()) == {"type": "t.event", "n": 1}


def test_every_send_shares_one_loop_and_one_thread():
    live.group_send("live-nobody", {"type": "t.event"})
    loop, thread = live._loop, live._thread
    threads_before = threading.active_count()
    for _ in range(5):
        live.group_send("live-nobody", {"type": "t.event"})
    assert (live._loop, live._thread) == (loop, thread)
    assert thread is not None and thread.is_alive()
    assert threading.active_count() == threads_before


def test_a_forked_process_starts_its_own_loop(monkeypatch):
    live.group_send("live-nobody", {"type": "t.event"})
    parents = live._loop
    monkeypatch.setattr(live, "_pid", -1)  # as a child sees its parent's pid
    live.group_send("live-nobody", {"type": "t.event"})
    assert live._loop is not parents and live._pid > 0


def test_async_code_is_told_to_await_the_layer_instead(monkeypatch):
    monkeypatch.setattr(live, "_pid", -1)  # make it look for a loop afresh

    async def inside_a_loop() -> None:
        live.group_send("live-nobody", {"type": "t.event"})

    with pytest.raises(RuntimeError, match="synchronous code"):
        asyncio.run(inside_a_loop())

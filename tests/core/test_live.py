"""core.live: sends to the channel layer from synchronous code through one kept event loop."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator

from core import live
from muster.asgi import application


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


def test_a_forked_child_starts_its_own_loop():
    live.group_send("live-nobody", {"type": "t.event"})
    parents = live._loop
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a send works, on a loop of its own
        try:
            live.group_send("live-nobody", {"type": "t.event"})
            ok = live._loop is not parents and live._thread is not None
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert live._loop is parents  # the parent's is untouched


def test_async_code_is_told_to_await_the_layer_instead():
    live.group_send("live-nobody", {"type": "t.event"})  # the loop exists already

    async def inside_a_loop() -> None:
        live.group_send("live-nobody", {"type": "t.event"})

    with pytest.raises(RuntimeError, match="synchronous code"):
        asyncio.run(inside_a_loop())


def test_the_in_memory_layer_keeps_async_to_sync(settings, monkeypatch):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    assert type(layer).__name__ == "InMemoryChannelLayer"
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("live-memory", channel)

    def kept_loop():
        raise AssertionError("the in-memory layer must not go through the kept loop")

    monkeypatch.setattr(live, "_running_loop", kept_loop)
    live.group_send("live-memory", {"type": "t.event", "n": 2})
    assert async_to_sync(layer.receive)(channel) == {"type": "t.event", "n": 2}


def test_a_worker_threads_send_wakes_the_server_loop_of_the_in_memory_layer(settings):
    """The embedded mode: a websocket consumer waits on the in-memory layer in the server's
    loop, and a Celery thread (no loop of its own, not under the server) sends. async_to_sync
    would run the send in a loop of its own, whose put into the server loop's queue does not
    wake that loop: here, idle, it never woke (in daphne, at its next timer)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    server = asyncio.new_event_loop()
    serving = threading.Thread(target=server.run_forever, name="server", daemon=True)
    serving.start()
    try:

        async def subscribe() -> str:
            live.note_server_loop()  # as muster.asgi does for every connection it serves
            channel = await layer.new_channel()
            await layer.group_add("live-worker", channel)
            return channel

        channel = asyncio.run_coroutine_threadsafe(subscribe(), server).result(5)
        received = asyncio.run_coroutine_threadsafe(layer.receive(channel), server)

        worker = threading.Thread(
            target=live.group_send, args=("live-worker", {"type": "t.event", "n": 3})
        )
        worker.start()
        worker.join(5)

        assert received.result(2) == {"type": "t.event", "n": 3}
    finally:
        server.call_soon_threadsafe(server.stop)
        serving.join(5)
        server.close()
        live.forget_server_loop()


def test_the_asgi_application_notes_the_loop_that_serves_it(db):
    async def scenario() -> bool:
        asking = HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"localhost")])
        response = await asking.get_response()
        assert response["status"] == 200
        return live._server_loop is asyncio.get_running_loop()

    try:
        assert asyncio.run(scenario())
    finally:
        live.forget_server_loop()

"""Send to the channel layer (Channels' group_send) from synchronous code: views, tasks.

The Redis layers go through one event loop per process, kept running in a daemon thread.
`async_to_sync` runs each call in a new event loop, in a new thread, and the Redis layers keep
their connections per event loop: every send paid for a thread, a Redis connection and its
handshake. `python bench/channel_layer.py`, 2026-12-07: 2.49 ms CPU a send that way, 0.34 ms
on the kept loop; a storm's bot posts a message per incident per batch, and each is sent.

The in-memory layer (the embedded one-process mode) lives on the server's own event loop: its
queues belong to it, and another loop must not touch them. `async_to_sync` finds that loop
when called under the server (a view), not from a thread of the embedded Celery worker: there
it ran the send in a loop of its own, whose put into the server loop's queue did not wake the
server, so a websocket client heard of a bot's post or a page only at the server's next timer
(never, on an idle loop: tests/core/test_live.py). muster.asgi notes the server's loop for
every connection it serves (`note_server_loop`), and sends to the in-memory layer go there.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

SEND_SECONDS = 5.0  # a layer that takes longer is in trouble: the caller logs it and goes on

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_server_loop: asyncio.AbstractEventLoop | None = None  # the ASGI server's, for the memory layer


def note_server_loop() -> None:
    """Remember the running loop as the ASGI server's (call it from async code it runs)."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def forget_server_loop() -> None:
    global _server_loop
    _server_loop = None


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send `message` to channel-layer group `group`; nothing without a channel layer.

    Raises what the layer raises, or TimeoutError after SEND_SECONDS (the send is then
    cancelled); RuntimeError when called from async code, which must await the layer.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # waiting here for the loop's answer would block this thread's own loop
        raise RuntimeError("core.live.group_send is for synchronous code; await the layer")
    layer = get_channel_layer()
    if layer is None:
        return
    loop: asyncio.AbstractEventLoop | None
    if type(layer).__module__.startswith("channels_redis."):
        loop = _running_loop()
    else:
        loop = _server_loop
        if loop is None or not loop.is_running():  # no server in this process (a command)
            async_to_sync(layer.group_send)(group, message)
            return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
    try:
        future.result(SEND_SECONDS)
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"the channel layer took over {SEND_SECONDS} s") from None


def _running_loop() -> asyncio.AbstractEventLoop:
    """This process's sending loop, started on first use."""
    global _loop, _thread
    loop, thread = _loop, _thread
    if loop is not None and thread is not None and thread.is_alive():
        return loop
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(
                target=_loop.run_forever, name="muster-channel-layer", daemon=True
            )
            _thread.start()
        return _loop


def _forget_in_child() -> None:
    """A forked child has none of its parent's threads: it starts its own loop, and a lock
    held by a parent's thread at the fork is not held in the child."""
    global _lock, _loop, _thread, _server_loop
    _lock, _loop, _thread, _server_loop = threading.Lock(), None, None, None


os.register_at_fork(after_in_child=_forget_in_child)

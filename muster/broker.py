"""Celery's Redis transport, with a worker that outlives a Redis restart.

kombu 5.7's Redis transport, with Celery 5.7, exits a worker whose broker connection drops
while it holds messages not yet acknowledged (a task with a countdown waiting for its time;
Muster's bot and ingest re-looks use them). On the lost connection Celery first collects the
connection, which detaches the transport from it, then closes it; the close puts the held
messages back on their queue, which asks the detached transport where Redis is, and reading
its address from nothing raises AttributeError. That is no connection error, so the worker
takes it as unrecoverable and exits ("Unrecoverable error: AttributeError("'NoneType' object
has no attribute 'hostname'")"), instead of reconnecting: three times in three with two
countdown tasks held (tests/system/test_broker_restart.py), and in bench/chaos.py's Redis
restarts, where supervisors then took 10.5 s to bring both workers back.

Here a detached transport says so with the connection error it is, which the close ignores as
it ignores Redis being down: the worker reconnects. The held messages are not put back by the
close. When Redis restarted empty they are gone, and as when Redis is flushed the work that
must happen is in PostgreSQL, where the tick finds it and queues it again
(docs/deploying/health.md); when Redis kept them (a dropped connection, a restart with
persistence), kombu redelivers them after its visibility timeout (an hour), as it did after the
worker exited: late duplicates, which the tasks' own checks make harmless.

muster.celery names this transport for redis:// and rediss:// broker URLs.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if getattr(self.connection, "client", None) is None:
            raise RedisConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel

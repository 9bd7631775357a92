"""`manage.py muster_ready`: the older name of `manage.py ready`, for a worker by default.

It checks what it always did: the database, the broker and the beat tick (`ready --role
worker`). Kept so that existing probes go on working.
"""

from __future__ import annotations

from muster.management.commands.ready import Command as ReadyCommand


class Command(ReadyCommand):
    help = "The same as `manage.py ready --role worker` (its older name)."
    default_role = "worker"

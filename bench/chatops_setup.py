"""Set up the ChatOps benchmark's data; run by bench/chatops.py with DATABASE_URL set.

    python bench/chatops_setup.py setup --acks 50 --email bench@example.com

Creates a responder (`--email`, what the Slack double's user has), a service `acks` with chat
off holding `--acks` triggered incidents (their rooms told nowhere: the ack round trip alone),
and a service `storm` with a channel per incident in Slack and the shared channel `--shared`,
with a generic integration. Prints one JSON line: the incidents' numbers and the storm's ingest
path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muster.settings")

import django  # noqa: E402

django.setup()

from accounts.models import Role, User  # noqa: E402
from alerts.models import Integration, Kind  # noqa: E402
from incidents.models import ChatChannelMode, Service, Source  # noqa: E402
from incidents.opening import open_incident  # noqa: E402


def setup(acks: int, email: str, shared: str) -> dict:
    User.objects.create_user("bench", email, os.urandom(16).hex(), role=Role.RESPONDER)
    quiet = Service.objects.create(
        name="acks",
        slack_channel_mode=ChatChannelMode.OFF,
        mattermost_channel_mode=ChatChannelMode.OFF,
    )
    numbers = [
        open_incident(quiet, title=f"Ack bench {k}", severity=3, source=Source.API).number
        for k in range(acks)
    ]
    storm = Service.objects.create(
        name="storm",
        slack_channel_mode=ChatChannelMode.PER_INCIDENT,
        slack_channel=shared,
        mattermost_channel_mode=ChatChannelMode.OFF,
    )
    integration = Integration.objects.create(name="storm", kind=Kind.GENERIC, service=storm)
    return {
        "acks": numbers,
        "storm_path": integration.ingest_path,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["setup"])
    p.add_argument("--acks", type=int, default=50)
    p.add_argument("--email", default="bench@example.com")
    p.add_argument("--shared", default="C0SHARED")
    opts = p.parse_args()
    print(json.dumps(setup(opts.acks, opts.email, opts.shared)))


if __name__ == "__main__":
    main()

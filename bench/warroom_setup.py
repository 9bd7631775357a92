"""Create the war-room benchmark's people, incidents and rooms; print them as JSON.

Run by bench/warroom.py with DATABASE_URL set, after `manage.py migrate`:
    python bench/warroom_setup.py ROOMS PEOPLE
"""

from __future__ import annotations

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
from accounts.services import create_api_token  # noqa: E402
from incidents.models import Service, Source  # noqa: E402
from incidents.opening import open_incident  # noqa: E402
from warroom.services import incident_room  # noqa: E402


def main(rooms: int, people: int) -> None:
    service, _ = Service.objects.get_or_create(name="warroom-bench")
    tokens = []
    for i in range(people):
        user, _ = User.objects.get_or_create(
            username=f"wr{i}", defaults={"role": Role.RESPONDER, "email": f"wr{i}@example.com"}
        )
        _, secret = create_api_token(user, name="bench")
        tokens.append(secret)
    out = []
    for i in range(rooms):
        incident = open_incident(
            service, title=f"warroom bench {i}", severity=2, source=Source.API, actor_name="bench"
        )
        out.append({"room": incident_room(incident).pk, "incident": incident.number})
    print(json.dumps({"tokens": tokens, "rooms": out}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))

"""The surfaces that take commands in: each verifies its request, finds the person, parses the
text with `warroom.commands`, runs it with `warroom.execute` and answers in its own format.

`SURFACES` maps each surface to its module; its name is also the `source` its actions record.
"""

from __future__ import annotations

from types import ModuleType

from warroom.surfaces import sms, voice

SURFACES: dict[str, ModuleType] = {
    "sms": sms,
    "voice": voice,
}

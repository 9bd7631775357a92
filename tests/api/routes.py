"""One API route to check roles on: what tests/api/test_roles.py walks, shared with the route
lists of other apps' tests (tests/*/routes.py), which test_roles imports."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN, RESPONDER, OBSERVER = "admin", "responder", "observer"


@dataclass(frozen=True)
class Route:
    method: str
    route: str  # as the resolver spells it, relative to /api/v1/: "incidents/{number}/resolve/"
    needs: str
    ok: int = 200
    obj: str = ""  # which object of the `world` fixture fills the route's one parameter
    payload: dict = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        return f"{self.method} {self.route}"

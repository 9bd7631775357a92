"""Re-take the documentation's screenshots from a real, freshly seeded Muster.

    .venv/bin/python docs/screenshots.py [--port 8765] [--chromium /usr/bin/chromium]

It starts `./musterctl up` on loopback with a throwaway data directory, signs people up with
manage.py, sends alerts as monitoring systems do (POSTs to the integrations' URLs), acts on them
through the API as a responder would, then photographs pages at 1280x800 with Playwright driving
the system's Chromium, headless (Playwright never downloads a browser here). The PNGs go to
docs/images/, squeezed by pngquant when it is installed (`apt-get install pngquant`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
PYTHON = ROOT / ".venv" / "bin" / "python"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a throwaway demo installation
START_TIMEOUT = 180.0
# The team, made with manage.py: the API creates no people, and verifying a phone takes a code.
TEAM = """
from django.utils import timezone
from accounts.models import Role, User
from oncall.models import ContactKind, ContactMethod, NotificationRule

User.objects.filter(username="alice").update(first_name="Alice")
for name, first, role in [("bob", "Bob", Role.RESPONDER), ("carol", "Carol", Role.RESPONDER),
                          ("dave", "Dave", Role.OBSERVER)]:
    User.objects.create_user(name, f"{name}@example.com", first_name=first, role=role)
for number, name in enumerate(["alice", "bob", "carol"], start=101):
    user = User.objects.get(username=name)
    sms = ContactMethod.objects.create(user=user, kind=ContactKind.SMS,
                                       address=f"+1415555{number:04d}", verified_at=timezone.now())
    for urgency in ("high", "low"):
        NotificationRule.objects.create(user=user, urgency=urgency, delay_minutes=0,
                                        contact_method=sms)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--chromium", default=os.environ.get("MUSTER_CHROMIUM", "/usr/bin/chromium")
    )
    opts = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="muster-screenshots-") as data_dir:
        env = _embedded_env(Path(data_dir))
        with _running_muster(opts.port, env) as base_url:
            muster = Muster(base_url, env)
            shots = seed(muster)
            photograph(base_url, opts.chromium, shots)
    for path in sorted(IMAGES.glob("*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")
    return 0


# --- a running `./musterctl up` --------------------------------------------------------------


def _embedded_env(data_dir: Path) -> dict[str, str]:
    """Return an environment for the embedded mode, kept out of the checkout's var/."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "MUSTER_PUBLIC_URL", "MUSTER_TEST_SERVICES")
    }
    env["MUSTER_DATA_DIR"] = str(data_dir)
    return env


@contextlib.contextmanager
def _running_muster(port: int, env: dict[str, str]) -> Iterator[str]:
    """Start `./musterctl up` on loopback, yield its URL once it is up, and stop it."""
    process = subprocess.Popen(
        ["./musterctl", "up", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    up = threading.Event()

    def echo() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"  muster| {line}", end="", flush=True)
            if "Muster is up" in line:
                up.set()

    threading.Thread(target=echo, daemon=True).start()
    try:
        if not up.wait(START_TIMEOUT):
            raise SystemExit("`./musterctl up` did not come up; its output is above")
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Muster:
    """The running server, reached as its users reach it: manage.py, the API, the ingest URLs."""

    def __init__(self, base_url: str, env: dict[str, str]) -> None:
        self.base_url = base_url
        self.env = env
        self.token = ""

    def manage(self, *args: str, **extra_env: str) -> str:
        done = subprocess.run(
            [str(PYTHON), "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def post(self, url: str, body: object, *, auth: bool = True, method: str = "POST") -> dict:
        """Send `body` as JSON to `url` (a path of this server, or a whole ingest URL)."""
        return self._call(method, url, json.dumps(body).encode(), auth=auth)

    def get(self, path: str) -> dict:
        return self._call("GET", path, None, auth=True)

    def _call(self, method: str, url: str, data: bytes | None, *, auth: bool) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        full = url if url.startswith("http://") else self.base_url + url
        # Only ever this server, on loopback: the URL is ours or one it printed.
        request = urllib.request.Request(full, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise SystemExit(f"{method} {url}: {error.code} {error.read().decode()}") from None
        return json.loads(text) if text else {}


# --- the story the pictures tell ---------------------------------------------------------------


def seed(muster: Muster) -> dict[str, str]:
    """Set up a small team's Muster and a morning of incidents; return the pages to shoot."""
    muster.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    muster.manage("shell", "-c", TEAM)
    muster.token = muster.manage("create_api_token", "alice", "--name", "docs")
    users = {user["username"]: user["id"] for user in muster.get("/api/v1/users/")["results"]}

    checkout = muster.post("/api/v1/services/", {"name": "checkout"})["id"]
    database = muster.post("/api/v1/services/", {"name": "database"})["id"]
    alertmanager = muster.post(
        "/api/v1/integrations/",
        {"name": "prometheus-prod", "kind": "alertmanager", "service": checkout},
    )
    generic = muster.post(
        "/api/v1/integrations/", {"name": "backup scripts", "kind": "generic", "service": database}
    )

    schedule = muster.post(
        "/api/v1/schedules/", {"name": "Checkout primary", "time_zone": "Europe/Berlin"}
    )["id"]
    monday = dt.date.today() - dt.timedelta(days=dt.date.today().weekday())
    muster.post(
        "/api/v1/layers/",
        {
            "schedule": schedule,
            "name": "Daily rotation",
            "rotation": "daily",
            "start": f"{monday - dt.timedelta(days=7)}T09:00:00",
            "participants": [users["alice"], users["bob"], users["carol"]],
        },
    )
    # An override must end in the future: carol covers the next three hours from the hour after.
    soon = dt.datetime.now(ZoneInfo("Europe/Berlin")).replace(minute=0, second=0, microsecond=0)
    soon += dt.timedelta(hours=1)
    muster.post(
        "/api/v1/overrides/",
        {
            "schedule": schedule,
            "user": users["carol"],
            "start": soon.isoformat(),
            "end": (soon + dt.timedelta(hours=3)).isoformat(),
        },
    )
    policy = muster.post(
        "/api/v1/escalation-policies/",
        {
            "name": "Checkout",
            "repeat": 1,
            "steps": [
                {"delay_minutes": 5, "schedules": [schedule]},
                {"delay_minutes": 10, "users": [users["alice"]]},
            ],
        },
    )["id"]
    for service in (checkout, database):
        muster.post("/api/v1/service-policies/", {"service": service, "policy": policy})

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    instance_down = [
        {
            "status": "firing",
            "labels": {
                "alertname": "InstanceDown",
                "severity": "critical",
                "instance": f"web-{n}.prod.example.com:9100",
                "job": "node",
                "env": "production",
            },
            "annotations": {
                "summary": f"Instance web-{n}.prod.example.com:9100 down",
                "description": f"web-{n}.prod.example.com:9100 of job node has been down for "
                "more than 5 minutes.",
            },
            "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://prometheus.example.com/graph?g0.expr=up%3D%3D0",
            "fingerprint": f"instance-down-web-{n}",
        }
        for n in (1, 2)
    ]
    muster.post(
        alertmanager["ingest_url"],
        {
            "version": "4",
            "groupKey": '{}:{alertname="InstanceDown"}',
            "status": "firing",
            "receiver": "muster",
            "groupLabels": {"alertname": "InstanceDown"},
            "commonLabels": {"alertname": "InstanceDown", "job": "node"},
            "commonAnnotations": {},
            "externalURL": "https://alertmanager.example.com",
            "alerts": instance_down,
        },
        auth=False,
    )
    for alert in (
        {"summary": "Disk full on db-1", "severity": "critical", "labels": {"host": "db-1"}},
        {"summary": "Nightly backup failed", "severity": "error", "dedup_key": "backup"},
        {"summary": "Replication lag above 30 s on db-2", "severity": "warning"},
    ):
        muster.post(generic["ingest_url"], alert, auth=False)

    incidents = _wait_for_incidents(muster, 3)
    by_title = {incident["title"]: incident["number"] for incident in incidents}
    web_down = next(n for title, n in by_title.items() if "web-1" in title or "Instance" in title)
    disk = by_title["Disk full on db-1"]
    backup = by_title["Nightly backup failed"]

    room = muster.get(f"/api/v1/incidents/{web_down}/room/")["id"]
    for body in (
        "Looking at it: web-1 stopped answering after the kernel update.",
        "/note rebooting web-1 into the previous kernel",
        "/ack",
    ):
        muster.post(f"/api/v1/rooms/{room}/messages/", {"body": body})
    muster.post(f"/api/v1/incidents/{backup}/acknowledge/", {})
    muster.post(f"/api/v1/incidents/{backup}/resolve/", {"note": "re-ran the backup by hand"})
    muster.post(
        f"/api/v1/incidents/{backup}/postmortem/",
        {
            "summary": "The nightly backup of the orders database failed for one night.",
            "impact": "No customer impact; one night without a fresh backup.",
            "root_cause": "The backup volume filled up after the retention job was disabled.",
        },
        method="PATCH",
    )
    muster.post(
        f"/api/v1/incidents/{backup}/postmortem/action-items/",
        {"description": "Alert at 80% on the backup volume", "owner": "bob"},
    )
    time.sleep(2)  # the bot's posts and the console outbox catch up
    return {
        "incidents": "/incidents/",
        "incident": f"/incidents/{disk}/",
        "war-room": f"/rooms/incident/{web_down}/",
        "oncall": "/oncall/",
        "schedule-week": f"/oncall/schedules/{schedule}/",
        "setup-integration": f"/setup/integrations/{alertmanager['id']}/",
        "profile": "/profile/",
        "outbox": "/outbox/",
        "insights": "/insights/",
        "postmortem": f"/incidents/{backup}/postmortem/",
        "api-docs": "/api/v1/docs/",
    }


def _wait_for_incidents(muster: Muster, count: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        incidents = muster.get("/api/v1/incidents/")["results"]
        if len(incidents) >= count:
            return incidents
        time.sleep(0.5)
    raise SystemExit(f"fewer than {count} incidents opened within {timeout:.0f}s")


# --- the pictures ------------------------------------------------------------------------------


def photograph(base_url: str, chromium: str, shots: dict[str, str]) -> None:
    """Sign in as alice and save each page of `shots` as docs/images/<name>.png."""
    if not Path(chromium).exists():
        raise SystemExit(f"no Chromium at {chromium}: apt-get install chromium, or --chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            page.goto(f"{base_url}/login/")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", PASSWORD)
            page.press("input[name=password]", "Enter")
            page.wait_for_load_state("networkidle")
            for name, path in shots.items():
                _shoot(page, f"{base_url}{path}", IMAGES / f"{name}.png")
        finally:
            browser.close()


def _shoot(page: Page, url: str, target: Path) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    time.sleep(0.5)  # live parts (htmx, websockets) settle
    page.screenshot(path=str(target))
    pngquant = shutil.which("pngquant")
    if pngquant:
        squeeze = [pngquant, "--force", "--skip-if-larger", "--strip", "--quality", "70-95"]
        subprocess.run([*squeeze, "--output", str(target), str(target)], check=False)
    print(f"shot {target.name} from {re.sub(r'^https?://[^/]+', '', url)}")


if __name__ == "__main__":
    sys.exit(main())

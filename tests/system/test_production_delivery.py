"""Production refuses to page nobody: web and worker will not start while a channel reaches only
the console, unless told so; when told so, every surface says it. And the deploy files carry
the providers' settings, keep attachments, and let attachments through nginx."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families

from muster.startup import check_delivery
from oncall.channels.registry import console_fallbacks
from tests.helpers.api import METRICS_AUTH
from tests.helpers.system import ROOT, database_url_of_tests

DEPLOY = ROOT / "deploy"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"


@pytest.fixture
def production(settings):
    """A DATABASE_URL is set (not embedded), nothing configured, nothing allowed."""
    settings.DATABASE_URL = "postgres://muster@db.example.com/muster"
    settings.ALLOW_CONSOLE_DELIVERY = False
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = settings.TWILIO_FROM_NUMBER = ""
    settings.EMAIL_BACKEND = CONSOLE_MAIL
    return settings


def test_nothing_configured_is_refused_naming_what_to_set(production):
    with pytest.raises(ImproperlyConfigured) as refused:
        check_delivery()
    text = str(refused.value)
    assert text.startswith("sms, voice, email would only reach the console outbox")
    assert "TWILIO_ACCOUNT_SID" in text and "EMAIL_URL" in text
    assert "MUSTER_ALLOW_CONSOLE_DELIVERY=1" in text


def test_half_configured_twilio_is_still_refused(production):
    production.EMAIL_BACKEND = SMTP
    production.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    production.TWILIO_AUTH_TOKEN = "token"  # no sender number
    with pytest.raises(ImproperlyConfigured, match=r"^sms, voice would only reach"):
        check_delivery()


@pytest.mark.parametrize("backend", [CONSOLE_MAIL, "django.core.mail.backends.dummy.EmailBackend"])
def test_mail_that_reaches_nobody_is_refused(production, backend):
    production.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    production.TWILIO_AUTH_TOKEN = "token"
    production.TWILIO_FROM_NUMBER = "+15005550006"
    production.EMAIL_BACKEND = backend
    assert console_fallbacks() == ["email"]
    with pytest.raises(ImproperlyConfigured, match=r"^email would only reach"):
        check_delivery()


def test_every_provider_configured_starts(production):
    production.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    production.TWILIO_AUTH_TOKEN = "token"
    production.TWILIO_FROM_NUMBER = "+15005550006"
    production.EMAIL_BACKEND = SMTP
    assert console_fallbacks() == []
    check_delivery()


def test_allowed_explicitly_or_embedded_starts(production):
    production.ALLOW_CONSOLE_DELIVERY = True
    check_delivery()
    production.ALLOW_CONSOLE_DELIVERY = False
    production.DATABASE_URL = ""  # the embedded default
    check_delivery()


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "EMAIL_"))}
    env.pop("MUSTER_ALLOW_CONSOLE_DELIVERY", None)
    env.update(
        # Production's settings, on this test worker's Redis database.
        DJANGO_SETTINGS_MODULE="muster.settings",
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=django_settings.REDIS_URL,
        **extra,
    )
    return env


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "muster.webserver"],
        [str(Path(sys.executable).with_name("celery")), "-A", "muster", "worker", "--pool", "solo"],
    ],
    ids=["web", "worker"],
)
def test_the_real_web_and_worker_refuse_to_start(command):
    done = subprocess.run(
        command, cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "refusing to start: sms, voice, email would only reach the console outbox" in (
        done.stderr
    )


@pytest.mark.django_db
def test_the_real_worker_starts_when_allowed():
    env = _environment(MUSTER_ALLOW_CONSOLE_DELIVERY="1")
    celery = str(Path(sys.executable).with_name("celery"))
    worker = subprocess.Popen(
        [celery, "-A", "muster", "worker", "--pool", "solo", "-l", "info", "-Q", "nothing-here"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in worker.stdout], daemon=True
    ).start()
    try:
        deadline = time.monotonic() + 60
        seen = []
        while not any(" ready." in line for line in seen):
            assert time.monotonic() < deadline, "the worker never said it was ready:\n" + "".join(
                seen[-30:]
            )
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert worker.poll() is None, "the worker exited:\n" + "".join(seen[-30:])
        assert not any("refusing to start" in line for line in seen)
    finally:
        worker.terminate()
        worker.wait(30)


@pytest.mark.django_db
def test_allowed_console_delivery_is_said_by_metrics_readiness_and_the_web_ui(
    client, production, alice
):
    production.ALLOW_CONSOLE_DELIVERY = True
    metrics = client.get("/metrics", **METRICS_AUTH).content.decode()
    [family] = [
        f for f in text_string_to_metric_families(metrics) if f.name == "muster_console_delivery"
    ]
    assert family.samples[0].value == 1
    ready = client.get("/readyz")
    assert ready.json()["console_delivery"] == ["sms", "voice", "email"]
    # Readiness never fails on it: ingest must stay in the load balancer.
    assert not any("console" in p for p in ready.json()["problems"])
    client.force_login(alice)
    page = client.get("/incidents/").content.decode()
    banner = re.search(r'<p class="banner problem" role="alert">(.*?)</p>', page, re.S)
    assert banner and "sms, voice, email go to the" in banner.group(1)
    # The worker's readiness (it serves no HTTP) prints the same report.
    out = StringIO()
    try:
        call_command("muster_ready", stdout=out)
    except CommandError as exc:  # no beat tick ran in this test: not ready, and it says so
        assert "beat tick" in str(exc)
    assert json.loads(out.getvalue())["console_delivery"] == ["sms", "voice", "email"]


def test_with_every_provider_the_metric_is_zero_and_no_banner(client, production, alice, db):
    production.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    production.TWILIO_AUTH_TOKEN = "token"
    production.TWILIO_FROM_NUMBER = "+15005550006"
    production.EMAIL_BACKEND = SMTP
    metrics = client.get("/metrics", **METRICS_AUTH).content.decode()
    assert re.search(r"^muster_console_delivery 0\.0$", metrics, re.M)
    client.force_login(alice)
    assert 'class="banner' not in client.get("/incidents/").content.decode()


# --- the deploy files ----------------------------------------------------------------------------


def test_compose_passes_every_setting_in_env_to_muster_and_keeps_attachments():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    muster = {"migrate", "web", "ws", "worker", "beat"}
    for name in muster:
        assert compose["services"][name]["env_file"] == ".env", name
    for name in ("web", "ws"):
        assert "media:/var/lib/muster/media" in compose["services"][name]["volumes"], name
    assert "media" in compose["volumes"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "MUSTER_DATA_DIR=/var/lib/muster" in dockerfile  # MEDIA_ROOT is its media/
    assert compose["services"]["worker"]["healthcheck"]["test"][-3:] == [
        "ready",
        "--role",
        "worker",
    ]
    example = (DEPLOY / "compose.env.example").read_text()
    for name in ("TWILIO_ACCOUNT_SID", "EMAIL_URL", "MUSTER_METRICS_TOKEN"):
        assert re.search(rf"^{name}=", example, re.M), name


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", size).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


def test_nginx_lets_an_attachment_of_the_largest_size_through(settings):
    nginx = (DEPLOY / "nginx.conf").read_text()
    upload = re.search(
        r"location ~ \^/api/v1/rooms/\[0-9\]\+/messages/\$ \{\s*client_max_body_size "
        r"\$\{MUSTER_UPLOAD_MAX_BODY\};",
        nginx,
    )
    assert upload, "the room-messages location sets its own body limit"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    limit = compose["services"]["nginx"]["environment"]["MUSTER_UPLOAD_MAX_BODY"]
    default = re.fullmatch(r"\$\{MUSTER_UPLOAD_MAX_BODY:-(\w+)\}", limit).group(1)
    form_room = 64 * 1024
    assert _bytes(default) >= settings.WARROOM_ATTACHMENT_MAX_BYTES + form_room
    # Everything else keeps the smaller limit, above the ingest view's own.
    general = re.search(r"^    client_max_body_size (\w+);", nginx, re.M).group(1)
    assert settings.INGEST_MAX_BODY_BYTES < _bytes(general) < _bytes(default)

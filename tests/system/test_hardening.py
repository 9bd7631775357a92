"""Production hardening (review L9): a real secret key or no start, https for pages with HSTS,
ingest, webhooks and probes never redirected (a plain-HTTP write there is refused naming
https), the security settings read from the environment, and `check --deploy` clean."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from alerts.models import Kind
from muster import wsgi
from muster.startup import check_secret_key, secret_key_problem
from tests.helpers.api import METRICS_AUTH
from tests.helpers.system import ROOT, database_url_of_tests

GOOD_KEY = "k7Qx2-vLr9_ZpA4mWnE8tYc1uBo6HjGs3dKfVa0iXe5RqTbNyUwM"  # 52 characters
PUBLIC = "https://muster.example.com"
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": GOOD_KEY,
    "MUSTER_PUBLIC_URL": PUBLIC,
    "ALLOWED_HOSTS": "muster.example.com",
    "CSRF_TRUSTED_ORIGINS": PUBLIC,
    "MUSTER_METRICS_TOKEN": "a-scrape-token",
    "MUSTER_ALLOW_CONSOLE_DELIVERY": "1",
}


def _environment(**extra: str) -> dict[str, str]:
    """Production's settings (muster.settings), on the tests' database and Redis."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MUSTER_", "TWILIO_", "EMAIL_", "PYTEST_", "SECRET_KEY", "DEBUG"))
    }
    env.update(DJANGO_SETTINGS_MODULE="muster.settings", PYTHONUNBUFFERED="1", **extra)
    return env


# --- the secret key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("CHANGE-ME", "placeholder"),
        ("changeme" + "x" * 60, "placeholder"),
        ("django-insecure-" + "abcdefghij" * 5, "placeholder"),
        ("a1b2c3d4e5" * 4, "40 characters long"),
        ("ab" * 40, "fewer than 5 different characters"),
        (GOOD_KEY, None),
    ],
)
def test_placeholder_and_short_keys_are_named(key, problem):
    found = secret_key_problem(key)
    assert (found is None) if problem is None else (problem in found), found


def test_production_refuses_a_placeholder_key_and_embedded_does_not_care(settings):
    settings.DATABASE_URL = "postgres://muster@db.example.com/muster"
    settings.SECRET_KEY = "CHANGE-ME"
    with pytest.raises(ImproperlyConfigured, match=r"^SECRET_KEY is a placeholder.*token_urlsafe"):
        check_secret_key()
    settings.SECRET_KEY = GOOD_KEY
    check_secret_key()
    settings.DATABASE_URL = ""
    settings.SECRET_KEY = "CHANGE-ME"
    check_secret_key()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "muster.webserver"],
        [sys.executable, "-c", "import muster.asgi"],  # what daphne loads (websockets)
    ],
    ids=["web", "ws"],
)
def test_the_real_processes_refuse_the_example_files_key(command):
    env = _environment(
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=django_settings.REDIS_URL,
        SECRET_KEY="CHANGE-ME",
        MUSTER_ALLOW_CONSOLE_DELIVERY="1",
    )
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-2000:])
    assert "SECRET_KEY is a placeholder" in done.stderr


# --- https -------------------------------------------------------------------------------------


@pytest.fixture
def https(settings):
    """MUSTER_PUBLIC_URL=https://… behind a trusted proxy, as security_settings sets it."""
    settings.PUBLIC_URL = PUBLIC
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000
    return settings


TLS = {"HTTP_X_FORWARDED_PROTO": "https"}


@pytest.mark.django_db
def test_pages_are_redirected_to_https_and_carry_hsts(https):
    client = Client()
    plain = client.get("/incidents/?status=open")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/incidents/?status=open"
    secure = client.get("/incidents/", **TLS)
    assert secure.status_code == 302  # on to the sign-in page, over https
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert client.get("/login/", **TLS).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_are_never_redirected(https, path):
    response = Client().get(path, **METRICS_AUTH)
    assert response.status_code in (200, 503), response.status_code  # not 301


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/v2/enqueue", "/v2/alerts", "/twilio/sms/", "/slack/events/", "/generic/x"]
)
def test_a_plain_http_write_to_ingest_or_webhooks_is_refused_naming_https(https, path):
    response = Client().post(path, "{}", content_type="application/json")
    assert response.status_code == 403, response.content
    message = response.json()["error"]["message"]
    assert message == f"Muster takes this over https only: send it to {PUBLIC}{path}"


@pytest.mark.django_db
def test_over_https_ingest_is_taken(https, make_integration):
    make_integration(Kind.PAGERDUTY)
    response = Client().post("/v2/enqueue", "{}", content_type="application/json", **TLS)
    assert response.status_code == 400  # PagerDuty's own refusal of an empty event: it got in


def _wsgi(path: str, body: bytes, **environ: str) -> tuple[str, bytes]:
    """Call production's WSGI application (muster.wsgi: ingest skips the middleware)."""
    started: list[str] = []
    request = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "muster.example.com",
        "SERVER_PORT": "80",
        "HTTP_HOST": "muster.example.com",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        **environ,
    }
    chunks = wsgi.application(request, lambda status, headers, exc=None: started.append(status))
    return started[0], b"".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_production_wsgi_ingest_refuses_plain_http_and_takes_https(https, make_integration):
    integration = make_integration(Kind.ALERTMANAGER)
    https.ALLOWED_HOSTS = ["muster.example.com"]
    path = f"/integrations/alertmanager/{integration.token}/"
    body = json.dumps({"version": "4", "status": "firing", "alerts": []}).encode()
    status, content = _wsgi(path, body)
    assert status.startswith("403"), content
    assert b"https only" in content
    status, content = _wsgi(path, body, HTTP_X_FORWARDED_PROTO="https")
    assert status.startswith("200"), content  # Alertmanager's answer: taken


# --- the settings, read from the environment ---------------------------------------------------

PRINT = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k, None) for k in ("
    "'TRUSTED_PROXIES', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER', 'SECURE_HSTS_SECONDS',"
    "'SESSION_COOKIE_SECURE', 'SESSION_COOKIE_AGE', 'AXES_FAILURE_LIMIT', 'LOGIN_IP_FAILURE_LIMIT',"
    "'AXES_COOLOFF_TIME', 'AXES_LOCKOUT_PARAMETERS', 'AUTH_PASSWORD_VALIDATORS')}, default=str))"
)


def _settings_under(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=ROOT,
        env=_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_embedded_default_trusts_no_proxy_and_never_redirects(tmp_path):
    env = {k: v for k, v in os.environ.items() if k in ("DATABASE_URL", "REDIS_URL")}
    seen = _settings_under(MUSTER_DATA_DIR=str(tmp_path), **dict.fromkeys(env, ""))
    assert seen["TRUSTED_PROXIES"] == []
    assert seen["SECURE_SSL_REDIRECT"] is False
    assert seen["SECURE_PROXY_SSL_HEADER"] is None
    assert seen["SESSION_COOKIE_AGE"] == 12 * 3600
    assert seen["AXES_FAILURE_LIMIT"] == 5 and seen["LOGIN_IP_FAILURE_LIMIT"] == 20
    assert seen["AXES_COOLOFF_TIME"] == "0:15:00"
    assert seen["AXES_LOCKOUT_PARAMETERS"] == [["username", "ip_address"], "ip_address"]
    assert len(seen["AUTH_PASSWORD_VALIDATORS"]) == 4


def test_production_behind_https_trusts_local_nginx_and_redirects(tmp_path):
    seen = _settings_under(
        **PRODUCTION_ENV,
        DATABASE_URL="postgres://muster@db.example.com/muster",
        MUSTER_DATA_DIR=str(tmp_path),
        MUSTER_SESSION_HOURS="2",
        MUSTER_LOGIN_FAILURE_LIMIT="7",
        MUSTER_LOGIN_IP_FAILURE_LIMIT="50",
        MUSTER_LOGIN_COOLOFF_MINUTES="30",
    )
    assert seen["TRUSTED_PROXIES"] == ["127.0.0.1", "::1"]
    assert seen["SECURE_SSL_REDIRECT"] is True
    assert seen["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert seen["SECURE_HSTS_SECONDS"] == 31_536_000
    assert seen["SESSION_COOKIE_SECURE"] is True
    assert seen["SESSION_COOKIE_AGE"] == 2 * 3600
    assert seen["AXES_FAILURE_LIMIT"] == 7 and seen["LOGIN_IP_FAILURE_LIMIT"] == 50
    assert seen["AXES_COOLOFF_TIME"] == "0:30:00"


def test_https_without_a_trusted_proxy_does_not_redirect_in_a_loop(tmp_path):
    # Nothing could say a request came over https: redirecting would never end.
    seen = _settings_under(
        **PRODUCTION_ENV,
        DATABASE_URL="postgres://muster@db.example.com/muster",
        MUSTER_DATA_DIR=str(tmp_path),
        MUSTER_TRUSTED_PROXIES="",
    )
    assert seen["SECURE_SSL_REDIRECT"] is False and seen["SECURE_PROXY_SSL_HEADER"] is None
    assert seen["SESSION_COOKIE_SECURE"] is True


# --- check --deploy ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = _environment(
        **PRODUCTION_ENV,
        DATABASE_URL=database_url_of_tests(),
        REDIS_URL=django_settings.REDIS_URL,
        MUSTER_DATA_DIR=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "System check identified no issues" in done.stdout


# --- the deploy files ----------------------------------------------------------------------------

DEPLOY = ROOT / "deploy"


def test_nginx_tells_muster_the_client_and_the_scheme_in_every_location():
    nginx = (DEPLOY / "nginx.conf").read_text()
    proxied = [block for block in nginx.split("\n    location ")[1:] if "proxy_pass" in block]
    assert len(proxied) == 3
    for block in proxied:
        assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in block
        assert "proxy_set_header X-Forwarded-Proto $muster_forwarded_proto;" in block
    assert re.search(r"map \$http_x_forwarded_proto \$muster_forwarded_proto", nginx)


def test_compose_trusts_its_own_network_as_the_proxy():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    trusted = compose["x-muster"]["environment"]["MUSTER_TRUSTED_PROXIES"]
    for network in ("127.0.0.1", "172.16.0.0/12", "192.168.0.0/16", "10.0.0.0/8"):
        assert network in trusted


@pytest.mark.parametrize("example", ["muster.env.example", "compose.env.example"])
def test_the_env_examples_name_the_new_settings(example):
    text = (DEPLOY / example).read_text()
    for name in (
        "MUSTER_METRICS_TOKEN",
        "MUSTER_TRUSTED_PROXIES",
        "MUSTER_LOGIN_FAILURE_LIMIT",
        "MUSTER_LOGIN_IP_FAILURE_LIMIT",
        "MUSTER_LOGIN_COOLOFF_MINUTES",
        "MUSTER_SESSION_HOURS",
        "MUSTER_HSTS_SECONDS",
    ):
        assert re.search(rf"^#? ?{name}=", text, re.M), name
    # The placeholder is there to be replaced, and says it is refused.
    assert "refuse to start with this placeholder" in text

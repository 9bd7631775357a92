"""Where actions may connect: refused destinations when saved and when run, after resolving the
host once, and the connection going to the address that was checked (no DNS rebinding)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys

import pytest

from incidents.models import EntryKind
from runbooks.actions import request_run
from runbooks.models import Action, ActionRun, RunStatus
from runbooks.tasks import run_action
from tests.helpers.api import API, assert_error
from tests.runbooks.conftest import serving

LABELS = {"alertname": "DiskFull", "instance": "db-1:9100"}
REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def default_policy(settings) -> None:
    settings.ACTION_ALLOWED_NETWORKS = []
    settings.ACTION_DENIED_NETWORKS = []


def _last_entry(incident) -> str:
    return incident.timeline.filter(kind=EntryKind.ACTION).order_by("id").last().message


def _resolving(monkeypatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Make getaddrinfo answer `host` with the next address list of answers[host] (the last one
    repeats); every other host resolves as usual. Returns the hosts asked, in order."""
    asked: list[str] = []

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if host not in answers or flags & socket.AI_NUMERICHOST:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        asked.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        infos = []
        for address in addresses:
            v6 = ":" in address
            family_ = socket.AF_INET6 if v6 else socket.AF_INET
            sockaddr = (address, port, 0, 0) if v6 else (address, port)
            infos.append((family_, socket.SOCK_STREAM, 6, "", sockaddr))
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_a_local_endpoint_is_refused_by_default_and_allowed_by_the_admin(
    default_policy, settings, endpoint, make_action, make_incident, bob
):
    action = make_action(endpoint.url("/ok/job"))
    incident = make_incident(LABELS)
    run = request_run(action, incident, bob)
    assert run_action(run.pk) == RunStatus.FAILED
    assert endpoint.received == []
    run.refresh_from_db()
    assert run.error == (
        "127.0.0.1 is in 127.0.0.0/8 (loopback): actions may not call it; "
        "an admin can allow it with MUSTER_ACTION_ALLOWED_NETWORKS"
    )
    assert _last_entry(incident) == f"action restart-db failed: {run.error}"

    settings.ACTION_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    again = request_run(action, incident, bob)
    assert run_action(again.pk) == RunStatus.SUCCEEDED
    assert len(endpoint.received) == 1


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://127.0.0.1:8000/api/", "127.0.0.1 is in 127.0.0.0/8 (loopback)"),
        ("http://2130706433/", "2130706433 is in 127.0.0.0/8 (loopback)"),
        ("http://localhost:8000/", "127.0.0.0/8 (loopback)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16 (link-local"),
        ("http://[::ffff:169.254.169.254]/", "169.254.0.0/16 (link-local"),
        ("http://[fd00:ec2::254]/", "AWS's IPv6 metadata service"),
        ("http://100.100.100.200/latest/", "Alibaba"),
        ("http://[::1]:9/", "::1/128 (loopback)"),
        ("http://0.0.0.0:8000/", "0.0.0.0/8 (this host)"),
    ],
)
def test_an_admin_cannot_save_an_action_that_names_a_denied_address(
    default_policy, as_alice, make_runbook, service, url, fragment
):
    book = make_runbook("Disk full", service=service)
    response = as_alice.post(
        API + f"runbooks/{book.pk}/actions/", {"name": "probe", "url": url}, format="json"
    )
    assert_error(response, 400, fragment, "MUSTER_ACTION_ALLOWED_NETWORKS")
    assert not Action.objects.exists()


def test_private_ranges_are_saved_unless_the_admin_denies_them(
    default_policy, settings, as_alice, make_runbook, service
):
    book = make_runbook("Disk full", service=service)
    url = API + f"runbooks/{book.pk}/actions/"
    made = as_alice.post(url, {"name": "jenkins", "url": "http://10.0.0.5/job"}, format="json")
    assert made.status_code == 201, made.content
    settings.ACTION_DENIED_NETWORKS = ["10.0.0.0/8"]
    refused = as_alice.post(url, {"name": "rundeck", "url": "http://10.0.0.6/"}, format="json")
    assert_error(refused, 400, "10.0.0.6 is in 10.0.0.0/8 (denied by the admin)")


@pytest.mark.parametrize(
    ("addresses", "fragment"),
    [
        (["169.254.169.254"], "169.254.169.254, in 169.254.0.0/16"),
        (["::ffff:127.0.0.1"], "127.0.0.1, in 127.0.0.0/8 (loopback)"),
        # Every address counts, not only the first one.
        (["10.0.0.5", "127.0.0.1"], "127.0.0.1, in 127.0.0.0/8"),
    ],
)
def test_a_name_is_checked_after_resolution_when_the_action_runs(
    default_policy, monkeypatch, make_action, make_incident, bob, addresses, fragment
):
    asked = _resolving(monkeypatch, {"hooks.example.com": [addresses]})
    run = request_run(make_action("http://hooks.example.com/x"), make_incident(LABELS), bob)
    assert run_action(run.pk) == RunStatus.FAILED
    error = ActionRun.objects.get(pk=run.pk).error
    assert error.startswith("hooks.example.com resolves to ")
    assert fragment in error
    assert asked == ["hooks.example.com"]


def test_the_connection_goes_to_the_checked_address_whatever_dns_says_next(
    settings, monkeypatch, make_action, make_incident, bob
):
    # 127.0.0.2 stands for an allowed server; 127.0.0.1 for an internal one behind it.
    settings.ACTION_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    with serving("127.0.0.2") as allowed:
        port = int(allowed.base.rsplit(":", 1)[1])
        with serving("127.0.0.1", port) as internal:
            asked = _resolving(monkeypatch, {"hooks.example.com": [["127.0.0.2"], ["127.0.0.1"]]})
            action = make_action(f"http://hooks.example.com:{port}/ok/job")
            run = request_run(action, make_incident(LABELS), bob)
            assert run_action(run.pk) == RunStatus.SUCCEEDED
    assert asked == ["hooks.example.com"]  # resolved once
    assert internal.received == []
    (sent,) = allowed.received
    assert sent.headers["Host"] == f"hooks.example.com:{port}"  # the URL's name, not the IP
    assert sent.path == "/ok/job"


def test_https_checks_the_certificate_for_the_urls_name_on_the_checked_address(
    settings, monkeypatch, endpoint, make_action, make_incident, bob
):
    port = int(endpoint.base.rsplit(":", 1)[1])
    _resolving(monkeypatch, {"hooks.example.com": [["127.0.0.1"], ["10.9.9.9"]]})
    wrapped: list[tuple[str | None, tuple]] = []

    def wrap_socket(self, sock, server_hostname=None, **kwargs):
        wrapped.append((server_hostname, sock.getpeername()))
        raise ssl.SSLCertVerificationError("recorded")

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap_socket)
    action = make_action(f"https://hooks.example.com:{port}/ok/job")
    run = request_run(action, make_incident(LABELS), bob)
    assert run_action(run.pk) == RunStatus.FAILED
    assert wrapped == [("hooks.example.com", ("127.0.0.1", port))]  # SNI and the check: the name
    assert ActionRun.objects.get(pk=run.pk).error.startswith("TLS failed")


def test_a_bad_network_setting_stops_the_start():
    env = {**os.environ, "MUSTER_ACTION_DENIED_NETWORKS": "10.0.0.0/8,10.0.0.0/33"}
    started = subprocess.run(
        [sys.executable, "-c", "import muster.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "MUSTER_ACTION_ALLOWED/DENIED_NETWORKS: '10.0.0.0/33' is not a network" in started.stderr


def test_an_actions_url_is_never_written_as_null(as_alice, make_runbook, service):
    # Read as null by non-admins; written as null it would be a database error, not a 400.
    book = make_runbook("Disk full", service=service)
    response = as_alice.post(
        API + f"runbooks/{book.pk}/actions/", {"name": "probe", "url": None}, format="json"
    )
    assert_error(response, 400, "null")
    assert not Action.objects.exists()

"""Runbook automation actions: check, preview, request a run, and run it (from the Celery task).

Safety, in one place:
- The URL and headers are what an admin configured, sent as written. Alert labels and the
  incident fill the payload only (runbooks.templating), never the URL or a header: no request
  forgery through labels.
- One HTTP request with the standard library's http.client: no redirects are followed (a 3xx is
  a failure), no proxy, no shell, nothing but http and https.
- Only to addresses the admin's network policy allows (runbooks.destinations): loopback,
  link-local and cloud metadata addresses are refused by default, when a URL naming one is
  saved and, after resolving the host once, when it runs; the connection goes to the checked
  addresses only (no DNS rebinding).
- A hard deadline: a watchdog shuts the socket when `timeout_seconds` are up, however slowly
  the endpoint drips its answer; the run is then `timed_out`.
- A run is claimed by a conditional update (pending → running) before the call, so a task
  delivered twice calls once. A run whose worker died is closed by `sweep_runs`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from celery import current_app
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from core import slots
from incidents.models import EntryKind, Incident, Source
from incidents.timeline import record
from runbooks import destinations, templating
from runbooks.models import (
    EXCERPT_BYTES,
    MAX_ACTION_TIMEOUT,
    UNFINISHED,
    Action,
    ActionRun,
    RunStatus,
)
from runbooks.services import payload_context

log = logging.getLogger(__name__)

USER_AGENT = "Muster-runbook-action/1"
# Headers an admin may not set: http.client writes them from the URL and body.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer"}
)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}")
MAX_HEADERS = 20
# A run still pending this long was never picked up: enqueue it again; after STALE, give up.
REKICK_AFTER = timedelta(seconds=30)
STALE = timedelta(minutes=10)


class ActionError(Exception):
    """An action that cannot be run or configured; the message says why, for the person."""


class ActionRefused(ActionError):
    """The person's role does not allow running the action."""


class ActionBusy(ActionError):
    """The action is already running for the incident."""


# --- configuration checks (used by the API and the admin) --------------------------------------


def check_url(url: str) -> str:
    """Return `url` if it is an absolute http(s) URL an action may call; raise ActionError."""
    if not isinstance(url, str) or not url:
        raise ActionError("an action needs a URL")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise ActionError("the URL cannot contain spaces or control characters")
    if "{{" in url or "{" in url:
        raise ActionError("an action's URL is never templated; put placeholders in the payload")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ActionError(f"the URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionError("the URL must be an absolute http:// or https:// URL")
    if parts.fragment:
        raise ActionError("the URL cannot have a #fragment")
    try:
        destinations.check_host(parts.hostname)
    except destinations.DestinationRefused as exc:
        raise ActionError(str(exc)) from None
    return url


def check_headers(headers: object) -> dict[str, str]:
    """Return `headers` if they are a fixed {name: value} object an action may send."""
    if not isinstance(headers, dict):
        raise ActionError('headers must be an object like {"Authorization": "Bearer …"}')
    if len(headers) > MAX_HEADERS:
        raise ActionError(f"at most {MAX_HEADERS} headers")
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ActionError(f"{name[:40]!r} is not a valid header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise ActionError(f"the {name} header is set by Muster, not by the action")
        if not isinstance(value, str):
            raise ActionError(f"the {name} header's value must be a string")
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value) or len(value) > 4096:
            raise ActionError(f"the {name} header's value cannot hold line breaks or controls")
        if "{{" in value:
            raise ActionError("headers are never templated; put placeholders in the payload")
    return headers


def target(url: str) -> str:
    """Return the host and path of `url`, without credentials or query (it may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{host}{parts.path or '/'}"


# --- asking for a run ---------------------------------------------------------------------------


def check_may_run(action: Action, user: User, incident: Incident) -> None:
    """Raise ActionRefused unless `user` may run `action`, or ActionError if it does not fit."""
    needed = Role(action.role)
    if not user.has_role(needed):
        raise ActionRefused(
            f"Running {action.name} needs the {needed.value} role; "
            f"{user.get_username()} is {user.role}."
        )
    runbook = action.runbook
    if runbook.service_id is not None and runbook.service_id != incident.service_id:
        raise ActionError(
            f"{action.name} belongs to the runbook {runbook.title!r} of service "
            f"{runbook.service.name}; incident #{incident.number} is on {incident.service.name}."
        )


@dataclass(frozen=True)
class Preview:
    """What a run would send: shown in chat before the person confirms."""

    method: str
    target: str  # host and path
    content_type: str
    body: str  # for the person only: the admin's template may hold tokens
    fills: tuple[tuple[str, str], ...] = ()  # (placeholder, value) the incident fills in


def preview(action: Action, incident: Incident, user: User) -> Preview:
    """Return what running `action` for `incident` as `user` would send (checks the role)."""
    check_may_run(action, user, incident)
    body = _body(action, incident, user)
    context = payload_context(incident, user)
    names = dict.fromkeys(templating.placeholders(action.payload_template))
    fills = tuple((name, str(context.lookup(name))) for name in names)
    return Preview(action.method, target(action.url), action.content_type, body, fills)


def _body(action: Action, incident: Incident, user: User) -> str:
    try:
        return templating.render(
            action.payload_template, action.content_type, payload_context(incident, user)
        )
    except templating.TemplateError as exc:
        raise ActionError(f"{action.name} cannot run: {exc}.") from None


def request_run(
    action: Action, incident: Incident, user: User, *, source: str = Source.CHAT
) -> ActionRun:
    """Start running `action` for `incident` as `user`: check, record, enqueue after commit."""
    check_may_run(action, user, incident)
    body = _body(action, incident, user)
    with transaction.atomic():
        incident = Incident.objects.locked().select_related("service").get(pk=incident.pk)
        busy = (
            ActionRun.objects.filter(action=action, incident=incident, status__in=UNFINISHED)
            .select_related("requested_by")
            .first()
        )
        if busy is not None:
            who = busy.requested_by.get_username() if busy.requested_by else "someone"
            raise ActionBusy(
                f"{action.name} is already {busy.status} for #{incident.number} "
                f"(started by {who}); wait for its result."
            )
        run = ActionRun.objects.create(
            action=action,
            action_name=action.name,
            incident=incident,
            requested_by=user,
            method=action.method,
            url=action.url,
            request_body=body,
        )
        record(
            incident,
            EntryKind.ACTION,
            message=f"{user.get_username()} started action {action.name}: "
            f"{action.method} {target(action.url)}",
            source=source,
            by=user,
            data={"run": run.pk, "action": action.name, "status": run.status},
        )
        transaction.on_commit(lambda: _enqueue_run(run.pk))
    return run


def _enqueue_run(run_id: int, *, countdown: float | None = None) -> None:
    # By the task's name: runbooks.tasks imports this module to perform the run.
    current_app.send_task("runbooks.run_action", args=[run_id], countdown=countdown)


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    status: str  # succeeded | failed | timed_out
    http_status: int | None = None
    excerpt: str = ""
    error: str = ""


def perform(run_id: int) -> ActionRun | None:
    """Claim run `run_id`, make its HTTP call, and record the result. Returns None when the run
    was already claimed (a task delivered twice) or does not exist, or when this worker's
    threads for actions are all waiting on endpoints: then it is asked for again shortly
    (core.slots), still pending."""
    with slots.slot("ACTION_THREADS") as free:
        if not free:
            if ActionRun.objects.filter(pk=run_id, status=RunStatus.PENDING).exists():
                slots.ask_again_later(
                    f"runbooks.run_action:{run_id}",
                    lambda countdown: _enqueue_run(run_id, countdown=countdown),
                )
            return None
        return _perform(run_id)


def _perform(run_id: int) -> ActionRun | None:
    claimed = ActionRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = ActionRun.objects.select_related("action", "incident").get(pk=run_id)
    action = run.action
    if action is None:
        result = CallResult(RunStatus.FAILED, error="the action was deleted before it ran")
    else:
        ours = {
            "Content-Type": f"{action.content_type}; charset=utf-8",
            "User-Agent": USER_AGENT,
            # A receiver that sees a run twice can tell it is the same run.
            "Idempotency-Key": f"muster-action-run-{run.pk}",
            "X-Muster-Incident": str(run.incident.number),
        }
        configured = {name.lower() for name in action.headers}
        headers = {k: v for k, v in ours.items() if k.lower() not in configured}
        headers.update(action.headers)
        timeout = min(max(action.timeout_seconds, 1), MAX_ACTION_TIMEOUT)
        result = call(run.method, run.url, run.request_body.encode(), headers, timeout)
    return finish(run, result)


@transaction.atomic
def finish(run: ActionRun, result: CallResult) -> ActionRun:
    """Record a run's result on it and on its incident's timeline."""
    run = ActionRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in UNFINISHED:
        return run  # the sweep closed it meanwhile
    run.status = result.status
    run.http_status = result.http_status
    run.response_excerpt = result.excerpt
    run.error = result.error[:2000]
    run.finished_at = timezone.now()
    run.save()
    record(
        run.incident,
        EntryKind.ACTION,
        message=result_message(run),
        source=Source.SYSTEM,
        data={
            "run": run.pk,
            "action": run.action_name,
            "status": run.status,
            "http_status": run.http_status,
            "requested_by": run.requested_by_id,
        },
    )
    return run


def result_message(run: ActionRun) -> str:
    """Say how a run ended, in one line: "action restart-db succeeded: HTTP 200". The timeline
    and the war room are read by observers too: the answer's excerpt stays on the run."""
    head = f"action {run.action_name}"
    if run.status == RunStatus.TIMED_OUT:
        return f"{head} timed out: {run.error}" if run.error else f"{head} timed out"
    parts = [f"{head} {run.get_status_display()}:"]
    if run.http_status is not None:
        parts.append(f"HTTP {run.http_status}")
    if run.error:
        parts.append(run.error)
    return " ".join(parts)


def call(method: str, url: str, body: bytes, headers: dict[str, str], timeout: float) -> CallResult:
    """Send one HTTP request and return how it went; never raises for network trouble.

    `timeout` bounds the whole exchange: connect, send, status, headers and the excerpt read
    (name resolution only by the system resolver's own limits: it cannot be interrupted).
    """
    try:
        check_url(url)
    except ActionError as exc:
        return CallResult(RunStatus.FAILED, error=str(exc))
    parts = urlsplit(url)
    headers = dict(headers)
    if parts.username is not None and not any(k.lower() == "authorization" for k in headers):
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection = destinations.open_connection(parts, timeout)
    except destinations.DestinationRefused as exc:
        return CallResult(RunStatus.FAILED, error=str(exc))
    except OSError as exc:
        return CallResult(RunStatus.FAILED, error=_network_error(exc))

    expired = threading.Event()

    def expire() -> None:
        # Wake whatever read or write is blocked, however the endpoint paces its bytes.
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    started = time.monotonic()
    watchdog.start()
    status: int | None = None
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        location = response.getheader("Location", "")
        raw = _read_excerpt(response)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            waited = time.monotonic() - started
            return CallResult(
                RunStatus.TIMED_OUT, error=f"no answer within {timeout:g} s (waited {waited:.1f} s)"
            )
        return CallResult(RunStatus.FAILED, error=_network_error(exc))
    finally:
        watchdog.cancel()
        connection.close()
    excerpt = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
    cut = " (the answer was cut off at the timeout)" if expired.is_set() else ""
    if 200 <= status < 300:
        return CallResult(RunStatus.SUCCEEDED, status, excerpt, cut.strip(" ()"))
    if 300 <= status < 400:
        where = target(location) if location.startswith(("http://", "https://")) else location
        error = f"redirects are not followed (to {where[:200]})" if where else "a redirect"
        return CallResult(RunStatus.FAILED, status, excerpt, error)
    return CallResult(RunStatus.FAILED, status, excerpt, cut.strip(" ()"))


def _read_excerpt(response: http.client.HTTPResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < EXCERPT_BYTES:
        chunk = response.read(EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _network_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({getattr(exc, 'reason', None) or exc})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the endpoint closed the connection without answering"
    text = str(exc) or type(exc).__name__
    return text[:300]


# --- keeping runs honest -----------------------------------------------------------------------


def sweep_runs(now: datetime | None = None) -> int:
    """Enqueue runs that were never picked up again, and close runs no worker will finish.

    Returns how many runs it closed. Celery only speeds runs up: the rows are the truth.
    """
    now = now or timezone.now()
    pending = ActionRun.objects.filter(status=RunStatus.PENDING)
    for pk in pending.filter(
        created_at__lte=now - REKICK_AFTER, created_at__gt=now - STALE
    ).values_list("pk", flat=True):
        _enqueue_run(pk)  # claiming makes a second delivery harmless
    closed = 0
    never = CallResult(
        RunStatus.FAILED,
        error="it was never picked up by a worker (none ran it, or none had an action thread free)",
    )
    for run in pending.filter(created_at__lte=now - STALE):
        finish(run, never)
        closed += 1
    # A running run outlives its timeout only if its worker died mid-call.
    lost = CallResult(
        RunStatus.FAILED,
        error="the worker stopped during the call; the endpoint may or may not have acted",
    )
    deadline = now - timedelta(seconds=MAX_ACTION_TIMEOUT) - REKICK_AFTER
    for run in ActionRun.objects.filter(status=RunStatus.RUNNING, started_at__lte=deadline):
        finish(run, lost)
        closed += 1
    return closed

"""Slack's requests: every one verified (v0 signature, 5 minutes, once), answered at once, the
work queued for a worker (warroom.slack.tasks) once the request's transaction commits.

Refusals use the API's JSON error shape: 404 when Slack is not configured, 401 for a request
that is unsigned, forged, stale or replayed, 400 for one Slack would never send.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import current_app
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from warroom import replay
from warroom.slack import verify
from warroom.slack.tasks import COMMAND_TASK, MENTION_TASK

log = logging.getLogger(__name__)

# What a slash command's answer says at once; the real answer follows through response_url.
WORKING = "Working on it…"
TOO_LONG = "That is too long for a Muster command ({most} characters at most)."
NOT_TEXT = "That holds characters a Muster command cannot take."
TEXT_MOST = 2000
FIELD_MOST = 200
# Fields of the slash command's form that the task uses.
COMMAND_FIELDS = ("team_id", "user_id", "channel_id", "text", "response_url")


def error(status: int, message: str) -> JsonResponse:
    """A refusal in the API's JSON error shape (core.api_errors)."""
    return JsonResponse(
        {"error": {"status": status, "message": message, "problems": [message]}}, status=status
    )


def _refusal(request: HttpRequest) -> JsonResponse | None:
    if not verify.configured():
        return error(404, "Slack is not configured.")
    if not verify.is_signed(request):
        return error(401, "Missing, invalid or expired Slack signature.")
    return None


@csrf_exempt
@require_POST
def slash_command(request: HttpRequest) -> HttpResponse:
    """`/muster <command>`: answer within Slack's 3 seconds; a task runs it and answers."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    form = {name: request.POST.get(name, "") for name in COMMAND_FIELDS}
    missing = [name for name in COMMAND_FIELDS if name != "text" and not form[name]]
    if missing:
        return error(400, f"Missing fields: {', '.join(missing)}.")
    if any(len(form[name]) > FIELD_MOST for name in COMMAND_FIELDS if name != "text"):
        return error(400, "A field is too long.")
    if not form["response_url"].startswith(("https://", "http://")):
        return error(400, "response_url is not a URL.")
    with transaction.atomic():
        if not verify.first_time(request):
            return error(401, "This Slack request was already received.")
        if len(form["text"]) > TEXT_MOST:
            return _ephemeral(TOO_LONG.format(most=TEXT_MOST))
        if "\x00" in form["text"]:
            return _ephemeral(NOT_TEXT)
        transaction.on_commit(lambda: current_app.send_task(COMMAND_TASK, args=[form]))
    return _ephemeral(WORKING)


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> HttpResponse:
    """The Events API: the URL check, and `app_mention`; each event acts once (Slack retries
    with the same event_id, answered 200)."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    try:
        payload = json.loads(request.body)
    except ValueError:
        return error(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return error(400, "The body is not a JSON object.")
    with transaction.atomic():
        if not verify.first_time(request):
            return error(401, "This Slack request was already received.")
        if payload.get("type") == "url_verification":
            return JsonResponse({"challenge": str(payload.get("challenge", ""))[:200]})
        if payload.get("type") != "event_callback":
            return HttpResponse(status=200)  # another kind of callback: nothing to do
        return _event(payload, request.headers.get("X-Slack-Retry-Num", ""))


def _event(payload: dict[str, Any], retry: str) -> HttpResponse:
    event, event_id = payload.get("event"), payload.get("event_id")
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        return error(400, "An event_callback needs an event and its event_id.")
    if not replay.first_time(replay.slack_event_key(event_id)):
        log.info("Slack event %s seen before (retry %s): not acted on again", event_id[:40], retry)
        return HttpResponse(status=200)
    if event.get("type") != "app_mention" or event.get("bot_id") or event.get("subtype"):
        # Muster's own posts and other bots' carry a bot_id; `message` events in incident
        # channels wait for channel-per-incident.
        return HttpResponse(status=200)
    mention = {
        "team": str(payload.get("team_id", ""))[:FIELD_MOST],
        **{
            name: str(event.get(name, ""))[: TEXT_MOST if name == "text" else FIELD_MOST]
            for name in ("user", "channel", "text", "ts", "thread_ts")
        },
    }
    transaction.on_commit(lambda: current_app.send_task(MENTION_TASK, args=[mention]))
    return HttpResponse(status=200)


def _ephemeral(text: str) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "text": text})

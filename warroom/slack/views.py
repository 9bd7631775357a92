"""Slack's requests (slash commands, events, button clicks): every one verified (v0 signature,
5 minutes, once), answered at once, the work queued for a worker (warroom.slack.tasks) within
the request's transaction.

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

from core.api_errors import error_json
from warroom import replay
from warroom.slack import answering, buttons, verify
from warroom.slack.channel_messages import SPOKEN_SUBTYPES, incident_in
from warroom.slack.tasks import BUTTON_TASK, COMMAND_TASK, MENTION_TASK, MESSAGE_TASK

log = logging.getLogger(__name__)

# What a slash command's answer says at once; the real answer follows through response_url.
WORKING = "Working on it…"
NOT_QUEUED = "Muster could not start on this just now; nothing was done. Try again in a moment."
TOO_LONG = "That is too long for a Muster command ({most} characters at most)."
NOT_TEXT = "That holds characters a Muster command cannot take."
TEXT_MOST = 2000
FIELD_MOST = 200
# Fields of the slash command's form that the task uses.
COMMAND_FIELDS = ("team_id", "user_id", "channel_id", "text", "response_url")


def _refusal(request: HttpRequest) -> JsonResponse | None:
    if not verify.configured():
        return error_json(404, "Slack is not configured.")
    if not verify.is_signed(request):
        return error_json(401, "Missing, invalid or expired Slack signature.")
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
        return error_json(400, f"Missing fields: {', '.join(missing)}.")
    if any(len(form[name]) > FIELD_MOST for name in COMMAND_FIELDS if name != "text"):
        return error_json(400, "A field is too long.")
    if not form["response_url"].startswith(("https://", "http://")):
        return error_json(400, "response_url is not a URL.")
    try:
        with transaction.atomic():
            if not verify.first_time(request):
                return error_json(401, "This Slack request was already received.")
            if len(form["text"]) > TEXT_MOST:
                return _ephemeral(TOO_LONG.format(most=TEXT_MOST))
            if "\x00" in form["text"]:
                return _ephemeral(NOT_TEXT)
            _queue(COMMAND_TASK, form)
    except QueueUnavailable:
        return _ephemeral(NOT_QUEUED)
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
        return error_json(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return error_json(400, "The body is not a JSON object.")
    try:
        return _event_callback(request, payload)
    except QueueUnavailable:
        # Rolled back, event_id and all: Slack retries the event, and the retry acts.
        return error_json(503, NOT_QUEUED)


def _event_callback(request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
    with transaction.atomic():
        if not verify.first_time(request):
            return error_json(401, "This Slack request was already received.")
        if payload.get("type") == "url_verification":
            return JsonResponse({"challenge": str(payload.get("challenge", ""))[:200]})
        if payload.get("type") != "event_callback":
            return HttpResponse(status=200)  # another kind of callback: nothing to do
        return _event(payload, request.headers.get("X-Slack-Retry-Num", ""))


def _event(payload: dict[str, Any], retry: str) -> HttpResponse:
    event, event_id = payload.get("event"), payload.get("event_id")
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        return error_json(400, "An event_callback needs an event and its event_id.")
    if not replay.first_time(replay.slack_event_key(event_id)):
        log.info("Slack event %s seen before (retry %s): not acted on again", event_id[:40], retry)
        return HttpResponse(status=200)
    if event.get("bot_id"):
        return HttpResponse(status=200)  # Muster's own posts and other bots' carry a bot_id
    fields = {
        "team": str(payload.get("team_id", ""))[:FIELD_MOST],
        **{
            name: str(event.get(name, ""))[: TEXT_MOST if name == "text" else FIELD_MOST]
            for name in ("user", "channel", "text", "ts", "thread_ts")
        },
    }
    if event.get("type") == "app_mention" and not event.get("subtype"):
        _queue(MENTION_TASK, fields)
    elif (
        event.get("type") == "message"
        and str(event.get("subtype") or "") in SPOKEN_SUBTYPES
        and incident_in(fields["channel"]) is not None
    ):
        # Someone writing in an incident's own channel (edits, deletions, joins are not).
        _queue(MESSAGE_TASK, {**fields, "files": _file_names(event.get("files"))})
    return HttpResponse(status=200)


def _file_names(files: Any) -> str:
    """The names of the files a `file_share` message shared, for the room to say."""
    if not isinstance(files, list):
        return ""
    names = [
        str(file.get("name") or file.get("title") or "a file")
        for file in files
        if isinstance(file, dict)
    ]
    return ", ".join(names)[:FIELD_MOST]


@csrf_exempt
@require_POST
def interactivity(request: HttpRequest) -> HttpResponse:
    """A click on a button of the bot's post: answered 200 at once; a task runs its command
    as the person and answers through the click's response_url. The link button
    ("Open in Muster") and anything else: 200, nothing done."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    click = _click(request.POST.get("payload", ""))
    if isinstance(click, JsonResponse):
        return click
    try:
        with transaction.atomic():
            if not verify.first_time(request):
                return error_json(401, "This Slack request was already received.")
            if click is not None:
                _queue(BUTTON_TASK, click)
    except QueueUnavailable:
        if click is not None:
            answering.respond(
                click["response_url"], NOT_QUEUED, in_channel=False, replace_original=False
            )
    return HttpResponse(status=200)


def _click(raw: str) -> dict[str, str] | JsonResponse | None:
    """Return what a `block_actions` payload asks of a worker; None for nothing to do (a link
    button, an action that is not Muster's, another kind of interaction), or the 400."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return error_json(400, "payload is not JSON.")
    if not isinstance(payload, dict):
        return error_json(400, "payload is not a JSON object.")
    if payload.get("type") != "block_actions":
        return None
    actions, user = payload.get("actions"), payload.get("user")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        return error_json(400, "A block_actions payload needs its actions.")
    if not isinstance(user, dict):
        return error_json(400, "A block_actions payload needs its user.")
    team, channel = payload.get("team"), payload.get("channel")
    fields = {
        "action_id": actions[0].get("action_id"),
        "value": actions[0].get("value", ""),
        "user": user.get("id"),
        "team": (team.get("id") if isinstance(team, dict) else None) or user.get("team_id"),
        "channel": channel.get("id", "") if isinstance(channel, dict) else "",
        "response_url": payload.get("response_url"),
    }
    if not all(isinstance(value, str) for value in fields.values()):
        return error_json(400, "A block_actions payload needs its action, user and team.")
    if any(len(value) > FIELD_MOST for value in fields.values()):
        return error_json(400, "A field is too long.")
    command = buttons.command_for(fields["action_id"], fields["value"])
    if command is None:
        return None  # "Open in Muster" (a link) or an action that is not Muster's
    if not fields["user"] or not fields["response_url"].startswith(("https://", "http://")):
        return error_json(400, "A button click needs its user and response_url.")
    return {**fields, "command": command}


class QueueUnavailable(Exception):
    """The broker did not take the task; the request's transaction is rolled back."""


def _queue(task: str, payload: dict[str, str]) -> None:
    """Hand `payload` to a worker now, inside the request's transaction: the task reads only
    the payload, and a broker that is down rolls the replay records back with the rest, so
    Slack's retry (or the person's second try) is not refused as a replay."""
    try:
        current_app.send_task(task, args=[payload])
    except Exception as exc:
        log.warning("Slack request not queued (%s): %s", task, exc)
        raise QueueUnavailable from exc


def _ephemeral(text: str) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "text": text})

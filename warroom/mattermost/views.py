"""Mattermost over HTTP: the slash command (`POST /mattermost/commands/`), the incident
channels' outgoing webhooks (`POST /mattermost/events/`) and the buttons
(`POST /mattermost/actions/`).

Refusals use the API's JSON error shape: 404 when Mattermost is not configured, 401 for a
request without the right token, 403 for a button Muster did not make, 400 for a body that is
not Mattermost's payload.
"""

from __future__ import annotations

import json
import logging

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.api_errors import error_json
from warroom.mattermost import actions, answers, buttons, channel_messages, outbound, slash
from warroom.mattermost import webhook as hooks

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def command(request: HttpRequest) -> JsonResponse:
    """Answer `/muster …` with Mattermost's slash-command response: 404 when Mattermost is not
    configured, 401 without a slash command's token, 400 for what is not its payload."""
    if not slash.configured():
        raise Http404("Mattermost is not configured.")
    payload = slash.fields(request)
    if not slash.authentic(payload, request.headers.get("Authorization", "")):
        log.warning("Mattermost command refused: no slash command's token")
        return error_json(401, "A Mattermost slash command's token is needed.")
    try:
        command = slash.slash_command(payload)
    except slash.BadPayload as exc:
        log.warning("Mattermost command refused: %s", exc)
        return error_json(400, str(exc))
    return JsonResponse(answers.answer(command))


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    """A message in an incident's channel, from its outgoing webhook: acted on once, answered
    with the webhook's response (a reply in the thread, or nothing)."""
    if not outbound.configured():
        raise Http404("Mattermost is not configured.")
    payload = hooks.fields(request)
    if payload is None:
        return error_json(400, "The body is neither a JSON object nor a form.")
    channel = hooks.hook_channel(payload)
    if channel is None:
        log.warning("Mattermost webhook refused: not an incident channel's webhook token")
        return error_json(401, "An incident channel's outgoing webhook token is needed.")
    try:
        message = hooks.channel_post(payload)
    except slash.BadPayload as exc:
        return error_json(400, str(exc))
    return JsonResponse(channel_messages.receive(message, channel))


@csrf_exempt
@require_POST
def action(request: HttpRequest) -> JsonResponse:
    """A click on a button of the bot's opening post: run as the clicker, answered with
    `ephemeral_text`."""
    if not outbound.configured():
        raise Http404("Mattermost is not configured.")
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return error_json(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return error_json(400, "The body is not a JSON object.")
    channel_id = payload.get("channel_id")
    command = buttons.command_for(
        payload.get("context"), channel_id if isinstance(channel_id, str) else ""
    )
    if command is None:
        log.warning("Mattermost button refused: a context Muster did not make")
        return error_json(403, "This button was not made by Muster.")
    user_id = payload.get("user_id")
    if not isinstance(user_id, str) or not user_id or len(user_id) > slash.FIELD_MAX:
        return error_json(400, "user_id is missing.")
    return JsonResponse(actions.click(user_id, command))

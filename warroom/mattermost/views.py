"""Mattermost's slash command over HTTP: `POST /mattermost/commands/`."""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.api_errors import error_json
from warroom.mattermost import answers, slash

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

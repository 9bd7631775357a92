"""The project's error handlers: DRF's exception handler, handler404 and handler500 answer in the
API's one JSON error shape, and map the incident verbs' errors to HTTP statuses."""

from __future__ import annotations

from typing import Any

from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse
from django.views import defaults
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.api_errors import error_body, error_json, error_response
from incidents.selectors import IncidentNotFound, NotAllowed
from incidents.services import IllegalTransition, IncidentError


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out += _flatten(value, f"{prefix}{name}: " if name else prefix)
        return out
    if isinstance(detail, list):
        return [p for item in detail for p in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def _in_use(exc: ProtectedError | RestrictedError) -> str:
    kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
    return f"This is still used by {', '.join(kinds)}, so it cannot be deleted."


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ProtectedError | RestrictedError):
        return error_response(http.HTTP_409_CONFLICT, _in_use(exc))
    if isinstance(exc, IncidentNotFound):
        return error_response(http.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, NotAllowed):
        return error_response(http.HTTP_403_FORBIDDEN, str(exc))
    if isinstance(exc, IllegalTransition):
        return error_response(http.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, IncidentError):
        return error_response(http.HTTP_400_BAD_REQUEST, str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    problems = _flatten(response.data)
    message = problems[0] if len(problems) == 1 else "the request is invalid"
    if isinstance(response.data, dict) and "detail" in response.data and len(response.data) == 1:
        message = str(response.data["detail"])
        problems = [message]
    response.data = error_body(response.status_code, message, problems)
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# Where senders post alerts (alerts.ingest): programs, which read JSON, not pages.
INGEST_PREFIXES = ("/integrations/", "/v2/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: the JSON error shape under /api/ and the ingest paths, Django's page
    elsewhere."""
    if request.path.startswith(INGEST_PREFIXES):
        message = f"There is no ingest endpoint at {request.path}."
    elif _is_api(request):
        message = f"There is no API endpoint at {request.path}."
    else:
        return defaults.page_not_found(request, exception)
    return error_json(404, message)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the JSON error shape under /api/, Django's page elsewhere."""
    if not _is_api(request):
        return defaults.server_error(request)
    message = "Muster failed to handle this request; the error is logged."
    return error_json(500, message)

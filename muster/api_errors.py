"""One JSON shape for every API error: {"error": {"status", "message", "problems"}}."""

from __future__ import annotations

from typing import Any

from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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


def exception_handler(exc: Exception, context: dict) -> Response | None:
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
    response.data = {
        "error": {"status": response.status_code, "message": message, "problems": problems}
    }
    return response


def error_response(status: int, message: str) -> Response:
    return Response(
        {"error": {"status": status, "message": message, "problems": [message]}}, status=status
    )

"""What API views share for errors: the one JSON shape, {"error": {"status", "message",
"problems"}}, 409 Conflict, and the checks that refuse a malformed request with 400."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework import status as http
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response


class Conflict(APIException):
    """A well-formed request that clashes with the current state (deleting a thing in use)."""

    status_code = http.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ParseBodyFirst:
    """Read the body of every write before acting, so a malformed one is refused with 400 even
    where the action takes no arguments. Runs after authentication and role checks."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            request.data  # noqa: B018 - parsing raises ParseError / UnsupportedMediaType


def check_query_text(params) -> None:
    """Refuse query parameters holding NUL characters, which PostgreSQL text cannot hold."""
    bad = sorted({name for name, values in params.lists() if any("\x00" in v for v in values)})
    if bad:
        raise ValidationError([f"{name} cannot contain NUL characters" for name in bad])


def error_body(status: int, message: str, problems: list[str] | None = None) -> dict[str, Any]:
    """Return the one JSON error shape: {"error": {"status", "message", "problems"}}."""
    return {"error": {"status": status, "message": message, "problems": problems or [message]}}


def error_response(status: int, message: str) -> Response:
    """Return a DRF response in the one JSON error shape."""
    return Response(error_body(status, message), status=status)


def error_json(status: int, message: str, problems: list[str] | None = None) -> JsonResponse:
    """Return a plain Django response in the one JSON error shape (views outside DRF)."""
    return JsonResponse(error_body(status, message, problems), status=status)

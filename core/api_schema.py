"""The OpenAPI document's error responses: every operation lists the refusals it can answer, each
in the one JSON error shape of core.api_errors, so clients (and the schema fuzzing in CI) know
every status the API may send.

A drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]): views keep
documenting their successes with `extend_schema`; this adds what every view shares.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every refusal of the API: what went wrong, one problem per item.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status, repeated."},
                "message": {"type": "string"},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["status", "message", "problems"],
        }
    },
    "required": ["error"],
}
WHY = {
    "400": "The request is malformed or invalid; `problems` says what to change.",
    "401": "No valid API token (or session) came with the request.",
    "403": "The caller's role does not allow this.",
    "404": "No such object (or cursor), or the caller may not see it.",
    "409": "The request conflicts with the current state (e.g. the object is still in use).",
    "415": "The body is not in a supported media type; send application/json.",
}
WRITES = frozenset({"post", "put", "patch", "delete"})


def error_statuses(method: str, operation: dict[str, Any]) -> list[str]:
    """The refusals an operation can answer: every one needs a role; ids can be unknown; any
    input can be invalid; a write can conflict or come in a media type no parser takes."""
    statuses = ["401", "403"]
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation or method in WRITES:
        statuses.append("400")
    if any(p.get("in") == "path" or p.get("name") == "cursor" for p in parameters):
        statuses.append("404")
    if method in WRITES:
        statuses += ["409", "415"]
    return sorted(statuses)


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """Add the shared error responses to every operation of the generated document."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in error_statuses(method, operation):
                operation["responses"].setdefault(
                    status,
                    {
                        "description": WHY[status],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result

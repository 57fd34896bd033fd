"""The Linkis response envelope ``{method, status, message, data}``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework.response import Response

__all__ = [
    "API_PREFIX",
    "HTTP_STATUS",
    "STATUS_ERROR",
    "STATUS_FORBIDDEN",
    "STATUS_NOT_LOGGED_IN",
    "STATUS_OK",
    "STATUS_VALIDATION",
    "STATUS_WARNING",
    "envelope",
    "linkis_json_response",
    "linkis_response",
    "method_for",
]

API_PREFIX = "/api/rest_j/v1"

STATUS_OK = 0
STATUS_ERROR = 1
STATUS_NOT_LOGGED_IN = -1
STATUS_VALIDATION = 2
STATUS_FORBIDDEN = 3
STATUS_WARNING = 4

# Linkis derives the HTTP status from the envelope's status.
HTTP_STATUS = {
    STATUS_OK: 200,
    STATUS_ERROR: 400,
    STATUS_NOT_LOGGED_IN: 401,
    STATUS_VALIDATION: 412,
    STATUS_FORBIDDEN: 403,
    STATUS_WARNING: 206,
}


def method_for(path: str) -> str:
    """The envelope's ``method``: ``/api`` plus the path after ``/api/rest_j/v1``."""
    if path.startswith(API_PREFIX):
        return "/api" + path[len(API_PREFIX) :]
    return path


def envelope(
    path: str, data: dict[str, Any] | None = None, message: str = "OK", status: int = STATUS_OK
) -> dict[str, Any]:
    """The envelope body for a request to ``path``."""
    return {
        "method": method_for(path),
        "status": status,
        "message": message,
        "data": {} if data is None else data,
    }


def linkis_response(
    request: HttpRequest,
    data: dict[str, Any] | None = None,
    message: str = "OK",
    status: int = STATUS_OK,
    http_status: int | None = None,
) -> Response:
    """A DRF response carrying the envelope, its HTTP status derived from ``status``."""
    return Response(
        envelope(request.path, data, message, status),
        status=http_status or HTTP_STATUS[status],
    )


def linkis_json_response(
    request: HttpRequest,
    data: dict[str, Any] | None = None,
    message: str = "OK",
    status: int = STATUS_OK,
    http_status: int | None = None,
) -> JsonResponse:
    """The same envelope as a plain Django response, for middleware and non-DRF views."""
    return JsonResponse(
        envelope(request.path, data, message, status),
        status=http_status or HTTP_STATUS[status],
        json_dumps_params={"ensure_ascii": False, "separators": (",", ":")},
    )

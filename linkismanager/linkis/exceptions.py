"""Errors as Linkis envelopes: one exception handler for every API view.

Whatever goes wrong (bad JSON, a missing field, an unknown enum name, a wrong verb, a refused
permission, a domain error or a bug) the client gets the envelope with a message naming the
problem, never an HTML page or a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from linkismanager.exceptions import ManagerError
from linkismanager.linkis.envelope import (
    HTTP_STATUS,
    STATUS_ERROR,
    STATUS_NOT_LOGGED_IN,
    envelope,
)

__all__ = [
    "NOT_LOGGED_IN_MESSAGE",
    "LinkisAPIError",
    "coded_message",
    "error_data",
    "flatten_errors",
    "linkis_exception_handler",
]

logger = logging.getLogger(__name__)

NOT_LOGGED_IN_MESSAGE = "You are not logged in, please login first!(您尚未登录，请先登录!)"
INTERNAL_ERROR_MESSAGE = (
    "operation failed(操作失败)s！the reason(原因)：an internal error occurred; it has been logged."
)


def coded_message(code: int, text: str) -> str:
    """Linkis' text for an error that has a code."""
    return f"error code(错误码): {code}, error message(错误信息): {text}."


def error_data(code: int, text: str) -> dict[str, Any]:
    """The ``data.errorMsg`` map Linkis adds to coded errors."""
    return {"errorMsg": {"level": 2, "errCode": code, "desc": text, "serviceKind": "linkis-cg-linkismanager"}}


class LinkisAPIError(exceptions.APIException):
    """An error answered as an envelope with the given Linkis status (1 unless said otherwise)."""

    status_code = 400
    default_detail = "operation failed(操作失败)"
    default_code = "linkis_error"

    def __init__(
        self,
        message: str,
        *,
        linkis_status: int = STATUS_ERROR,
        code: int | None = None,
        data: dict[str, Any] | None = None,
        http_status: int | None = None,
    ) -> None:
        self.linkis_status = linkis_status
        self.linkis_code = code
        self.message = coded_message(code, message) if code is not None else message
        self.data = data if data is not None else (error_data(code, message) if code is not None else {})
        self.status_code = http_status or HTTP_STATUS[linkis_status]
        super().__init__(self.message)


def flatten_errors(detail: Any, prefix: str = "") -> list[str]:
    """Validation details as readable ``field: problem`` lines."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            lines.extend(flatten_errors(value, f"{prefix}.{name}" if prefix and name else (name or prefix)))
        return lines
    if isinstance(detail, list):
        lines = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                lines.extend(flatten_errors(value, f"{prefix}[{index}]"))
            else:
                lines.extend(flatten_errors(value, prefix))
        return lines
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def _answer(context: dict[str, Any], message: str, status: int, http_status: int, data: dict | None = None) -> Response:
    request = context.get("request")
    path = request.path if request is not None else ""
    return Response(envelope(path, data, message, status), status=http_status)


def linkis_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """The REST framework's exception handler, answering every error as a Linkis envelope."""
    set_rollback()
    if isinstance(exc, LinkisAPIError):
        return _answer(context, exc.message, exc.linkis_status, exc.status_code, exc.data)
    if isinstance(exc, ManagerError):
        if exc.code is not None:
            return _answer(
                context, coded_message(exc.code, exc.message), STATUS_ERROR, 400, error_data(exc.code, exc.message)
            )
        return _answer(context, exc.message, STATUS_ERROR, 400)
    if isinstance(exc, exceptions.NotAuthenticated):
        return _answer(context, NOT_LOGGED_IN_MESSAGE, STATUS_NOT_LOGGED_IN, 401)
    if isinstance(exc, exceptions.AuthenticationFailed):
        return _answer(context, str(exc.detail), STATUS_NOT_LOGGED_IN, 401)
    if isinstance(exc, exceptions.MethodNotAllowed):
        view = context.get("view")
        allowed = ", ".join(getattr(view, "allowed_methods", []) or [])
        message = f"{exc.detail} Allowed: {allowed}." if allowed else str(exc.detail)
        return _answer(context, message, STATUS_ERROR, 405)
    if isinstance(exc, exceptions.NotFound | Http404):
        return _answer(context, str(getattr(exc, "detail", "") or "Not found."), STATUS_ERROR, 404)
    if isinstance(exc, exceptions.ParseError):
        return _answer(context, f"Malformed request body: {exc.detail}", STATUS_ERROR, 400)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return _answer(context, f"{exc.detail} Send the body as application/json.", STATUS_ERROR, 400)
    if isinstance(exc, exceptions.ValidationError):
        message = "; ".join(flatten_errors(exc.detail)) or "Invalid request."
        return _answer(context, message, STATUS_ERROR, 400)
    if isinstance(exc, exceptions.APIException | DjangoPermissionDenied):
        detail = getattr(exc, "detail", None) or "Permission denied."
        return _answer(context, str(detail), STATUS_ERROR, 400)
    # A bug: log it with its traceback for staff, tell the client only that it happened.
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return _answer(context, INTERNAL_ERROR_MESSAGE, STATUS_ERROR, 500)

"""Request and ticket ids on every log line, from the web request through the task to the agent.

The web side takes the request id from ``X-Request-ID`` (or makes one) and echoes it in the
answer; a task carries it in its message headers, and the worker or agent that runs the task
logs under the same id. Engine work also logs the engine's ticket id.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery import signals
from django.http import HttpRequest, HttpResponse

__all__ = ["ContextFilter", "RequestIdMiddleware", "current_request_id", "ticket_context"]

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_ticket_id: ContextVar[str] = ContextVar("ticket_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = "request_id"


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def ticket_context(ticket_id: object) -> Iterator[None]:
    """Log the lines of this block under an engine's ticket id."""
    token = _ticket_id.set(str(ticket_id))
    try:
        yield
    finally:
        _ticket_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``ticket_id`` to every record (attach it to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.ticket_id = _ticket_id.get()
        return True


class RequestIdMiddleware:
    """Gives each request an id (a sane ``X-Request-ID`` from the client, else a new one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


@signals.before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None and _request_id.get() != "-":
        headers[HEADER] = _request_id.get()


@signals.task_prerun.connect
def _adopt_request_id(task: Any = None, **kwargs: Any) -> None:
    request_id = getattr(task.request, HEADER, None) if task is not None else None
    _request_id.set(request_id if isinstance(request_id, str) and _SAFE_ID.match(request_id) else "-")

"""Views of the plumbing itself: unknown API paths and server errors as envelopes."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.views import APIView

from linkismanager.linkis.envelope import STATUS_ERROR, linkis_json_response
from linkismanager.linkis.exceptions import INTERNAL_ERROR_MESSAGE

__all__ = ["LinkisAPIView", "not_found", "server_error", "unknown_api_path"]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

logger = logging.getLogger(__name__)


@csrf_exempt
def unknown_api_path(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """Any path under the API that no endpoint serves, whatever the verb."""
    return linkis_json_response(
        request,
        message=f"Unknown API path {request.path}.",
        status=STATUS_ERROR,
        http_status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: an envelope on the API, a plain line elsewhere; never a traceback."""
    if request.path.startswith("/api/"):
        return linkis_json_response(request, message=INTERNAL_ERROR_MESSAGE, status=STATUS_ERROR, http_status=500)
    return HttpResponse("Server error; it has been logged.", status=500, content_type="text/plain")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: an envelope on the API."""
    if request.path.startswith("/api/"):
        return unknown_api_path(request)
    return HttpResponse("Not found.", status=404, content_type="text/plain")


class LinkisAPIView(APIView):
    """Base of every Linkis endpoint.

    A body that is sent is parsed up front, before the handler runs, so malformed JSON or a wrong
    content type is refused the same way on every endpoint, including those that ignore the body.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in BODY_METHODS and request.stream is not None:
            request.data  # noqa: B018 - parsing raises ParseError / UnsupportedMediaType here

"""Refusal of cross-site requests that would ride on the session cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from linkismanager.linkis.envelope import STATUS_FORBIDDEN, linkis_json_response

__all__ = ["CrossSiteRequestMiddleware", "request_is_cross_site"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def request_is_cross_site(request: HttpRequest) -> str | None:
    """The foreign origin a request comes from, or None when it is same-site or says nothing.

    Browsers send ``Origin`` (or at least ``Referer``) with unsafe requests; command-line clients
    send neither and carry no ambient cookie worth stealing, so a request with neither passes.
    """
    source = request.META.get("HTTP_ORIGIN") or request.META.get("HTTP_REFERER")
    if not source:
        return None
    netloc = _netloc(source)
    if netloc is None:
        return source  # "null" or junk: an opaque origin is never trusted
    try:
        host = request.get_host().lower()
    except DisallowedHost:
        return source
    if netloc == host:
        return None
    trusted = {_netloc(origin) for origin in settings.CSRF_TRUSTED_ORIGINS}
    if netloc in trusted:
        return None
    return source


class CrossSiteRequestMiddleware:
    """On the API, refuse unsafe requests whose Origin/Referer is neither this host nor trusted.

    Unsafe means POST/PUT/PATCH/DELETE, and GET on a view marked ``changes_state_on_get``.

    Linkis clients authenticate with a cookie and send no CSRF token, so this check (with the
    SameSite=Lax cookie) is what keeps another site from acting with a user's session.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        # A few Linkis GETs change state; their views say so with ``changes_state_on_get``.
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        unsafe = request.method not in SAFE_METHODS or getattr(view_class, "changes_state_on_get", False)
        if not unsafe:
            return None
        origin = request_is_cross_site(request)
        if origin is None:
            return None
        return linkis_json_response(
            request,
            message=f"Cross-site request refused: origin {origin} is not trusted.",
            status=STATUS_FORBIDDEN,
        )

"""How a caller is known: the Linkis session cookie, or the ``Token-Code`` / ``Token-User`` headers."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from linkismanager.linkis.envelope import STATUS_ERROR, linkis_json_response

__all__ = [
    "LinkisSessionAuthentication",
    "TokenHeaderAuthentication",
    "lockout_message",
    "lockout_response",
]


class LinkisSessionAuthentication(SessionAuthentication):
    """The Django session behind the ``linkis_user_session_ticket_id_v1`` cookie.

    Linkis clients send no CSRF token. Cross-site use of the cookie is stopped instead by the
    SameSite=Lax cookie and by ``CrossSiteRequestMiddleware``, which checks Origin/Referer on every
    unsafe request, so the token check of DRF is not enforced here.
    """

    def enforce_csrf(self, request: Request) -> None:
        return None

    def authenticate_header(self, request: Request) -> str:
        # Any value makes DRF answer 401 (not 403) to an anonymous caller.
        return 'Cookie realm="linkis"'


class TokenHeaderAuthentication(BaseAuthentication):
    """``Token-Code`` + ``Token-User``: act as that user if the token allows it.

    A user named by a valid token who has no account yet gets one without a password, as Linkis
    users arrive from the gateway's directory rather than from our database.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        from linkismanager.models import Token

        code = request.META.get("HTTP_TOKEN_CODE", "").strip()
        if not code:
            return None
        user_name = request.META.get("HTTP_TOKEN_USER", "").strip()
        if not user_name:
            raise AuthenticationFailed("Token-User header is required with Token-Code.")
        token = Token.objects.for_code(code)
        if token is None:
            raise AuthenticationFailed("Unknown token.")
        if token.is_expired():
            raise AuthenticationFailed(f"Token {token.name} has expired.")
        if not token.allows_user(user_name):
            raise AuthenticationFailed(f"Token {token.name} may not act as user {user_name}.")
        if not token.allows_host(request.META.get("REMOTE_ADDR")):
            raise AuthenticationFailed(f"Token {token.name} may not be used from this host.")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=user_name)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        if not user.is_active:
            raise AuthenticationFailed(f"User {user_name} is inactive.")
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return "Token-Code"


def lockout_message() -> str:
    from django.conf import settings

    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    return f"Too many failed logins for this user from this address; try again in {seconds} seconds."


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """What a locked-out login attempt gets (django-axes' lockout callable)."""
    if request.path.startswith("/api/"):
        return linkis_json_response(request, message=lockout_message(), status=STATUS_ERROR)
    return HttpResponse(lockout_message(), status=429, content_type="text/plain; charset=utf-8")

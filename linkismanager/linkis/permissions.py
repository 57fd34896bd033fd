"""Who may do what: the Linkis admin predicate and the permission classes built on it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

__all__ = ["IsLinkisAdmin", "is_linkis_admin", "request_is_admin"]


def is_linkis_admin(user: Any) -> bool:
    """A Linkis admin: a Django superuser or a user named in ``LINKIS_ADMIN_USERS`` (any case)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser or user.get_username().lower() in settings.LINKIS_ADMIN_USERS)


def request_is_admin(request: Request) -> bool:
    """Whether the request has admin rights: an admin user, or a token with the admin flag."""
    from linkismanager.models import Token

    if isinstance(getattr(request, "auth", None), Token) and request.auth.is_admin:
        return True
    return is_linkis_admin(request.user)


class IsLinkisAdmin(BasePermission):
    """Admin only. Views set ``admin_denied_message`` to Linkis' wording for the endpoint."""

    message = "Only admin can do this operation(只有管理员才能操作)."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request_is_admin(request):
            return True
        self.message = getattr(view, "admin_denied_message", self.message)
        return False

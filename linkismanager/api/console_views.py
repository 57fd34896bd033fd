"""The web console's start-up and support calls.

Before it draws a page, linkis-web asks its gateway a few questions that are not about engines:
whether to encrypt the password, whether to send the user to an OAuth provider, what the caller
may see, what the cluster is called, whether jobs are still running, which label keys may be
edited. Linkis answers them from services we do not run (the gateway, job history, the instance
label service). Here each answer states what this manager actually does; none is a placeholder.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from linkismanager.labels import MODIFIABLE_LABEL_KEYS
from linkismanager.linkis.envelope import linkis_response
from linkismanager.linkis.permissions import request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView

__all__ = [
    "BaseInfoView",
    "GovernanceStationAdminView",
    "ListUndoneTasksView",
    "ModifiableLabelKeyView",
    "OAuthRedirectView",
    "PublicKeyView",
    "is_history_admin",
]

TAGS = ["console"]


def is_history_admin(request: Request) -> bool:
    """A job-history admin, as Linkis counts them: every admin, plus the users named in
    ``LINKIS_HISTORY_ADMIN_USERS`` (any case)."""
    if request_is_admin(request):
        return True
    user: Any = request.user
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.get_username().lower() in settings.LINKIS_HISTORY_ADMIN_USERS


class PublicKeyView(LinkisAPIView):
    """Whether the login form must encrypt the password, and with which key.

    Passwords are sent as typed (over HTTPS in production); there is no key pair. The console
    calls this on its login page, before anyone is logged in, so it is open to everyone and reads
    no credentials (a stale token header must not break the login page).
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @linkis_schema(
        "publicKey",
        summary="Login encryption: not used",
        description=(
            "Open to anonymous callers. `enableLoginEncrypt` is false: the login takes the password "
            "as typed, so `publicKey` is null. `enableSSL` says whether the session cookie is "
            "HTTPS-only (SESSION_COOKIE_SECURE)."
        ),
        data={
            "enableLoginEncrypt": serializers.BooleanField(),
            "publicKey": serializers.CharField(allow_null=True),
            "enableSSL": serializers.BooleanField(),
        },
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(
            request,
            {
                "enableLoginEncrypt": False,
                "publicKey": None,
                "enableSSL": bool(settings.SESSION_COOKIE_SECURE),
            },
            message="Gain success(获取成功)！",
        )


class OAuthRedirectView(LinkisAPIView):
    """Where to send the browser for an OAuth login: nowhere, OAuth login is not offered.

    The console asks on its login page and follows ``redirectUrl`` only when there is one, so the
    answer has none and the console keeps its user-name and password form.
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @linkis_schema(
        "oauthRedirect",
        summary="OAuth login: not offered",
        description=(
            "Open to anonymous callers. `data` carries no `redirectUrl`: this manager has no OAuth "
            "login, so the console stays on its password form."
        ),
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(request, {})


class GovernanceStationAdminView(LinkisAPIView):
    """What the caller may see in the console: admin, job-history admin, department admin."""

    @linkis_schema(
        "governanceStationAdmin",
        summary="The caller's console roles",
        description=(
            "`admin`: a Linkis admin (LINKIS_ADMIN_USERS, a Django superuser, or an admin token). "
            "`historyAdmin`: an admin or a user named in LINKIS_HISTORY_ADMIN_USERS. `deptAdmin`: "
            "always false, there are no departments here. `canResultSet`: true, no department is "
            "barred from viewing job results inline."
        ),
        data={
            "admin": serializers.BooleanField(),
            "historyAdmin": serializers.BooleanField(),
            "deptAdmin": serializers.BooleanField(),
            "canResultSet": serializers.BooleanField(),
        },
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(
            request,
            {
                "admin": request_is_admin(request),
                "historyAdmin": is_history_admin(request),
                # Linkis grants this to users of a department-admin list; we keep no departments.
                "deptAdmin": False,
                # Linkis turns this off for users of departments listed as result-limited; with no
                # departments nobody is limited, so the console shows results in place.
                "canResultSet": True,
            },
        )


class BaseInfoView(LinkisAPIView):
    """Console-wide switches: result export, the cluster's name, who may read engine logs."""

    @linkis_schema(
        "baseinfo",
        summary="Console-wide switches",
        description=(
            "`resultSetExportEnable`: false, this manager runs no jobs and offers no result-set "
            "download. `linkisClusterName`: the LINKIS_CLUSTER_NAME setting. "
            "`engineLogOnlyAdminEnable`: false, an engine's owner reads its logs as admins do."
        ),
        data={
            "resultSetExportEnable": serializers.BooleanField(),
            "linkisClusterName": serializers.CharField(),
            "engineLogOnlyAdminEnable": serializers.BooleanField(),
        },
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(
            request,
            {
                "resultSetExportEnable": False,
                "linkisClusterName": settings.LINKIS_CLUSTER_NAME,
                "engineLogOnlyAdminEnable": False,
            },
            message="get baseinfo success(获取成功)！",
        )


_undone_filters = [
    OpenApiParameter(name, kind, required=False, description="Accepted; there are no jobs to filter.")
    for name, kind in (
        ("startDate", int),
        ("endDate", int),
        ("status", str),
        ("pageNow", int),
        ("pageSize", int),
        ("startTaskID", int),
        ("engineType", str),
        ("creator", str),
    )
]


class ListUndoneTasksView(LinkisAPIView):
    """The caller's jobs still running: none, since this manager runs engines, not jobs."""

    @linkis_schema(
        "listundonetasks",
        summary="The caller's unfinished jobs (none: no jobs run here)",
        description=(
            "Jobs are submitted through Linkis' entrance, which this manager does not serve, so "
            "`tasks` is always empty and `totalPage` 0 whatever the filters."
        ),
        data={
            "tasks": serializers.ListField(child=serializers.DictField()),
            "totalPage": serializers.IntegerField(),
        },
        parameters=_undone_filters,
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(request, {"tasks": [], "totalPage": 0})


class ModifiableLabelKeyView(LinkisAPIView):
    """The label keys the edit dialogs may change (modifyEMInfo, modifyEngineInfo)."""

    @linkis_schema(
        "modifiableLabelKey",
        summary="Label keys users may edit",
        description="The keys the label edits of modifyEMInfo and modifyEngineInfo replace; others are kept.",
        data={"keyList": serializers.ListField(child=serializers.CharField())},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return linkis_response(request, {"keyList": sorted(MODIFIABLE_LABEL_KEYS)})

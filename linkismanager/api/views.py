"""Login, logout, the caller's identity, and the manager's simplest endpoint."""

from __future__ import annotations

from axes.exceptions import AxesBackendPermissionDenied
from django.contrib.auth import authenticate, login, logout
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from linkismanager.api.serializers import LoginSerializer
from linkismanager.choices import NodeStatus
from linkismanager.linkis.auth import lockout_message
from linkismanager.linkis.envelope import STATUS_ERROR, linkis_response
from linkismanager.linkis.permissions import request_is_admin
from linkismanager.linkis.schema import linkis_schema
from linkismanager.linkis.views import LinkisAPIView

__all__ = ["ListAllNodeHealthyStatusView", "LoginView", "LogoutView", "UserInfoView"]

LOGIN_FAILED_MESSAGE = "Invalid username or password(用户名或密码错误)！"

_identity_fields = {
    "userName": serializers.CharField(),
    "isAdmin": serializers.BooleanField(),
}


class LoginView(LinkisAPIView):
    """Log in with a user name and password; the answer sets the Linkis session cookie."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @linkis_schema(
        "login",
        summary="Log in",
        request=LoginSerializer,
        data={
            **_identity_fields,
            "isFirstLogin": serializers.BooleanField(),
            "enableWatermark": serializers.BooleanField(),
        },
        tags=["user"],
    )
    def post(self, request: Request) -> Response:
        form = LoginSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        user_name = form.validated_data["userName"]
        try:
            # The Django request, so the login throttle sees the caller's address.
            user = authenticate(request._request, username=user_name, password=form.validated_data["password"])
        except AxesBackendPermissionDenied:
            return linkis_response(request, message=lockout_message(), status=STATUS_ERROR)
        if getattr(request._request, "axes_locked_out", False):
            request._request.axes_locked_out = False  # answered here, as an envelope
            return linkis_response(request, message=lockout_message(), status=STATUS_ERROR)
        if user is None:
            return linkis_response(request, message=LOGIN_FAILED_MESSAGE, status=STATUS_ERROR)
        login(request._request, user)
        request.user = user
        return linkis_response(
            request,
            {
                "userName": user.get_username(),
                "isAdmin": request_is_admin(request),
                "isFirstLogin": False,
                "enableWatermark": False,
            },
            message="login successful(登录成功)！",
        )


class LogoutView(LinkisAPIView):
    """End the session."""

    permission_classes = [AllowAny]

    @linkis_schema("logout", summary="Log out", request=None, tags=["user"])
    def post(self, request: Request) -> Response:
        logout(request._request)
        return linkis_response(request, message="Logout successful(退出登录成功)！")


class UserInfoView(LinkisAPIView):
    """Who the caller is."""

    @linkis_schema("userInfo", summary="The logged-in user", data=_identity_fields, tags=["user"])
    def get(self, request: Request) -> Response:
        return linkis_response(
            request,
            {"userName": request.user.get_username(), "isAdmin": request_is_admin(request)},
        )


class ListAllNodeHealthyStatusView(LinkisAPIView):
    """The NodeStatus names (despite the path's name, as Linkis answers)."""

    @linkis_schema(
        "listAllNodeHealthyStatus",
        summary="All NodeStatus names",
        data={"nodeStatus": serializers.ListField(child=serializers.CharField())},
        parameters=[OpenApiParameter("onlyEditable", bool, required=False, description="Accepted and ignored.")],
        tags=["engines"],
    )
    def get(self, request: Request) -> Response:
        return linkis_response(request, {"nodeStatus": list(NodeStatus.values)})

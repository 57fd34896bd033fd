"""Request shapes of the manager's own endpoints."""

from __future__ import annotations

from rest_framework import serializers

__all__ = ["LoginSerializer"]


class LoginSerializer(serializers.Serializer):
    """``POST user/login``: Linkis' field names."""

    userName = serializers.CharField(  # noqa: N815 - Linkis wire name
        max_length=150,
        error_messages={
            "required": "Username can not be empty(用户名不能为空)！",
            "blank": "Username can not be empty(用户名不能为空)！",
        },
    )
    password = serializers.CharField(
        max_length=4096,
        trim_whitespace=False,
        error_messages={
            "required": "Password can not be blank(密码不能为空)！",
            "blank": "Password can not be blank(密码不能为空)！",
        },
    )

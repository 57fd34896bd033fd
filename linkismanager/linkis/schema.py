"""OpenAPI helpers: every Linkis endpoint documents its request, its success envelope and the
error envelopes it can answer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

__all__ = ["ERROR_RESPONSES", "envelope_of", "linkis_schema"]


class ErrorEnvelopeSerializer(serializers.Serializer):
    """The envelope of a refused request."""

    method = serializers.CharField(help_text="/api/<path after /api/rest_j/v1>")
    status = serializers.IntegerField(help_text="1 error, -1 not logged in, 3 cross-site refused")
    message = serializers.CharField(help_text="What went wrong, naming the field or object.")
    data = serializers.DictField(help_text="Empty, or errorMsg for coded Linkis errors.")


ERROR_RESPONSES: dict[int, Any] = {
    400: OpenApiResponse(ErrorEnvelopeSerializer, description="Bad request or refused (status 1)."),
    401: OpenApiResponse(ErrorEnvelopeSerializer, description="Not logged in (status -1)."),
    403: OpenApiResponse(ErrorEnvelopeSerializer, description="Cross-site request refused (status 3)."),
    404: OpenApiResponse(ErrorEnvelopeSerializer, description="Unknown path (status 1)."),
    405: OpenApiResponse(ErrorEnvelopeSerializer, description="Wrong HTTP verb (status 1)."),
}


def envelope_of(name: str, data: dict[str, serializers.Field] | None = None) -> serializers.Serializer:
    """An envelope schema whose ``data`` holds the given fields."""
    data_field: serializers.Field
    if data:
        data_field = inline_serializer(name=f"{name}Data", fields=data)
    else:
        data_field = serializers.DictField()
    return inline_serializer(
        name=f"{name}Envelope",
        fields={
            "method": serializers.CharField(),
            "status": serializers.IntegerField(help_text="0 on success"),
            "message": serializers.CharField(),
            "data": data_field,
        },
    )


def linkis_schema(
    name: str,
    *,
    summary: str,
    data: dict[str, serializers.Field] | None = None,
    request: Any = None,
    parameters: list | None = None,
    tags: list[str] | None = None,
    description: str | None = None,
) -> Any:
    """``extend_schema`` for a Linkis endpoint: request, success envelope, error envelopes."""
    return extend_schema(
        operation_id=name,
        summary=summary,
        description=description,
        request=request,
        parameters=parameters,
        tags=tags,
        responses={200: envelope_of(name[:1].upper() + name[1:], data), **ERROR_RESPONSES},
    )

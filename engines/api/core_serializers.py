"""Request shapes of create, ask, get and kill (for validation messages and the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

__all__ = [
    "AskEngineSerializer",
    "CreateEngineSerializer",
    "EngineKillItemSerializer",
    "GetEngineSerializer",
    "ServiceInstanceSerializer",
]


class _EngineRequestSerializer(serializers.Serializer):
    labels = serializers.JSONField(
        help_text='Label key → stringValue, e.g. {"engineType": "python-python3", "userCreator": "alice-IDE"}; '
        "a list of {labelKey, stringValue} is accepted too."
    )
    properties = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Start-up configuration, e.g. wds.linkis.engineconn.java.driver.memory=2g.",
    )
    createService = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)


class CreateEngineSerializer(_EngineRequestSerializer):
    """``createEngineConn``: always creates, waits up to ``timeout`` ms for the engine."""

    timeout = serializers.IntegerField(required=False, help_text="Milliseconds to wait; ≤ 0 for the default (40 s).")
    ignoreTimeout = serializers.BooleanField(required=False, default=False)


class AskEngineSerializer(_EngineRequestSerializer):
    """``askEngineConn``: reuses an idle engine when it can, else creates one; locks it for the caller."""

    timeOut = serializers.IntegerField(required=False, help_text="Milliseconds to wait; ≤ 0 for the default (40 s).")


class ServiceInstanceSerializer(serializers.Serializer):
    applicationName = serializers.CharField(help_text="linkis-cg-engineconn (any spelling clients send)")
    instance = serializers.CharField(help_text="host:port of the engine")


class GetEngineSerializer(ServiceInstanceSerializer):
    ticketId = serializers.CharField(required=False)


class EngineKillItemSerializer(serializers.Serializer):
    engineInstance = serializers.CharField(help_text="host:port of the engine")
    applicationName = serializers.CharField(required=False)
    engineType = serializers.CharField(required=False, help_text="The web console sends the application name here.")

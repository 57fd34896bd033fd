"""Request and answer shapes of the ECM endpoints (EMRestfulApi), as the OpenAPI schema shows them.

Bodies are read field by field with Linkis' error texts (``linkismanager.linkis.fields``,
``engines.logs.LogQuery``); these serializers document the same fields.
"""

from __future__ import annotations

from rest_framework import serializers

from engines.logs import LOG_TYPES, MAX_LINES
from linkismanager.choices import NodeHealthy

__all__ = [
    "EcmOperationByEcSerializer",
    "EcmOperationSerializer",
    "EcmVoSerializer",
    "LabelItemSerializer",
    "LoadInstanceSerializer",
    "LogParametersSerializer",
    "LogResultSerializer",
    "ModifyEMInfoSerializer",
    "OpenEngineLogSerializer",
]


class LabelItemSerializer(serializers.Serializer):
    """One label as the console sends it back."""

    labelKey = serializers.CharField(help_text="e.g. tenant; only user-modifiable keys change.")
    stringValue = serializers.CharField(help_text="e.g. teamA")


class ModifyEMInfoSerializer(serializers.Serializer):
    """``PUT modifyEMInfo``."""

    applicationName = serializers.CharField(help_text="linkis-cg-engineconnmanager (any spelling).")
    instance = serializers.CharField(help_text="host:port of the ECM.")
    emStatus = serializers.ChoiceField(
        choices=NodeHealthy.choices,
        required=False,
        allow_null=True,
        help_text="New health; Healthy removes an admin's pin, another value pins it. Omit to keep.",
    )
    description = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=256, help_text="The remark; omit to keep."
    )
    labels = LabelItemSerializer(
        many=True,
        required=False,
        allow_null=True,
        help_text="Replaces the user-modifiable labels as a set ([] removes them); omit to keep.",
    )


class LogParametersSerializer(serializers.Serializer):
    """Linkis' engine-log operator parameters."""

    logType = serializers.ChoiceField(choices=LOG_TYPES, help_text="The file in the engine's log folder.")
    fromLine = serializers.IntegerField(
        required=False, min_value=0, help_text="First line of the page, 1-based (0 means 1); default 1."
    )
    pageSize = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LINES, help_text="Default 100.")
    enableTail = serializers.BooleanField(
        required=False, help_text="Count lines from the end (pages come back in file order)."
    )
    lastRows = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_LINES, help_text="If > 0, only the last N lines."
    )
    onlyKeywords = serializers.CharField(required=False, help_text="Comma-separated: keep records containing one.")
    ignoreKeywords = serializers.CharField(required=False, help_text="Comma-separated: drop records containing one.")
    logDirSuffix = serializers.CharField(
        required=False,
        help_text="The log folder under the ECM's log root; admins only when it differs from the engine's own.",
    )


class OpenEngineLogSerializer(serializers.Serializer):
    """``POST openEngineLog``."""

    applicationName = serializers.CharField(help_text="linkis-cg-engineconn (any spelling).")
    instance = serializers.CharField(help_text="host:port of the engine (or its ticket id before it has one).")
    emInstance = serializers.CharField(required=False, help_text="host:port of its ECM; checked when given.")
    parameters = LogParametersSerializer(help_text="enableTail defaults to true here.")


class OperationParametersSerializer(LogParametersSerializer):
    """Parameters of an ECM operation: the operator and its own parameters."""

    __operator_name__ = serializers.ChoiceField(
        choices=["engineConnLog", "engineConnYarnLog"], help_text="The ECM operator."
    )
    engineConnInstance = serializers.CharField(required=False, help_text="The engine whose log is meant.")


class EcmOperationSerializer(serializers.Serializer):
    """``POST executeECMOperation``."""

    applicationName = serializers.CharField()
    instance = serializers.CharField(help_text="host:port of the ECM.")
    parameters = OperationParametersSerializer()


class EcmOperationByEcSerializer(serializers.Serializer):
    """``POST executeECMOperationByEC``."""

    applicationName = serializers.CharField()
    instance = serializers.CharField(help_text="host:port of the engine.")
    parameters = OperationParametersSerializer()


class LoadInstanceSerializer(serializers.Serializer):
    """A LoadInstance resource map."""

    memory = serializers.IntegerField(help_text="bytes")
    cores = serializers.IntegerField()
    instances = serializers.IntegerField()
    instance = serializers.IntegerField(help_text="Alias of instances (the console reads it).")


class LogResultSerializer(serializers.Serializer):
    """One page of a log."""

    logPath = serializers.CharField()
    logs = serializers.ListField(child=serializers.CharField())
    endLine = serializers.IntegerField(help_text="Last line scanned; the next page starts after it.")
    rows = serializers.IntegerField(help_text="Lines returned.")


class EcmVoSerializer(serializers.Serializer):
    """One ECM of ``listAllEMs`` (Linkis' EMNodeVo, plus status, pin and host figures)."""

    applicationName = serializers.CharField()
    instance = serializers.CharField()
    nodeHealthy = serializers.CharField()
    nodeStatus = serializers.CharField()
    msg = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.DictField())
    owner = serializers.CharField()
    description = serializers.CharField()
    startTime = serializers.IntegerField(allow_null=True, help_text="epoch ms")
    resourceType = serializers.CharField()
    maxResource = LoadInstanceSerializer()
    minResource = LoadInstanceSerializer()
    usedResource = LoadInstanceSerializer()
    lockedResource = LoadInstanceSerializer()
    leftResource = LoadInstanceSerializer()
    expectedResource = LoadInstanceSerializer(allow_null=True)
    nodeOverLoadInfo = serializers.DictField(help_text="maxMemory, usedMemory, systemCPUUsed, systemLeftMemory")
    maxMemory = serializers.IntegerField(allow_null=True)
    usedMemory = serializers.IntegerField(allow_null=True)
    systemCPUUsed = serializers.FloatField(allow_null=True)
    systemLeftMemory = serializers.IntegerField(allow_null=True)
    reportedHealth = serializers.CharField()
    pinnedHealth = serializers.CharField(allow_null=True)
    pinnedBy = serializers.CharField(allow_null=True)
    pinnedAt = serializers.IntegerField(allow_null=True, help_text="epoch ms")
    pinnedReason = serializers.CharField(allow_null=True)
    lastHeartbeat = serializers.IntegerField(allow_null=True, help_text="epoch ms")
    lost = serializers.BooleanField()

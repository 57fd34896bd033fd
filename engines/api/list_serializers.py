"""Request shapes of the engine list, edit, operation and batch-kill endpoints, for the API schema.

The views read these bodies field by field (``linkismanager.linkis.fields``), because Linkis
clients rely on its exact error texts; these serializers document the same shapes.
"""

from __future__ import annotations

from rest_framework import serializers

__all__ = [
    "BatchSetEngineToUnHealthySerializer",
    "ECMInstanceSerializer",
    "EMNodeSerializer",
    "EngineInstanceSerializer",
    "EngineKillAsyncSerializer",
    "EngineLabelSerializer",
    "EngineOperationSerializer",
    "KillEngineByCreatorEngineTypeSerializer",
    "KillUnlockEngineByEMSerializer",
    "ListEMEnginesSerializer",
    "ModifyEngineInfoSerializer",
    "UnhealthyEngineSerializer",
]

# Linkis' wire names are camelCase.
# ruff: noqa: N815


class EngineInstanceSerializer(serializers.Serializer):
    """An engine by Linkis' pair; the look-up uses ``instance``."""

    applicationName = serializers.CharField(help_text="e.g. linkis-cg-engineconn; any spelling is accepted.")
    instance = serializers.CharField(max_length=128, help_text="host:port")


class EngineLabelSerializer(serializers.Serializer):
    """One label as the edit endpoints take it."""

    labelKey = serializers.CharField(max_length=32)
    stringValue = serializers.CharField(max_length=255)


class ECMInstanceSerializer(serializers.Serializer):
    """An ECM by Linkis' pair; the look-up uses ``instance``."""

    applicationName = serializers.CharField(required=False, help_text="e.g. linkis-cg-engineconnmanager.")
    instance = serializers.CharField(max_length=128, help_text="The ECM's host:port.")


class EMNodeSerializer(serializers.Serializer):
    """``em`` of listEMEngines."""

    serviceInstance = ECMInstanceSerializer(help_text="The ECM whose engines are listed.")


class ListEMEnginesSerializer(serializers.Serializer):
    """``listEMEngines``: the ECM, and optional filters (blank ones are ignored)."""

    em = EMNodeSerializer()
    emInstance = serializers.CharField(
        required=False, allow_blank=True, help_text="A substring of the engine's own instance (host:port)."
    )
    nodeStatus = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="A NodeStatus name (Unlock, Busy …), or a NodeHealthy name (Healthy, UnHealthy …) "
        "to filter by health.",
    )
    owner = serializers.CharField(required=False, allow_blank=True, help_text="The owner, any case.")
    engineType = serializers.CharField(
        required=False, allow_blank=True, help_text="The engine type (spark), any case, or type-version (spark-2.4.3)."
    )


class ModifyEngineInfoSerializer(EngineInstanceSerializer):
    """``modifyEngineInfo``."""

    labels = EngineLabelSerializer(
        many=True,
        required=False,
        help_text="The user-modifiable labels the engine is to carry (replaced as a set); other keys are ignored. "
        "Omit to leave labels alone.",
    )
    nodeHealthy = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="A NodeHealthy name, kept until an admin sets Healthy again; empty for no change.",
    )
    emStatus = serializers.CharField(required=False, allow_blank=True, help_text="Ignored (the console sends it).")


class UnhealthyEngineSerializer(EngineInstanceSerializer):
    """One element of batchSetEngineToUnHealthy."""

    engineType = serializers.CharField(required=False, allow_blank=True, help_text="Ignored.")


class BatchSetEngineToUnHealthySerializer(serializers.Serializer):
    """``batchSetEngineToUnHealthy``."""

    instances = UnhealthyEngineSerializer(many=True)


class EngineOperationSerializer(EngineInstanceSerializer):
    """``executeEngineConnOperation``."""

    parameters = serializers.DictField(
        help_text="__operator_name__ selects the operator: execute (with code), engineConnStatus, "
        "engineConnYarnApplication."
    )


class EngineKillAsyncSerializer(serializers.Serializer):
    """``rm/enginekillAsyn``."""

    instances = serializers.ListField(child=serializers.CharField(max_length=128), help_text="Engine instances.")


class KillUnlockEngineByEMSerializer(serializers.Serializer):
    """``rm/killUnlockEngineByEM``."""

    instance = serializers.CharField(max_length=128, help_text="The ECM's host:port.")


class KillEngineByCreatorEngineTypeSerializer(serializers.Serializer):
    """``rm/killEngineByCreatorEngineType``."""

    creator = serializers.CharField(
        help_text="A creator (IDE), or * (also 全局设置 / 通用设置 / GlobalSettings) for any."
    )
    engineType = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="spark or spark-2.4.3; * or empty for any engine type.",
    )

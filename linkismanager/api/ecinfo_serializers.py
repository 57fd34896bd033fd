"""Engine history (``ecinfo/*``): request shapes and Linkis' JSON forms of the EC resource record.

Linkis sends a record raw from ``ecinfo/get`` and ``ecinfo/delete`` (resources as JSON text), and
as a VO from ``ecrHistoryList`` (resources as ``{instance, cores, memory}`` maps, memory in bytes,
which the console's history table reads). ``ecList`` rows join an engine's node columns with its
metrics (its resource as a map under ``driver``); their times are ``yyyy-MM-dd HH:mm:ss`` text there.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from engines.models import EngineConn, EngineHistory
from linkismanager.api.rm_serializers import MAX_PAGE, MAX_PAGE_SIZE, epoch_ms
from linkismanager.choices import NodeStatus
from linkismanager.labels import ENGINE_APPLICATION_NAME
from linkismanager.resources import ResourceError, parse_size

__all__ = [
    "DATE_FORMAT",
    "EcListRequest",
    "HistoryQuery",
    "TicketQuery",
    "driver_map",
    "ec_item",
    "history_record",
    "history_vo",
    "resource_vo",
]

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Linkis' check of a user name given as a filter (its "creator" here is the creating user).
_NAME = re.compile(r"[a-zA-Z0-9_.]+")
_STATUS_ERRORS = {
    "invalid_choice": "{input} is not a NodeStatus name; expected one of " + ", ".join(NodeStatus.values) + "."
}


def _status_field(**kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=NodeStatus.values, error_messages=_STATUS_ERRORS, **kwargs)


class TicketQuery(serializers.Serializer):
    """``GET ecinfo/get``."""

    ticketid = serializers.CharField(max_length=64, help_text="The engine's ticket id (a UUID).")


class HistoryQuery(serializers.Serializer):
    """``GET ecinfo/ecrHistoryList``; blank values count as absent."""

    instance = serializers.CharField(required=False, allow_blank=True, max_length=128)
    creator = serializers.CharField(
        required=False, allow_blank=True, max_length=150, help_text="The user whose records an admin wants."
    )
    startDate = serializers.DateTimeField(  # noqa: N815 - Linkis name
        required=False, allow_null=True, input_formats=[DATE_FORMAT]
    )
    endDate = serializers.DateTimeField(required=False, allow_null=True, input_formats=[DATE_FORMAT])  # noqa: N815
    engineType = serializers.CharField(required=False, allow_blank=True, max_length=128)  # noqa: N815
    status = _status_field(required=False, allow_blank=True)
    pageNow = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_PAGE)  # noqa: N815
    pageSize = serializers.IntegerField(  # noqa: N815
        required=False, default=20, min_value=1, max_value=MAX_PAGE_SIZE
    )

    def validate_creator(self, value: str) -> str:
        value = value.strip()
        if value and not _NAME.fullmatch(value):
            raise serializers.ValidationError(f"Invalid creator : {value}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("startDate"), attrs.get("endDate")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"startDate": "must not be after endDate."})
        return attrs


class _Names(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.CharField(max_length=150))
        super().__init__(required=False, allow_null=True, max_length=MAX_PAGE_SIZE, **kwargs)


class EcListRequest(serializers.Serializer):
    """``POST ecinfo/ecList``: arrays of names (null or absent filters nothing), Linkis' ``statuss``."""

    creators = _Names(help_text="Owners of the engines. Required unless ecInstances is given.")
    engineTypes = _Names(help_text="python, or python-python3.")  # noqa: N815 - Linkis name
    statuss = serializers.ListField(
        child=_status_field(), required=False, allow_null=True, help_text="NodeStatus names (Linkis' spelling)."
    )
    ecInstances = _Names(help_text="Engine instances, host:port.")  # noqa: N815 - Linkis name
    queueName = serializers.CharField(  # noqa: N815 - Linkis name
        required=False, allow_null=True, allow_blank=True, max_length=255, help_text="A YARN queue; none here."
    )
    crossCluster = serializers.BooleanField(  # noqa: N815 - Linkis name
        required=False, allow_null=True, help_text="Only engines on ECMs with (true) or without (false) a yarnCluster."
    )

    def validate_creators(self, value: list[str] | None) -> list[str]:
        for name in value or []:
            if not _NAME.fullmatch(name):
                raise serializers.ValidationError(f"Invalid creator: {name}")
        return value or []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("creators") and not attrs.get("ecInstances"):
            raise serializers.ValidationError(
                "creators is null in the parameters of the request(请求参数中【creators】为空)"
            )
        return attrs


# --- Answers ---------------------------------------------------------------------------------------


def _json_text(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False) if value else None


def driver_map(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A history resource as ``ecList`` shows it: ``{"driver": {instance, memory, cpu}}``."""
    if not stored:
        return None
    if "driver" in stored or "yarn" in stored:
        return stored
    return {"driver": stored}


def resource_vo(stored: dict[str, Any] | None) -> dict[str, int] | None:
    """A history resource as ``ecrHistoryList`` shows it, Linkis' ResourceVo: ``{instance, cores,
    memory}`` with memory in bytes (the console's history table reads these keys); None when empty.

    A stored value that does not parse counts as 0: one odd record must not break a listing.
    """
    if not stored:
        return None
    part = stored.get("driver") if isinstance(stored.get("driver"), dict) else stored
    try:
        memory = parse_size(part.get("memory", 0), field="memory")
    except ResourceError:
        memory = 0
    cores = part.get("cpu", part.get("cores"))

    def count(value: Any) -> int:
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

    return {"instance": count(part.get("instance")), "cores": count(cores), "memory": memory}


def _record_common(record: EngineHistory) -> dict[str, Any]:
    return {
        "id": record.pk,
        "labelValue": record.label_value,
        "createUser": record.create_user,
        "serviceInstance": record.service_instance or None,
        "ecmInstance": record.ecm_instance,
        "ticketId": str(record.ticket_id),
        "status": record.status,
        "logDirSuffix": record.log_dir_suffix,
        "requestTimes": record.request_times,
        "usedTimes": record.used_times,
        "releaseTimes": record.release_times,
        "usedTime": epoch_ms(record.used_time),
        "releaseTime": epoch_ms(record.release_time),
        "createTime": epoch_ms(record.created),
        "engineType": record.engine_type,
    }


def history_record(record: EngineHistory) -> dict[str, Any]:
    """The raw record of ``ecinfo/get`` and ``ecinfo/delete``: resources and metrics as JSON text."""
    return {
        **_record_common(record),
        "requestResource": _json_text(record.request_resource),
        "usedResource": _json_text(record.used_resource),
        "releasedResource": _json_text(record.released_resource),
        "metrics": _json_text(record.metrics),
    }


def history_vo(record: EngineHistory) -> dict[str, Any]:
    """One ``ecrHistoryList`` row: resources as ResourceVo maps ``{instance, cores, memory}``."""
    return {
        **_record_common(record),
        "requestResource": resource_vo(record.request_resource),
        "usedResource": resource_vo(record.used_resource),
        "releasedResource": resource_vo(record.released_resource),
    }


def _local_text(moment: datetime | None) -> str | None:
    return None if moment is None else timezone.localtime(moment).strftime(DATE_FORMAT)


def ec_item(engine: EngineConn, record: EngineHistory | None) -> dict[str, Any]:
    """One ``ecList`` row: the engine's node and metrics columns, its status by name, its used
    resource from the history record, and its ECM."""
    last_unlock = 0
    if engine.status == NodeStatus.UNLOCK:
        last_unlock = epoch_ms(engine.last_activity or engine.ready_at) or 0
    return {
        "id": engine.pk,
        "instance": engine.instance or str(engine.ticket_id),
        "name": ENGINE_APPLICATION_NAME,
        "owner": engine.owner,
        "mark": "process",
        "identifier": str(engine.pid) if engine.pid else None,
        "ticketId": str(engine.ticket_id),
        "updateTime": _local_text(engine.last_heartbeat or engine.modified),
        "createTime": _local_text(engine.created),
        # Linkis' node columns: creator and updator hold the owner.
        "updator": engine.owner,
        "creator": engine.owner,
        "params": _json_text(engine.properties),
        "mappingPorts": None,
        "mappingHost": None,
        "instanceStatus": engine.status,
        "heartbeatMsg": _json_text(engine.metrics),
        "engineType": engine.engine_type,
        "lastUnlockTimestamp": last_unlock,
        "useResource": driver_map(record.used_resource) if record is not None else None,
        "ecmInstance": engine.ecm.instance,
    }

"""The resource monitor's (``rm/*``) request shapes and Linkis JSON forms.

Linkis names a user + creator ``(alice,IDE)`` and an engine type ``(python,python3)`` in these
endpoints, and sends resources as LoadInstance maps (``memory``, ``cores``, ``instances`` and the
alias ``instance``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from engines.models import EngineConn
from linkismanager.choices import NodeStatus
from linkismanager.labels import ECM_APPLICATION_NAME, ENGINE_APPLICATION_NAME
from linkismanager.resources import LoadInstance, resource_json
from linkismanager.usage import UsageKey, UserResource, percent_text, quota_limits

__all__ = [
    "AllUserResourceQuery",
    "ApplicationListRequest",
    "BatchQueueResourcesRequest",
    "QueueResourcesRequest",
    "ResetResourceQuery",
    "UserResourceQuery",
    "application_list",
    "engine_record",
    "engine_type_text",
    "epoch_ms",
    "user_creator_text",
    "user_resource_tree",
    "user_resource_vo",
]

MAX_PAGE = 10**9
MAX_PAGE_SIZE = 1000

_PAIR = re.compile(r"\(([^(),]+),([^(),]+)\)")


def epoch_ms(moment: datetime | None) -> int | None:
    """Linkis writes times as epoch milliseconds."""
    return None if moment is None else int(moment.timestamp() * 1000)


def user_creator_text(user: str, creator: str) -> str:
    """Linkis' rm form of a user + creator: ``(alice,IDE)``."""
    return f"({user},{creator})"


def engine_type_text(engine_type: str, version: str) -> str:
    """Linkis' rm form of an engine type: ``(python,python3)``."""
    return f"({engine_type},{version})"


def _pair(value: str, example: str) -> tuple[str, str]:
    """``(a,b)`` as Linkis sends it, or the label form ``a-b``, as a pair."""
    text = value.strip()
    match = _PAIR.fullmatch(text)
    if match:
        first, second = match.group(1).strip(), match.group(2).strip()
    else:
        first, _, second = text.partition("-")
    if not first or not second:
        raise serializers.ValidationError(f"{value!r} is not of the form {example}.")
    return first, second


# --- Requests --------------------------------------------------------------------------------------


class _Text(serializers.CharField):
    """An optional query text; blank counts as absent."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 255)
        super().__init__(**kwargs)


class AllUserResourceQuery(serializers.Serializer):
    """``GET rm/allUserResource``: substring filters (any case) and the page."""

    username = _Text(help_text="Part of the user name.")
    creator = _Text(help_text="Part of the creator, e.g. IDE.")
    engineType = _Text(help_text="Part of the engine type with version, e.g. python.")  # noqa: N815 - Linkis name
    page = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_PAGE, help_text="From 1.")
    size = serializers.IntegerField(
        required=False, default=20, min_value=1, max_value=MAX_PAGE_SIZE, help_text="Rows per page."
    )


class UserResourceQuery(serializers.Serializer):
    """``GET rm/get-user-resource``: one user + creator + engine type, all required."""

    username = serializers.CharField(max_length=150)
    creator = serializers.CharField(max_length=64)
    engineType = serializers.CharField(  # noqa: N815 - Linkis name
        max_length=128, help_text="python-python3 for one version, python for every version."
    )


class ResetResourceQuery(serializers.Serializer):
    """``DELETE rm/resetResource``: one quota row by id; absent, zero or negative means all."""

    resourceId = serializers.IntegerField(  # noqa: N815 - Linkis name
        required=False, allow_null=True, default=None, min_value=-(2**63), max_value=2**63 - 1
    )


class ApplicationListRequest(serializers.Serializer):
    """``POST rm/applicationlist``: the caller's engines of one user + creator, maybe one engine type."""

    userCreator = serializers.CharField(  # noqa: N815 - Linkis name
        max_length=255, help_text="(user,creator), e.g. (alice,IDE); alice-IDE is accepted too."
    )
    engineType = serializers.CharField(  # noqa: N815 - Linkis name
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=255,
        help_text="(type,version), e.g. (python,python3); python-python3 is accepted too.",
    )

    def validate_userCreator(self, value: str) -> tuple[str, str]:  # noqa: N802 - DRF names it after the field
        return _pair(value, "(user,creator)")

    def validate_engineType(self, value: str | None) -> tuple[str, str] | None:  # noqa: N802
        if value is None or not value.strip():
            return None
        return _pair(value, "(engineType,version)")


class QueueResourcesRequest(serializers.Serializer):
    """``POST rm/queueresources``."""

    queuename = serializers.CharField(max_length=255)
    clustername = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    clustertype = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    crossCluster = serializers.BooleanField(required=False, allow_null=True)  # noqa: N815 - Linkis name


class BatchQueueResourcesRequest(serializers.Serializer):
    """``POST rm/batchqueueresources``."""

    queueNames = serializers.ListField(  # noqa: N815 - Linkis name
        child=serializers.CharField(max_length=255), allow_empty=False, max_length=MAX_PAGE_SIZE
    )
    clustername = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    clustertype = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    crossCluster = serializers.BooleanField(required=False, allow_null=True)  # noqa: N815 - Linkis name


# --- Answers ---------------------------------------------------------------------------------------


def user_resource_vo(resource: UserResource) -> dict[str, Any]:
    """Linkis' UserResourceVo: one row of ``allUserResource`` and ``get-user-resource``.

    ``id`` is the quota row's id (what ``resetResource`` takes), null for a user on the default
    limits who has no row.
    """
    quota = resource.quota
    return {
        "id": quota.pk if quota is not None else None,
        "username": resource.key.user,
        "creator": resource.key.creator,
        "engineTypeWithVersion": resource.key.engine_type,
        **resource_json(
            max=resource.maximum, min=LoadInstance.ZERO, used=resource.used, locked=resource.locked, left=resource.left
        ),
        "createTime": epoch_ms(quota.created) if quota is not None else None,
        "updateTime": epoch_ms(quota.modified) if quota is not None else None,
        "loadResourceStatus": resource.status,
        "queueResourceStatus": None,
    }


def user_resource_tree(resources: list[UserResource]) -> list[dict[str, Any]]:
    """``userresources``: per user + creator, the share held of its limits, overall and per engine
    type (``percent``, the largest share over memory, cores and instances)."""
    by_creator: dict[tuple[str, str], list[UserResource]] = defaultdict(list)
    for resource in resources:
        by_creator[(resource.key.user, resource.key.creator)].append(resource)
    tree = []
    for (user, creator), group in sorted(by_creator.items()):
        engine_types = []
        for resource in group:
            engine_type, _, version = resource.key.engine_type.partition("-")
            engine_types.append(
                {
                    "engineType": engine_type_text(engine_type, version),
                    "percent": percent_text(resource.held, resource.maximum),
                }
            )
        held = LoadInstance.total(resource.held for resource in group)
        maximum = LoadInstance.total(resource.maximum for resource in group)
        tree.append(
            {
                "userCreator": user_creator_text(user, creator),
                "percent": percent_text(held, maximum),
                "engineTypes": engine_types,
            }
        )
    return tree


def _requested(engine: EngineConn) -> LoadInstance:
    return LoadInstance(engine.memory, engine.cores, engine.instances)


def _used_and_locked(engine: EngineConn) -> tuple[LoadInstance, LoadInstance]:
    """A live engine locks what it asked for while Starting, and uses it afterwards."""
    if engine.status == NodeStatus.STARTING:
        return LoadInstance.ZERO, _requested(engine)
    return _requested(engine), LoadInstance.ZERO


def engine_record(engine: EngineConn) -> dict[str, Any]:
    """One row of ``rm/engines``."""
    used, locked = _used_and_locked(engine)
    return {
        "applicationName": ENGINE_APPLICATION_NAME,
        "engineInstance": engine.instance or str(engine.ticket_id),
        "moduleName": ECM_APPLICATION_NAME,
        "engineManagerInstance": engine.ecm.instance,
        "creator": engine.creator,
        "engineType": engine.engine_type,
        "preUsedResource": locked.to_json(),
        "usedResource": used.to_json(),
        "engineStatus": engine.status,
        "ticketId": str(engine.ticket_id),
    }


def _start_time_text(moment: datetime) -> str:
    """Linkis' ``EEE MMM dd HH:mm:ss z yyyy`` in GMT, with English names whatever the locale."""
    moment = moment.astimezone(UTC)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (
        f"{days[moment.weekday()]} {months[moment.month - 1]} {moment.day:02d} {moment:%H:%M:%S} GMT {moment.year:04d}"
    )


def application_list(engines: list[EngineConn], limits: dict[UsageKey, LoadInstance]) -> list[dict[str, Any]]:
    """``applicationlist``: engines grouped by creator, with their sums.

    ``maxResource`` is the sum of the limits of the engine types listed (each counted once), where
    Linkis adds the user's whole limit once per engine. A key missing from ``limits`` (an engine
    admitted since they were read) counts with the default limits.
    """
    groups: dict[str, dict[str, Any]] = {}
    counted: dict[str, set[str]] = defaultdict(set)
    for engine in engines:
        group = groups.setdefault(
            engine.creator,
            {"engineInstances": [], "used": LoadInstance.ZERO, "locked": LoadInstance.ZERO, "max": LoadInstance.ZERO},
        )
        used, locked = _used_and_locked(engine)
        group["used"] += used
        group["locked"] += locked
        if engine.engine_type_label not in counted[engine.creator]:
            counted[engine.creator].add(engine.engine_type_label)
            key = UsageKey(engine.owner, engine.creator, engine.engine_type_label)
            group["max"] += limits.get(key) or quota_limits(None)
        group["engineInstances"].append(
            {
                "creator": engine.creator,
                "engineType": engine.engine_type,
                "instance": engine.instance or str(engine.ticket_id),
                "label": engine.engine_type_label,
                "resource": resource_json(max=_requested(engine), min=LoadInstance.ZERO, used=used, locked=locked),
                "status": engine.status,
                "startTime": _start_time_text(engine.created),
                "owner": engine.owner,
                "ticketId": str(engine.ticket_id),
            }
        )
    return [
        {
            "creator": creator,
            "applicationList": {
                "engineInstances": group["engineInstances"],
                "usedResource": group["used"].to_json(),
                "maxResource": group["max"].to_json(),
                "minResource": LoadInstance.ZERO.to_json(),
                "lockedResource": group["locked"].to_json(),
            },
        }
        for creator, group in groups.items()
    ]

"""The Linkis JSON forms of engines: EngineNode maps, AMEngineNodeVo rows, ServiceInstances."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings

from engines.models import EngineConn, EngineHistory
from linkismanager.labels import ECM_APPLICATION_NAME, ENGINE_APPLICATION_NAME, label_json
from linkismanager.resources import LoadInstance, resource_json
from linkismanager.services import Capacity

__all__ = [
    "MANAGER_APPLICATION_NAME",
    "created_engine_map",
    "engine_node",
    "engine_vo",
    "epoch_ms",
    "history_node",
    "label_pairs",
    "service_instance",
]

MANAGER_APPLICATION_NAME = "linkis-cg-linkismanager"


def epoch_ms(moment: datetime | None) -> int | None:
    """Linkis writes times as epoch milliseconds."""
    return None if moment is None else int(moment.timestamp() * 1000)


def service_instance(application: str, instance: str) -> dict[str, Any]:
    """Linkis' ServiceInstance JSON."""
    return {
        "applicationName": application,
        "instance": instance,
        "registryTimestamp": 0,
        "mappingPorts": None,
        "mappingHost": None,
    }


def label_pairs(engines: Iterable[EngineConn]) -> defaultdict[int, list[tuple[str, str]]]:
    """The labels of ``engines``, read in one query as (key, value) pairs by engine id, in key order.

    Lists pass these to ``engine_node``/``engine_vo``: a prefetch would build a model object per
    label and a queryset per engine, which cost lists of a hundred engines more than their query.
    """
    from linkismanager.models import Label

    pairs: defaultdict[int, list[tuple[str, str]]] = defaultdict(list)
    ids = [engine.pk for engine in engines]
    if ids:
        rows = Label.objects.filter(engine_id__in=ids).order_by("key").values_list("engine_id", "key", "value")
        for engine_id, key, value in rows:
            pairs[engine_id].append((key, value))
    return pairs


def _labels(engine: EngineConn, pairs: Sequence[tuple[str, str]] | None) -> list[dict[str, Any]]:
    if pairs is None:
        # Uses the prefetched labels when the caller prefetched them.
        pairs = [(label.key, label.value) for label in engine.labels.all()]
    return [label_json(key, value) for key, value in pairs]


def _used(engine: EngineConn) -> LoadInstance:
    return LoadInstance(engine.memory, engine.cores, engine.instances)


def _node_resource(engine: EngineConn) -> dict[str, Any]:
    """The engine's own resource: what it asked for, locked while Starting, used after."""
    requested = _used(engine)
    zero = LoadInstance.ZERO
    if not engine.is_live:
        return resource_json(max=requested, min=zero, used=zero, locked=zero)
    starting = engine.status == "Starting"
    return resource_json(
        max=requested, min=zero, used=zero if starting else requested, locked=requested if starting else zero
    )


def engine_node(engine: EngineConn, labels: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Linkis' EngineNode JSON (listUserEngines, getEngineConn); ``labels`` from ``label_pairs``,
    else the engine's (prefetched) labels."""
    metrics = engine.metrics or {}
    return {
        "serviceInstance": service_instance(ENGINE_APPLICATION_NAME, engine.instance or str(engine.ticket_id)),
        "nodeStatus": engine.status,
        "lock": None,
        "labels": _labels(engine, labels),
        "score": 0,
        "nodeResource": _node_resource(engine),
        "owner": engine.owner,
        "mark": "process",
        "identifier": str(engine.pid) if engine.pid else None,
        "ticketId": str(engine.ticket_id),
        "startTime": epoch_ms(engine.created),
        "updateTime": epoch_ms(engine.last_heartbeat or engine.modified),
        "nodeTaskInfo": {
            "runningTasks": metrics.get("runningTasks", 0),
            "pendingTasks": 0,
            "succeedTasks": 0,
            "failedTasks": 0,
        },
        "nodeOverLoadInfo": {
            "maxMemory": engine.memory,
            "usedMemory": metrics.get("rss"),
            "systemCPUUsed": metrics.get("cpuPercent"),
        },
        "nodeHealthyInfo": {"nodeHealthy": engine.health, "msg": engine.pinned_reason or None},
        "ecMetrics": metrics or None,
        "params": engine.properties or {},
        "nodeDescription": engine.end_reason or None,
        "emnode": {"serviceInstance": service_instance(ECM_APPLICATION_NAME, engine.ecm.instance)},
        "engineType": engine.engine_type,
        "engineTypeVersion": engine.engine_type_label,
        "endTime": epoch_ms(engine.ended_at),
        "exitCode": engine.exit_code,
        "requestedResource": _used(engine).to_json(),
        "actualMemory": metrics.get("rss"),
        "actualCpuPercent": metrics.get("cpuPercent"),
    }


def history_node(record: EngineHistory) -> dict[str, Any]:
    """An EngineNode synthesised from a history record, for an engine that is gone."""
    return {
        "serviceInstance": service_instance(ENGINE_APPLICATION_NAME, record.service_instance or str(record.ticket_id)),
        "nodeStatus": record.status,
        "lock": None,
        "labels": [],
        "score": 0,
        "nodeResource": None,
        "owner": record.create_user,
        "mark": "process",
        "identifier": None,
        "ticketId": str(record.ticket_id),
        "startTime": epoch_ms(record.created),
        "updateTime": epoch_ms(record.release_time),
        "nodeTaskInfo": None,
        "nodeOverLoadInfo": None,
        "nodeHealthyInfo": None,
        "ecMetrics": record.metrics or None,
        "params": {},
        "nodeDescription": None,
        "emnode": {"serviceInstance": service_instance(ECM_APPLICATION_NAME, record.ecm_instance)},
        "engineType": record.engine_type,
    }


def engine_vo(
    engine: EngineConn, ecm_capacity: Capacity, labels: Sequence[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """Linkis' AMEngineNodeVo (listEMEngines), with the ECM's real capacity (not Linkis' constants);
    ``labels`` from ``label_pairs``, else the engine's (prefetched) labels."""
    metrics = engine.metrics or {}
    used = _used(engine) if engine.status != "Starting" else LoadInstance.ZERO
    locked = _used(engine) if engine.status == "Starting" else LoadInstance.ZERO
    return {
        "applicationName": ENGINE_APPLICATION_NAME,
        "instance": engine.instance or str(engine.ticket_id),
        "emInstance": engine.ecm.instance,
        "engineType": engine.engine_type,
        "nodeStatus": engine.status,
        "lock": None,
        "labels": _labels(engine, labels),
        "owner": engine.owner,
        "startTime": epoch_ms(engine.created),
        "resourceType": "LoadInstance",
        "maxResource": ecm_capacity.maximum.to_json(),
        "minResource": ecm_capacity.reserve.to_json(),
        "usedResource": used.to_json(),
        "lockedResource": locked.to_json(),
        "expectedResource": None,
        "leftResource": ecm_capacity.left.to_json(),
        "runningTasks": metrics.get("runningTasks", 0),
        "pendingTasks": 0,
        "succeedTasks": 0,
        "failedTasks": 0,
        "maxMemory": engine.memory,
        "usedMemory": metrics.get("rss"),
        "systemCPUUsed": metrics.get("cpuPercent"),
        "systemLeftMemory": None,
        "nodeHealthy": engine.health,
        "msg": engine.pinned_reason or None,
        "mappingPorts": None,
        "mappingHost": None,
        "ticketId": str(engine.ticket_id),
        "identifier": str(engine.pid) if engine.pid else None,
    }


def created_engine_map(engine: EngineConn) -> dict[str, Any]:
    """``data.engine`` of createEngineConn and askEngineConn, with the engine's real status."""
    return {
        "ecAsyncStartResult": "success",
        "serviceInstance": service_instance(ENGINE_APPLICATION_NAME, engine.instance or str(engine.ticket_id)),
        "nodeStatus": engine.status,
        "ticketId": str(engine.ticket_id),
        "ecmServiceInstance": service_instance(ECM_APPLICATION_NAME, engine.ecm.instance),
        "managerServiceInstance": service_instance(MANAGER_APPLICATION_NAME, settings.LINKIS_MANAGER_INSTANCE),
        "owner": engine.owner,
        "identifier": str(engine.pid) if engine.pid else None,
    }

"""A registry of ECMs and engines as agents and admissions leave it, bulk-created for the benchmarks.

Each ECM carries its two labels (serverAlias, emInstance); each engine the five an admission and
its start give it (userCreator, engineType, serverAlias, emInstance, engineInstance), its
metrics and clocks. A tenth of the engines are Starting (no instance yet), the rest are up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bench.common import GIB

BATCH = 2000
# Statuses of the engines, in turn: mostly idle engines, some in use, one in ten starting.
STATUS_CYCLE = ("Unlock", "Unlock", "Unlock", "Unlock", "Unlock", "Unlock", "Busy", "Idle", "Locked", "Starting")

__all__ = ["Fleet", "populate"]


@dataclass
class Fleet:
    ecm_ids: list[int]
    ecm_instances: list[str]
    engine_ids: list[int]


def ecm_instance(index: int) -> str:
    return f"10.{index // 60000 % 250}.{index // 250 % 240}.{index % 250}:9102"


def populate(
    ecms: int,
    engines_per_ecm: int,
    *,
    now: datetime,
    labels: bool = True,
    status_of: Callable[[int], str] | None = None,
    prefix: str = "",
) -> Fleet:
    """Create ``ecms`` ECMs of ``engines_per_ecm`` live engines each; ``status_of(i)`` picks the
    status of the i-th engine (default: ``STATUS_CYCLE``)."""
    from engines.models import EngineConn
    from linkismanager.labels import (
        ECM_APPLICATION_NAME,
        EM_INSTANCE,
        ENGINE_APPLICATION_NAME,
        ENGINE_INSTANCE,
        ENGINE_TYPE,
        SERVER_ALIAS,
        USER_CREATOR,
        format_em_instance,
        format_engine_instance,
    )
    from linkismanager.models import EngineConnManager, Label

    status_of = status_of or (lambda index: STATUS_CYCLE[index % len(STATUS_CYCLE)])
    host_metrics = {"maxMemory": 64 * GIB, "usedMemory": 20 * GIB, "systemCPUUsed": 12.5, "systemLeftMemory": 44 * GIB}
    managers = EngineConnManager.objects.bulk_create(
        [
            EngineConnManager(
                instance=prefix + ecm_instance(index),
                owner="hadoop",
                status="Running",
                max_memory=1000 * GIB,
                max_cores=1000,
                max_instances=max(50, engines_per_ecm + 10),
                min_memory=10 * GIB,
                min_cores=2,
                min_instances=2,
                last_heartbeat=now,
                registered_at=now,
                host_metrics=host_metrics,
            )
            for index in range(ecms)
        ],
        batch_size=BATCH,
    )
    if labels:
        Label.objects.bulk_create(
            [
                Label(ecm=ecm, key=key, value=value)
                for ecm in managers
                for key, value in (
                    (SERVER_ALIAS, ECM_APPLICATION_NAME),
                    (EM_INSTANCE, format_em_instance(ecm.instance)),
                )
            ],
            batch_size=BATCH,
        )

    engine_ids: list[int] = []
    index = 0
    for ecm in managers:
        host = ecm.instance.rsplit(":", 1)[0]
        batch = []
        for slot in range(engines_per_ecm):
            status = status_of(index)
            up = status != "Starting"
            batch.append(
                EngineConn(
                    ecm=ecm,
                    owner=f"user{index % 50}",
                    creator="IDE",
                    engine_type="python",
                    engine_version="python3",
                    status=status,
                    memory=GIB,
                    cores=1,
                    instances=1,
                    instance=f"{host}:{20000 + slot}" if up else "",
                    pid=100000 + index if up else None,
                    process_started_at=1.0e9 if up else None,
                    log_dir=f"user{index % 50}/20250101/python/x/logs",
                    ready_at=now if up else None,
                    last_heartbeat=now if up else None,
                    last_activity=now if up else None,
                    metrics={"rss": 60_000_000, "cpuPercent": 0.5, "pid": 100000 + index, "runningTasks": 0}
                    if up
                    else {},
                )
            )
            index += 1
        created = EngineConn.objects.bulk_create(batch, batch_size=BATCH)
        engine_ids.extend(engine.pk for engine in created)
        if labels:
            rows = []
            for engine in created:
                values = {
                    USER_CREATOR: f"{engine.owner}-{engine.creator}",
                    ENGINE_TYPE: "python-python3",
                    SERVER_ALIAS: ENGINE_APPLICATION_NAME,
                    EM_INSTANCE: format_em_instance(ecm.instance),
                }
                if engine.instance:
                    values[ENGINE_INSTANCE] = format_engine_instance(engine.instance)
                rows.extend(Label(engine=engine, key=key, value=value) for key, value in values.items())
            Label.objects.bulk_create(rows, batch_size=BATCH)
    return Fleet([ecm.pk for ecm in managers], [ecm.instance for ecm in managers], engine_ids)

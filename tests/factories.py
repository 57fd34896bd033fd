"""Test data factories: each makes exactly one object; related objects are made explicitly."""

from __future__ import annotations

from typing import Any

from engines.models import EngineConn
from linkismanager.choices import NodeStatus
from linkismanager.models import EngineConnManager, Label

GIB = 1024**3


def make_ecm(instance: str = "host1:9102", *, labels: dict[str, str] | None = None, **fields: Any) -> EngineConnManager:
    """A registered, running ECM with Linkis' default capacity and reserve unless told otherwise."""
    values: dict[str, Any] = {
        "owner": "hadoop",
        "status": NodeStatus.RUNNING,
        "max_memory": 100 * GIB,
        "max_cores": 100,
        "max_instances": 50,
        "min_memory": 10 * GIB,
        "min_cores": 2,
        "min_instances": 2,
    }
    values.update(fields)
    ecm = EngineConnManager.objects.create(instance=instance, **values)
    for key, value in (labels or {}).items():
        Label.objects.create(ecm=ecm, key=key, value=value)
    return ecm


def make_engine(ecm: EngineConnManager, *, owner: str = "alice", **fields: Any) -> EngineConn:
    """An engine on ``ecm`` (Unlock with an instance unless told otherwise)."""
    values: dict[str, Any] = {
        "creator": "IDE",
        "engine_type": "python",
        "engine_version": "python3",
        "status": NodeStatus.UNLOCK,
        "memory": 1 * GIB,
        "cores": 1,
        "instances": 1,
    }
    values.update(fields)
    return EngineConn.objects.create(ecm=ecm, owner=owner, **values)

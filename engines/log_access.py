"""The manager's side of reading engine logs: which engine, whose it is, which ECM, which folder.

The agent of the engine's ECM reads the file (``engines.logs`` under its own log root); here the
manager decides whether the caller may read it at all. Ownership is always checked, also when the
request names a log folder (``logDirSuffix``), which only admins may point elsewhere than the
engine's own folder.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from engines.logs import LogQuery
from engines.models import EngineConn, EngineHistory
from engines.remote import read_log
from linkismanager.choices import NodeStatus
from linkismanager.exceptions import ManagerError
from linkismanager.labels import ECM_APPLICATION_NAME, ENGINE_APPLICATION_NAME
from linkismanager.models import EngineConnManager

__all__ = ["LogAccessError", "LogTarget", "find_ecm", "find_log_target", "read_engine_log", "service_instance_text"]


class LogAccessError(ManagerError):
    """A log read the manager refuses: unknown engine or ECM, not the caller's, a folder not allowed."""


def service_instance_text(application: str, instance: str) -> str:
    """Linkis' ServiceInstance text, as its messages show it."""
    return f"ServiceInstance({application}, {instance}, 0)"


@dataclass(frozen=True)
class LogTarget:
    """Whose log it is and where: the engine's owner, its ECM and its log folder under the ECM's root."""

    instance: str
    owner: str
    ecm_instance: str
    log_dir: str


def _ticket(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def find_log_target(instance: str) -> LogTarget | None:
    """The engine at ``instance`` (or with that ticket id), else the newest history record of it.

    The history keeps the owner, ECM and folder of engines whose rows are gone.
    """
    ticket = _ticket(instance)
    engine = EngineConn.objects.select_related("ecm").by_instance(instance)
    if engine is None and ticket is not None:
        engine = EngineConn.objects.select_related("ecm").filter(ticket_id=ticket).first()
    if engine is not None:
        return LogTarget(engine.instance or str(engine.ticket_id), engine.owner, engine.ecm.instance, engine.log_dir)
    records = EngineHistory.objects.filter(service_instance=instance)
    if ticket is not None:
        records = records | EngineHistory.objects.filter(ticket_id=ticket)
    record = records.order_by("-created").first()
    if record is not None:
        return LogTarget(instance, record.create_user, record.ecm_instance, record.log_dir_suffix)
    return None


def find_ecm(instance: str) -> EngineConnManager:
    """The ECM at ``instance``; an engine's instance or an unknown one is a clear error."""
    ecm = EngineConnManager.objects.filter(instance=instance).first()
    if ecm is not None:
        return ecm
    if find_log_target(instance) is not None:
        raise LogAccessError(f"{instance} is an engine ({ENGINE_APPLICATION_NAME}), not an ECM.")
    raise LogAccessError(
        f"ECM node :[{instance}]  does not exist, Unable to open engine log(ECM节点:[{instance}] 异常，"
        "无法打开日志，可能是该节点服务重启或者服务异常导致)"
    )


def _engine_target(instance: str) -> LogTarget:
    target = find_log_target(instance)
    if target is not None:
        return target
    if EngineConnManager.objects.filter(instance=instance).exists():
        raise LogAccessError(f"{instance} is an ECM ({ECM_APPLICATION_NAME}), not an engine.")
    raise LogAccessError(f"EC instance: {instance} not exist")


def _same_folder(left: str, right: str) -> bool:
    return left.strip("/") == right.strip("/")


def read_engine_log(
    *,
    caller: str,
    is_admin: bool,
    query: LogQuery,
    engine_instance: str | None = None,
    ecm: EngineConnManager | None = None,
    log_dir_suffix: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Read one page of an engine log through its ECM's agent: Linkis' ``{result, errorMsg, isError}``.

    The engine's owner or an admin may read it. ``ecm``, when given, must be the engine's ECM.
    Without an engine, only an admin may read, and only a folder named by ``log_dir_suffix``. A file
    that does not exist is an ``isError`` answer; a path the agent refuses, an ECM that is down or
    does not answer in time are errors.
    """
    if engine_instance is not None:
        target = _engine_target(engine_instance)
        engine_text = service_instance_text(ENGINE_APPLICATION_NAME, target.instance)
        if target.owner != caller and not is_admin:
            raise LogAccessError(f"You have no permission to get the log of EngineConn {engine_text}.")
        if ecm is not None and ecm.instance != target.ecm_instance:
            raise LogAccessError(f"EngineConn {engine_text} runs on ECM {target.ecm_instance}, not {ecm.instance}.")
        ecm = ecm or find_ecm(target.ecm_instance)
        log_dir = target.log_dir
    elif ecm is None or not is_admin or not log_dir_suffix:
        raise LogAccessError("parameters.engineConnInstance is required: name the engine whose log to read.")
    else:
        log_dir = ""
    if log_dir_suffix and not _same_folder(log_dir_suffix, log_dir):
        if not is_admin:
            ecm_text = service_instance_text(ECM_APPLICATION_NAME, ecm.instance)
            raise LogAccessError(f"You have no permission to get log with path:{log_dir_suffix} in ECM:{ecm_text}")
        log_dir = log_dir_suffix
    if not log_dir:
        raise LogAccessError(f"No log folder is recorded for engine {engine_instance}.")
    if ecm.lost_at is not None or ecm.status != NodeStatus.RUNNING:
        state = "lost" if ecm.lost_at is not None else ecm.status
        raise LogAccessError(f"ECM {ecm.instance} is {state}; its agent cannot read logs now.")

    answer = read_log(ecm, log_dir, query.to_params(), timeout=timeout)
    if answer["ok"]:
        return {"result": answer["result"], "errorMsg": "", "isError": False}
    if answer.get("kind") in ("refused", "invalid"):
        raise LogAccessError(f"ECM {ecm.instance} refused to read the log: {answer.get('error')}")
    return {"result": {}, "errorMsg": answer.get("error") or "The log could not be read.", "isError": True}

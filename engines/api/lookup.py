"""Finding the engine a request names, and checking the caller may act on it."""

from __future__ import annotations

from rest_framework.request import Request

from engines.models import EngineConn
from linkismanager.labels import ENGINE_APPLICATION_NAME
from linkismanager.linkis.exceptions import LinkisAPIError
from linkismanager.linkis.permissions import request_is_admin
from linkismanager.models import EngineConnManager

__all__ = ["engine_for_instance", "ensure_owner_or_admin", "find_engine", "service_instance_text"]

PERMISSION_CODE = 210003


def service_instance_text(instance: str, application: str = ENGINE_APPLICATION_NAME) -> str:
    """Linkis' text form of a ServiceInstance, as its messages quote it."""
    return f"ServiceInstance({application}, {instance}, 0)"


def find_engine(instance: str) -> EngineConn | None:
    """The engine at ``instance`` (the live one, else the newest), or None.

    An ECM's instance is never taken for an engine: naming one is a clean error.
    """
    engine = EngineConn.objects.select_related("ecm").prefetch_related("labels").by_instance(instance)
    if engine is None and EngineConnManager.objects.filter(instance=instance).exists():
        raise LinkisAPIError(f"{instance} is an ECM instance, not an engine instance.")
    return engine


def engine_for_instance(instance: str) -> EngineConn:
    """The engine at ``instance`` (the live one, else the newest), or a clean error."""
    engine = find_engine(instance)
    if engine is None:
        raise LinkisAPIError(f"Instance does not exist {service_instance_text(instance)}")
    return engine


def ensure_owner_or_admin(request: Request, engine: EngineConn, action: str) -> None:
    """Only the engine's owner (exact name) or an admin may ``action`` it (Linkis' wording)."""
    if engine.owner == request.user.get_username() or request_is_admin(request):
        return
    instance = engine.instance or str(engine.ticket_id)
    raise LinkisAPIError(f"You have no permission to {action} EngineConn {service_instance_text(instance)}")

"""Lifecycle services of ECMs, and the pieces every lifecycle change shares: health records, the
audit trail, and resources derived from live engines.

Views, tasks, the agent and the admin all call these functions. Each owns its transaction, guards
its source state with a compare-and-set, writes its health record in the same transaction, and
sends tasks only after commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce

from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.exceptions import ManagerError
from linkismanager.labels import EM_INSTANCE, SERVER_ALIAS, format_em_instance
from linkismanager.models import (
    AuditEntry,
    EngineConnManager,
    HealthFields,
    HealthRecord,
    HealthSource,
    Label,
    NodeKind,
)
from linkismanager.resources import LoadInstance

__all__ = [
    "Capacity",
    "NotFoundError",
    "audit",
    "ecm_capacities",
    "ecm_capacity",
    "live_engine_counts",
    "record_ecm_heartbeat",
    "record_health_change",
    "register_ecm",
    "set_labels",
    "set_pinned_health",
    "stop_ecm",
]


class NotFoundError(ManagerError):
    """The node a request names does not exist."""


# --- History and audit ---------------------------------------------------------------------------


def record_health_change(
    node: HealthFields,
    *,
    field: str,
    old: str,
    new: str,
    source: str,
    actor: str = "",
    reason: str = "",
) -> HealthRecord | None:
    """Append one status or health change of ``node`` to its history (nothing if unchanged)."""
    if old == new:
        return None
    from engines.models import EngineConn

    is_engine = isinstance(node, EngineConn)
    return HealthRecord.objects.create(
        node_kind=NodeKind.ENGINE if is_engine else NodeKind.ECM,
        engine=node if is_engine else None,
        ecm=None if is_engine else node,
        instance=getattr(node, "instance", "") or "",
        field=field,
        old=old or "",
        new=new,
        source=source,
        actor=actor,
        reason=reason,
    )


def audit(
    *,
    actor: str,
    via: str,
    action: str,
    target_type: str,
    target: str,
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Record one mutation in the audit trail."""
    return AuditEntry.objects.create(
        actor=actor, via=via, action=action, target_type=target_type, target=target, before=before, after=after
    )


# --- Resources, derived --------------------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """An ECM's capacity and what its live engines hold: locked (Starting) and used (the rest)."""

    maximum: LoadInstance
    reserve: LoadInstance
    used: LoadInstance
    locked: LoadInstance

    @property
    def left(self) -> LoadInstance:
        """What is neither used nor locked."""
        return self.maximum - self.used - self.locked

    def admits(self, request: LoadInstance) -> bool:
        """Whether ``request`` fits while leaving at least the protected reserve free."""
        return (self.left - request).not_less_than(self.reserve)


def _usage_by_ecm(ecm_ids: Iterable[int]) -> dict[int, tuple[LoadInstance, LoadInstance]]:
    """(used, locked) per ECM, from its live engines, in one grouped query."""
    from engines.models import EngineConn

    starting = Q(status=NodeStatus.STARTING)
    rows = (
        EngineConn.objects.live()
        .filter(ecm_id__in=list(ecm_ids))
        .values("ecm_id")
        .annotate(
            used_memory=Coalesce(Sum("memory", filter=~starting), Value(0)),
            used_cores=Coalesce(Sum("cores", filter=~starting), Value(0)),
            used_instances=Coalesce(Sum("instances", filter=~starting), Value(0)),
            locked_memory=Coalesce(Sum("memory", filter=starting), Value(0)),
            locked_cores=Coalesce(Sum("cores", filter=starting), Value(0)),
            locked_instances=Coalesce(Sum("instances", filter=starting), Value(0)),
        )
        .order_by()
    )
    return {
        row["ecm_id"]: (
            LoadInstance(row["used_memory"], row["used_cores"], row["used_instances"]),
            LoadInstance(row["locked_memory"], row["locked_cores"], row["locked_instances"]),
        )
        for row in rows
    }


def ecm_capacities(ecms: Iterable[EngineConnManager]) -> dict[int, Capacity]:
    """The capacity of each ECM, derived from live engines with one query for them all."""
    ecms = list(ecms)
    usage = _usage_by_ecm(ecm.pk for ecm in ecms)
    result = {}
    for ecm in ecms:
        used, locked = usage.get(ecm.pk, (LoadInstance.ZERO, LoadInstance.ZERO))
        result[ecm.pk] = Capacity(
            maximum=LoadInstance(ecm.max_memory, ecm.max_cores, ecm.max_instances),
            reserve=LoadInstance(ecm.min_memory, ecm.min_cores, ecm.min_instances),
            used=used,
            locked=locked,
        )
    return result


def ecm_capacity(ecm: EngineConnManager) -> Capacity:
    """The capacity of one ECM, derived from its live engines."""
    return ecm_capacities([ecm])[ecm.pk]


# --- Labels --------------------------------------------------------------------------------------


def set_labels(node: HealthFields, labels: Mapping[str, str], *, remove_missing: bool = False) -> None:
    """Make ``node`` carry ``labels`` (one row per key), optionally dropping keys not given.

    Call inside a transaction; values are assumed validated.
    """
    from engines.models import EngineConn

    owner = {"engine": node} if isinstance(node, EngineConn) else {"ecm": node}
    existing = {label.key: label for label in Label.objects.filter(**owner)}
    for key, value in labels.items():
        label = existing.get(key)
        if label is None:
            Label.objects.create(key=key, value=value, **owner)
        elif label.value != value:
            label.value = value
            label.save(update_fields=["value", "modified"])
    if remove_missing:
        stale = [label.pk for key, label in existing.items() if key not in labels]
        if stale:
            Label.objects.filter(pk__in=stale).delete()


# --- Health pins -----------------------------------------------------------------------------------


def set_pinned_health(
    node: HealthFields, health: str, *, actor: str, reason: str = "", via: str = "api"
) -> HealthFields:
    """An admin sets a node's health: Healthy removes the pin, any other value pins it.

    A pinned value stays through heartbeats until an admin sets Healthy again.
    """
    if health not in NodeHealthy.values:
        raise ManagerError(f"Unknown health {health!r}; expected one of {', '.join(NodeHealthy.values)}.")
    model = type(node)
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=node.pk)
        before = locked.health
        pinned_before = locked.pinned_health
        if health == NodeHealthy.HEALTHY:
            locked.pinned_health = None
            locked.pinned_by = actor
            locked.pinned_reason = reason
        else:
            locked.pinned_health = health
            locked.pinned_by = actor
            locked.pinned_reason = reason
        locked.pinned_at = db_now()
        locked.save(update_fields=["pinned_health", "pinned_by", "pinned_at", "pinned_reason", "modified"])
        record_health_change(
            locked,
            field=HealthRecord.Field.HEALTH,
            old=before,
            new=locked.health,
            source=HealthSource.ADMIN,
            actor=actor,
            reason=reason or ("unpinned" if health == NodeHealthy.HEALTHY else "pinned"),
        )
        audit(
            actor=actor,
            via=via,
            action="set_health",
            target_type=model._meta.model_name,
            target=str(locked),
            before={"pinned": pinned_before},
            after={"pinned": locked.pinned_health},
        )
    return locked


# --- ECM lifecycle -----------------------------------------------------------------------------------


def register_ecm(
    instance: str,
    *,
    owner: str,
    capacity: LoadInstance,
    reserve: LoadInstance,
    labels: Mapping[str, str] | None = None,
) -> EngineConnManager:
    """An agent (re)registers: one row per instance, updated in place, its labels kept.

    The ECM is Running from here on and counts as just heard from.
    """
    now = db_now()
    with transaction.atomic():
        ecm, created = EngineConnManager.objects.select_for_update().get_or_create(
            instance=instance,
            defaults={
                "owner": owner,
                "max_memory": capacity.memory,
                "max_cores": capacity.cores,
                "max_instances": capacity.instances,
                "min_memory": reserve.memory,
                "min_cores": reserve.cores,
                "min_instances": reserve.instances,
            },
        )
        old_status = "" if created else ecm.status
        ecm.owner = owner
        ecm.max_memory, ecm.max_cores, ecm.max_instances = capacity.memory, capacity.cores, capacity.instances
        ecm.min_memory, ecm.min_cores, ecm.min_instances = reserve.memory, reserve.cores, reserve.instances
        ecm.status = NodeStatus.RUNNING
        ecm.registered_at = now
        ecm.last_heartbeat = now
        ecm.lost_at = None
        ecm.save()
        set_labels(
            ecm,
            {SERVER_ALIAS: NodeKind.ECM.value, EM_INSTANCE: format_em_instance(instance), **(labels or {})},
        )
        record_health_change(
            ecm,
            field=HealthRecord.Field.STATUS,
            old=old_status,
            new=ecm.status,
            source=HealthSource.AGENT,
            actor=owner,
            reason="registered",
        )
    return ecm


def record_ecm_heartbeat(
    instance: str, *, host_metrics: Mapping[str, Any] | None = None, reported_health: str | None = None
) -> EngineConnManager:
    """An agent reports: its heartbeat time (database clock), host figures and own health.

    A pinned health is left alone: only the reported value changes. A lost ECM that reports again
    is no longer lost.
    """
    if reported_health is not None and reported_health not in NodeHealthy.values:
        raise ManagerError(f"Unknown health {reported_health!r}.")
    now = db_now()
    with transaction.atomic():
        ecm = EngineConnManager.objects.select_for_update().filter(instance=instance).first()
        if ecm is None:
            raise NotFoundError(f"ECM {instance} is not registered.")
        before = ecm.health
        fields = ["last_heartbeat", "lost_at", "modified"]
        ecm.last_heartbeat = now
        was_lost = ecm.lost_at is not None
        ecm.lost_at = None
        if host_metrics is not None:
            ecm.host_metrics = dict(host_metrics)
            fields.append("host_metrics")
        if reported_health is not None:
            ecm.reported_health = reported_health
            fields.append("reported_health")
        ecm.save(update_fields=fields)
        record_health_change(
            ecm,
            field=HealthRecord.Field.HEALTH,
            old=before,
            new=ecm.health,
            source=HealthSource.HEARTBEAT,
            actor=ecm.owner,
            reason="reported again after being lost" if was_lost else "heartbeat",
        )
    return ecm


def stop_ecm(instance: str) -> None:
    """A graceful agent stop: the ECM is ShuttingDown until it registers again."""
    with transaction.atomic():
        ecm = EngineConnManager.objects.select_for_update().filter(instance=instance).first()
        if ecm is None or ecm.status == NodeStatus.SHUTTING_DOWN:
            return
        old = ecm.status
        ecm.status = NodeStatus.SHUTTING_DOWN
        ecm.save(update_fields=["status", "modified"])
        record_health_change(
            ecm,
            field=HealthRecord.Field.STATUS,
            old=old,
            new=ecm.status,
            source=HealthSource.AGENT,
            actor=ecm.owner,
            reason="agent stopped",
        )


def live_engine_counts(ecm_ids: Iterable[int]) -> dict[int, int]:
    """How many live engines each ECM has."""
    from engines.models import EngineConn

    rows = EngineConn.objects.live().filter(ecm_id__in=list(ecm_ids)).values("ecm_id").annotate(n=Count("id"))
    return {row["ecm_id"]: row["n"] for row in rows.order_by()}

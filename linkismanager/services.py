"""Lifecycle services of ECMs, and the pieces every lifecycle change shares: health records, the
audit trail, and resources derived from live engines.

Views, tasks, the agent and the admin all call these functions. Each owns its transaction, guards
its source state with a compare-and-set, writes its health record in the same transaction, and
sends tasks only after commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
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
    "mark_ecm_late",
    "mark_ecm_lost",
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


# --- ECM edits, removal, admission forecasts and resource figures (EMRestfulApi) --------------------


def _ecm_labels(ecm: EngineConnManager) -> dict[str, str]:
    return dict(Label.objects.filter(ecm=ecm).order_by("key").values_list("key", "value"))


def update_ecm_info(
    ecm: EngineConnManager,
    *,
    actor: str,
    via: str = "api",
    health: str | None = None,
    labels: Mapping[str, str] | None = None,
    description: str | None = None,
    reason: str = "",
) -> EngineConnManager:
    """An admin edits an ECM (``modifyEMInfo``): health, the user-modifiable labels, the remark.

    All in one transaction, so an invalid part changes nothing. ``None`` leaves a part alone.
    ``health`` equal to the effective health changes nothing (the console sends the current value
    back with every edit); another value is pinned, and Healthy removes a pin (see
    :func:`set_pinned_health`). ``labels`` replace the user-modifiable labels as a set, Linkis'
    rule; other keys in it are ignored and the ECM's own labels kept.
    """
    from linkismanager.labels import replace_modifiable

    if health is not None and health not in NodeHealthy.values:
        raise ManagerError(f"Unknown health {health!r}; expected one of {', '.join(NodeHealthy.values)}.")
    with transaction.atomic():
        locked = EngineConnManager.objects.select_for_update().filter(pk=ecm.pk).first()
        if locked is None:
            raise NotFoundError(f"ECM {ecm.instance} does not exist.")
        before = {"description": locked.description, "labels": _ecm_labels(locked)}
        after = dict(before)
        if labels is not None:
            after["labels"] = replace_modifiable(before["labels"], labels)
            set_labels(locked, after["labels"], remove_missing=True)
        if description is not None and description != locked.description:
            locked.description = description
            locked.save(update_fields=["description", "modified"])
            after["description"] = description
        if health is not None and health != locked.health:
            if health != NodeHealthy.HEALTHY or locked.pinned_health:
                set_pinned_health(locked, health, actor=actor, reason=reason, via=via)
        if after != before:
            audit(
                actor=actor,
                via=via,
                action="modify_ecm",
                target_type="ecm",
                target=locked.instance,
                before=before,
                after=after,
            )
    locked.refresh_from_db()
    return locked


def remove_ecm(ecm: EngineConnManager, *, actor: str, via: str = "admin") -> int:
    """Remove a decommissioned ECM: its agent is stopped (or lost) and it has no live engine.

    The rows of its ended engines go with it (their history records stay, as Linkis keeps its EC
    resource records), and so do its labels and health history; the audit trail keeps what it was.
    Returns how many ended engine rows were removed. An agent that starts again later registers a
    new row.
    """
    from django.db.models import ProtectedError

    from engines.models import EngineConn

    with transaction.atomic():
        locked = EngineConnManager.objects.select_for_update().filter(pk=ecm.pk).first()
        if locked is None:
            raise NotFoundError(f"ECM {ecm.instance} does not exist.")
        if locked.status == NodeStatus.RUNNING and locked.lost_at is None:
            raise ManagerError(
                f"ECM {locked.instance} is running; stop its agent (or wait until it is declared lost) "
                "before removing it."
            )
        live = EngineConn.objects.live().filter(ecm=locked).count()
        if live:
            raise ManagerError(
                f"ECM {locked.instance} still has {live} live engine{'s' if live != 1 else ''}; drain it "
                "(StockAvailable) and let them end, or kill them, before removing it."
            )
        snapshot = {
            "owner": locked.owner,
            "status": locked.status,
            "health": locked.health,
            "description": locked.description,
            "labels": _ecm_labels(locked),
            "capacity": LoadInstance(locked.max_memory, locked.max_cores, locked.max_instances).to_json(),
        }
        ended = EngineConn.objects.filter(ecm=locked)
        removed = ended.count()
        try:
            ended.delete()
            locked.delete()
        except ProtectedError:
            raise ManagerError(f"ECM {ecm.instance} cannot be removed: other records still refer to it.") from None
        audit(
            actor=actor,
            via=via,
            action="remove_ecm",
            target_type="ecm",
            target=ecm.instance,
            before=snapshot,
            after={"endedEnginesRemoved": removed},
        )
    return removed


def _tenant_matches(ecm: EngineConnManager, tenant: str | None) -> bool:
    """Admission's tenant rule: an ECM with a tenant takes only that tenant's requests, and the other
    ECMs only tenant-less ones."""
    from linkismanager.labels import TENANT

    ecm_tenant = next((label.value for label in ecm.labels.all() if label.key == TENANT), None)
    return ecm_tenant == tenant


@dataclass(frozen=True)
class EnginePrediction:
    """Whether a new engine would be admitted now, and on what the answer rests."""

    request: LoadInstance
    user_left: LoadInstance
    ecm: EngineConnManager | None
    ecm_left: LoadInstance | None
    quota_ok: bool
    ecm_ok: bool
    reason: str

    @property
    def admitted(self) -> bool:
        return self.quota_ok and self.ecm_ok


def predict_engine(
    user: str, creator: str, engine_type: str, engine_version: str, *, tenant: str | None = None
) -> EnginePrediction:
    """A dry run of admission (``task-prediction``): the user's quota and the best ECM, unchanged.

    The same rules as ``engines.services.admit_engine``: what the user's live engines of this
    creator and engine type hold against the quota row's limits (or the defaults), and a placeable
    ECM of the same tenant that keeps its protected reserve free. Nothing is written, not even a
    quota row.
    """
    from engines.services import default_resources, user_usage
    from linkismanager.models import UserQuota

    request = default_resources(engine_type)
    engine_label = f"{engine_type}-{engine_version}"
    quota = UserQuota.objects.filter(user=user, creator=creator, engine_type=engine_label).first()
    limits = LoadInstance(*(quota or UserQuota(user=user, creator=creator, engine_type=engine_label)).limits())
    user_left = limits - user_usage(user, creator, engine_type, engine_version)
    quota_ok = (user_left - request).not_less_than(LoadInstance.ZERO)

    ecms = [
        ecm for ecm in EngineConnManager.objects.placeable().prefetch_related("labels") if _tenant_matches(ecm, tenant)
    ]
    capacities = ecm_capacities(ecms)
    fitting = [ecm for ecm in ecms if capacities[ecm.pk].admits(request)]
    candidates = fitting or ecms
    chosen = (
        max(candidates, key=lambda e: (capacities[e.pk].left.memory, capacities[e.pk].left.cores, -e.pk))
        if candidates
        else None
    )
    reasons = []
    if not quota_ok:
        reasons.append(
            f"user {user} has {user_left.clamp_zero().describe()} left of the quota for {user}-{creator},"
            f"{engine_label}, an engine asks for {request.describe()}"
        )
    if chosen is None:
        reasons.append("no healthy ECM matches" + (f" tenant {tenant}" if tenant else " (without a tenant)"))
    elif not fitting:
        reasons.append(f"no ECM has {request.describe()} left above its protected reserve")
    return EnginePrediction(
        request=request,
        user_left=user_left,
        ecm=chosen,
        ecm_left=capacities[chosen.pk].left if chosen is not None else None,
        quota_ok=quota_ok,
        ecm_ok=bool(fitting),
        reason="; ".join(reasons),
    )


@dataclass(frozen=True)
class UserFigures:
    """What one user + creator + engine type holds and may hold."""

    user: str
    creator: str
    engine_type: str
    used: LoadInstance
    locked: LoadInstance
    maximum: LoadInstance

    @property
    def left(self) -> LoadInstance:
        return self.maximum - self.used - self.locked


@dataclass(frozen=True)
class ResourceFigures:
    """The figures ``reset-resource`` recomputed."""

    ecms: list[tuple[EngineConnManager, Capacity]]
    users: list[UserFigures]


ALL = "*"


def recompute_resources(
    *, ecm_instance: str | None = None, user: str | None = None, actor: str, via: str = "api"
) -> ResourceFigures:
    """Linkis' resource reset. Used and locked figures are never stored here, only derived from the
    live engines, so there is nothing to repair: this recomputes them (``*`` or nothing for all
    ECMs or all users) and records that it was asked, in the audit trail.
    """
    from engines.models import EngineConn
    from linkismanager.models import UserQuota

    ecms = EngineConnManager.objects.order_by("instance")
    if ecm_instance not in (None, ALL):
        ecms = ecms.filter(instance=ecm_instance)
        if not ecms.exists():
            raise NotFoundError(f"ECM {ecm_instance} does not exist.")
    ecm_list = list(ecms)
    capacities = ecm_capacities(ecm_list)

    engines = EngineConn.objects.live()
    quotas = UserQuota.objects.all()
    if user not in (None, ALL):
        engines = engines.filter(owner=user)
        quotas = quotas.filter(user=user)
    starting = Q(status=NodeStatus.STARTING)
    rows = (
        engines.values("owner", "creator", "engine_type", "engine_version")
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
    usage = {
        (row["owner"], row["creator"], f"{row['engine_type']}-{row['engine_version']}"): (
            LoadInstance(row["used_memory"], row["used_cores"], row["used_instances"]),
            LoadInstance(row["locked_memory"], row["locked_cores"], row["locked_instances"]),
        )
        for row in rows
    }
    limits = {(quota.user, quota.creator, quota.engine_type): LoadInstance(*quota.limits()) for quota in quotas}
    default = LoadInstance(*UserQuota().limits())
    users = [
        UserFigures(
            user=key[0],
            creator=key[1],
            engine_type=key[2],
            used=usage.get(key, (LoadInstance.ZERO, LoadInstance.ZERO))[0],
            locked=usage.get(key, (LoadInstance.ZERO, LoadInstance.ZERO))[1],
            maximum=limits.get(key, default),
        )
        for key in sorted(set(usage) | set(limits))
    ]
    audit(
        actor=actor,
        via=via,
        action="reset_resource",
        target_type="resource",
        target=f"ecm={ecm_instance or ALL} user={user or ALL}",
        after={"ecms": len(ecm_list), "users": len(users)},
    )
    return ResourceFigures(ecms=[(ecm, capacities[ecm.pk]) for ecm in ecm_list], users=users)


__all__ += [
    "ALL",
    "EnginePrediction",
    "ResourceFigures",
    "UserFigures",
    "predict_engine",
    "recompute_resources",
    "remove_ecm",
    "update_ecm_info",
]


# --- Late and lost ECMs (the health sweep) -----------------------------------------------------------

# How bad each health is, for the sweep, which only ever makes a late ECM's reported health worse.
_LATE_SEVERITY = {
    NodeHealthy.HEALTHY: 0,
    NodeHealthy.WARN: 0,
    NodeHealthy.STOCK_AVAILABLE: 1,
    NodeHealthy.STOCK_UNAVAILABLE: 2,
    NodeHealthy.UNHEALTHY: 3,
}


def mark_ecm_late(ecm_id: int, *, health: str, late_before: datetime, now: datetime, actor: str = "sweep") -> bool:
    """The sweep finds an ECM's heartbeat late: its reported health becomes ``health``.

    Only when its last heartbeat is still before ``late_before`` (a heartbeat that lands meanwhile
    wins) and ``health`` is worse than what it reports. A pin stays; the record shows the effective
    health, so a pinned ECM gets none. Returns whether this call changed it.
    """
    with transaction.atomic():
        ecm = (
            EngineConnManager.objects.select_for_update()
            .filter(pk=ecm_id, last_heartbeat__lt=late_before)
            .exclude(reported_health=NodeHealthy.UNHEALTHY)
            .first()
        )
        if ecm is None or _LATE_SEVERITY.get(ecm.reported_health, 0) >= _LATE_SEVERITY[health]:
            return False
        before = ecm.health
        reported_before = ecm.reported_health
        ecm.reported_health = health
        ecm.save(update_fields=["reported_health", "modified"])
        record_health_change(
            ecm,
            field=HealthRecord.Field.HEALTH,
            old=before,
            new=ecm.health,
            source=HealthSource.SWEEP,
            actor=actor,
            reason=f"no heartbeat for {(now - ecm.last_heartbeat).total_seconds():.0f} s",
        )
        audit(
            actor=actor,
            via="sweep",
            action="mark_ecm_late",
            target_type="ecm",
            target=ecm.instance,
            before={"reportedHealth": str(reported_before)},
            after={"reportedHealth": health},
        )
    return True


def mark_ecm_lost(ecm_id: int, *, lost_before: datetime, now: datetime, actor: str = "sweep") -> bool:
    """The sweep declares an ECM lost: its heartbeat is older than ``lost_before``.

    It shows UnHealthy while lost (its pin is kept) and takes no new engine; its engines are
    released by the sweep, and its next heartbeat or registration clears ``lost_at``. Once only:
    returns False when it is lost already or has reported meanwhile.
    """
    with transaction.atomic():
        ecm = (
            EngineConnManager.objects.select_for_update()
            .filter(pk=ecm_id, lost_at__isnull=True, last_heartbeat__lt=lost_before)
            .first()
        )
        if ecm is None:
            return False
        before = ecm.health
        late = (now - ecm.last_heartbeat).total_seconds()
        ecm.lost_at = now
        ecm.save(update_fields=["lost_at", "modified"])
        record_health_change(
            ecm,
            field=HealthRecord.Field.HEALTH,
            old=before,
            new=ecm.health,
            source=HealthSource.SWEEP,
            actor=actor,
            reason=f"lost: no heartbeat for {late:.0f} s",
        )
        audit(
            actor=actor,
            via="sweep",
            action="ecm_lost",
            target_type="ecm",
            target=ecm.instance,
            after={"lastHeartbeat": ecm.last_heartbeat.isoformat(), "lateSeconds": round(late)},
        )
    return True

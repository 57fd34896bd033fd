"""What users hold, per user + creator + engine type, derived from live engines and quota rows.

Nothing here is a stored counter: used and locked figures are sums over the engines whose end is
not recorded (Starting engines lock, the others use), and a limit is the quota row's value or the
settings' default. Every figure comes from grouped queries, a bounded number per call, never one
query per row. The engine history (Linkis' EC resource records) is queried here as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Concat

from engines.models import EngineConn, EngineHistory
from linkismanager.choices import NodeStatus
from linkismanager.exceptions import ManagerError
from linkismanager.labels import YARN_CLUSTER
from linkismanager.models import Label, UserQuota
from linkismanager.resources import LoadInstance
from linkismanager.services import audit

__all__ = [
    "CRITICAL",
    "NORMAL",
    "WARN",
    "HistoryFilter",
    "QuotaNotFoundError",
    "ResetResult",
    "UsageKey",
    "UserResource",
    "all_user_resources",
    "ec_list",
    "engine_usage",
    "history_page",
    "live_engines_of",
    "load_status",
    "percent_text",
    "quota_limits",
    "reset_user_resources",
    "user_resources",
    "user_resources_for",
]

# Linkis' loadResourceStatus values: how much of a limit is left.
NORMAL = "normal"
WARN = "warn"
CRITICAL = "critical"
# At least this share left in every limited component: normal; at least the second: warn.
_NORMAL_SHARE = Fraction(1, 2)
_WARN_SHARE = Fraction(1, 5)

_ENGINE_TYPE_LABEL = Concat("engine_type", Value("-"), "engine_version", output_field=CharField())
_STARTING = Q(status=NodeStatus.STARTING)


class QuotaNotFoundError(ManagerError):
    """The quota row a request names does not exist."""


@dataclass(frozen=True, order=True)
class UsageKey:
    """One user + creator + engine type with version (``alice``, ``IDE``, ``python-python3``)."""

    user: str
    creator: str
    engine_type: str

    @property
    def combined_label(self) -> str:
        """Linkis' combined label value, ``alice-IDE,python-python3``."""
        return f"{self.user}-{self.creator},{self.engine_type}"


def _engine_key(owner: str, creator: str, engine_type: str, version: str) -> UsageKey:
    return UsageKey(owner, creator, f"{engine_type}-{version}")


def load_status(left: LoadInstance, maximum: LoadInstance) -> str:
    """``normal``, ``warn`` or ``critical``: the share left of the tightest limited component.

    A component whose limit is zero has nothing to share and is not measured; when every component
    is zero nothing can ever be allocated, which is critical.
    """
    shares = [
        Fraction(max(part_left, 0), part_max)
        for part_left, part_max in (
            (left.memory, maximum.memory),
            (left.cores, maximum.cores),
            (left.instances, maximum.instances),
        )
        if part_max > 0
    ]
    if not shares:
        return CRITICAL
    tightest = min(shares)
    if tightest >= _NORMAL_SHARE:
        return NORMAL
    if tightest >= _WARN_SHARE:
        return WARN
    return CRITICAL


def _share(held: int, limit: int) -> Fraction:
    return Fraction(held, limit) if limit > 0 else Fraction(0)


def percent_text(held: LoadInstance, maximum: LoadInstance) -> str:
    """Linkis' ``percent``: the largest of held/max over memory, cores and instances, as ``"0.50"``."""
    largest = max(
        _share(held.memory, maximum.memory),
        _share(held.cores, maximum.cores),
        _share(held.instances, maximum.instances),
    )
    exact = Decimal(largest.numerator) / Decimal(largest.denominator)
    return str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def quota_limits(quota: UserQuota | None) -> LoadInstance:
    """A quota row's limits, or the settings' defaults for a user who has no row."""
    return LoadInstance(*(quota or UserQuota()).limits())


@dataclass(frozen=True)
class UserResource:
    """One user + creator + engine type: its limit, and what its live engines use and lock."""

    key: UsageKey
    quota: UserQuota | None
    maximum: LoadInstance
    used: LoadInstance
    locked: LoadInstance

    @property
    def left(self) -> LoadInstance:
        """What the limit still allows; negative when a limit was lowered below what is held."""
        return self.maximum - self.used - self.locked

    @property
    def held(self) -> LoadInstance:
        return self.used + self.locked

    @property
    def status(self) -> str:
        return load_status(self.left, self.maximum)


# --- Derived usage ---------------------------------------------------------------------------------


def engine_usage(engines: QuerySet[EngineConn]) -> dict[UsageKey, tuple[LoadInstance, LoadInstance]]:
    """(used, locked) per user + creator + engine type over the live ones of ``engines``, in one
    grouped query."""
    rows = (
        engines.filter(ended_at__isnull=True)
        .values("owner", "creator", "engine_type", "engine_version")
        .annotate(
            used_memory=Coalesce(Sum("memory", filter=~_STARTING), Value(0)),
            used_cores=Coalesce(Sum("cores", filter=~_STARTING), Value(0)),
            used_instances=Coalesce(Sum("instances", filter=~_STARTING), Value(0)),
            locked_memory=Coalesce(Sum("memory", filter=_STARTING), Value(0)),
            locked_cores=Coalesce(Sum("cores", filter=_STARTING), Value(0)),
            locked_instances=Coalesce(Sum("instances", filter=_STARTING), Value(0)),
        )
        .order_by()
    )
    return {
        _engine_key(row["owner"], row["creator"], row["engine_type"], row["engine_version"]): (
            LoadInstance(row["used_memory"], row["used_cores"], row["used_instances"]),
            LoadInstance(row["locked_memory"], row["locked_cores"], row["locked_instances"]),
        )
        for row in rows
    }


def _quotas_by_key(quotas: Iterable[UserQuota]) -> dict[UsageKey, UserQuota]:
    return {UsageKey(quota.user, quota.creator, quota.engine_type): quota for quota in quotas}


def _resources(
    keys: Iterable[UsageKey],
    quotas: dict[UsageKey, UserQuota],
    usage: dict[UsageKey, tuple[LoadInstance, LoadInstance]],
) -> list[UserResource]:
    result = []
    for key in keys:
        quota = quotas.get(key)
        used, locked = usage.get(key, (LoadInstance.ZERO, LoadInstance.ZERO))
        result.append(UserResource(key=key, quota=quota, maximum=quota_limits(quota), used=used, locked=locked))
    return result


def user_resources(users: Iterable[str], *, engaged_only: bool = False) -> dict[UsageKey, UserResource]:
    """Every user + creator + engine type of ``users`` that has a quota row or live engines; with
    ``engaged_only``, only those that have live engines."""
    users = set(users)
    quotas = _quotas_by_key(UserQuota.objects.filter(user__in=users))
    usage = engine_usage(EngineConn.objects.filter(owner__in=users))
    keys = sorted(set(usage) if engaged_only else set(quotas) | set(usage))
    return {resource.key: resource for resource in _resources(keys, quotas, usage)}


def live_engines_of(user: str) -> QuerySet[EngineConn]:
    """The live engines a user owns (owner names are case-sensitive, as Linkis compares them)."""
    return EngineConn.objects.live().filter(owner=user).select_related("ecm").order_by("created", "pk")


def _key_rows(username: str | None, creator: str | None, engine_type: str | None) -> QuerySet:
    """Distinct (user, creator, engine type) keys of quota rows and of live engines, as one union."""
    quotas = UserQuota.objects.all()
    engines = EngineConn.objects.live().annotate(key_user=F("owner"), key_type=_ENGINE_TYPE_LABEL)
    if username:
        quotas = quotas.filter(user__icontains=username)
        engines = engines.filter(owner__icontains=username)
    if creator:
        quotas = quotas.filter(creator__icontains=creator)
        engines = engines.filter(creator__icontains=creator)
    if engine_type:
        quotas = quotas.filter(engine_type__icontains=engine_type)
        engines = engines.filter(key_type__icontains=engine_type)
    # UNION (not UNION ALL) drops the keys present on both sides.
    # Each side without its model's default ordering, which a compound statement does not allow.
    return (
        quotas.order_by()
        .values_list("user", "creator", "engine_type")
        .union(engines.order_by().values_list("key_user", "creator", "key_type"))
    )


def all_user_resources(
    *, username: str | None, creator: str | None, engine_type: str | None, page: int, size: int
) -> tuple[list[UserResource], int]:
    """One page of every user + creator + engine type that has a quota row or live engines,
    filtered by substrings (any case), in user, creator, engine type order; and the total.

    Users on default quotas who have engines are listed as well as quota rows without engines.
    The page is cut in the database; its figures take two more grouped queries.
    """
    keys_query = _key_rows(username, creator, engine_type)
    total = keys_query.count()
    offset = (page - 1) * size
    page_keys = [
        UsageKey(*row) for row in keys_query.order_by("user", "creator", "engine_type")[offset : offset + size]
    ]
    if not page_keys:
        return [], total
    users = {key.user for key in page_keys}
    quotas = _quotas_by_key(UserQuota.objects.filter(user__in=users))
    usage = engine_usage(EngineConn.objects.filter(owner__in=users))
    return _resources(page_keys, quotas, usage), total


def user_resources_for(user: str, creator: str, engine_type: str) -> list[UserResource]:
    """The resources of one user + creator for an engine type: ``python-python3`` names one
    version, ``python`` every version the user has a quota row or live engines for. A user with
    neither still gets the exact key they asked for, on the default limits."""
    quotas = UserQuota.objects.filter(user=user, creator=creator)
    engines = EngineConn.objects.filter(owner=user, creator=creator)
    if "-" in engine_type:
        quotas = quotas.filter(engine_type=engine_type)
        engines = engines.annotate(key_type=_ENGINE_TYPE_LABEL).filter(key_type=engine_type)
    else:
        quotas = quotas.filter(engine_type__startswith=f"{engine_type}-")
        engines = engines.filter(engine_type=engine_type)
    quota_map = _quotas_by_key(quotas)
    usage = engine_usage(engines)
    keys = sorted(set(quota_map) | set(usage))
    if not keys and "-" in engine_type:
        keys = [UsageKey(user, creator, engine_type)]
    return _resources(keys, quota_map, usage)


# --- Reset -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResetResult:
    """What a reset did: lock-only quota rows removed, rows kept (overrides, or rows in use)."""

    removed: list[str]
    kept: int


def reset_user_resources(*, resource_id: int | None, actor: str, via: str = "api") -> ResetResult:
    """Linkis' resource reset, for figures that are derived: there is nothing stored to recompute,
    so a reset only tidies quota rows.

    A row that admission created just to have something to lock (no limit set) is removed when its
    user has no live engine of that creator and engine type; it comes back on the next admission.
    A row with a limit an admin set is never removed. ``resource_id`` names one row; None means
    every row.
    """
    with transaction.atomic():
        rows = UserQuota.objects.select_for_update().order_by("pk")
        if resource_id is not None:
            rows = rows.filter(pk=resource_id)
        quotas = list(rows)
        if resource_id is not None and not quotas:
            raise QuotaNotFoundError(f"There is no user resource with id {resource_id}.")
        candidates = [quota for quota in quotas if not quota.is_override]
        # Read after the rows are locked, so an engine admitted meanwhile is seen here.
        busy = set(engine_usage(EngineConn.objects.filter(owner__in={quota.user for quota in candidates})))
        removable = [
            quota for quota in candidates if UsageKey(quota.user, quota.creator, quota.engine_type) not in busy
        ]
        removed = [str(quota) for quota in removable]
        if removable:
            # The conditions again, so a row that got a limit meanwhile is kept.
            UserQuota.objects.filter(
                pk__in=[quota.pk for quota in removable],
                max_memory__isnull=True,
                max_cores__isnull=True,
                max_instances__isnull=True,
            ).delete()
        audit(
            actor=actor,
            via=via,
            action="reset_resource",
            target_type="quota",
            target=str(resource_id) if resource_id is not None else "*",
            after={"removed": removed, "kept": len(quotas) - len(removed)},
        )
    return ResetResult(removed=removed, kept=len(quotas) - len(removed))


# --- Engine history --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilter:
    """The filters of ``ecrHistoryList``. ``user`` None means every user's records."""

    start: datetime
    end: datetime
    user: str | None = None
    instance: str | None = None
    engine_type: str | None = None
    status: str | None = None


def _history_query(spec: HistoryFilter) -> QuerySet[EngineHistory]:
    records = EngineHistory.objects.filter(created__gte=spec.start, created__lte=spec.end)
    if spec.user is not None:
        # User names compare without case here, as Linkis' record look-ups do.
        records = records.filter(create_user__iexact=spec.user)
    if spec.instance:
        records = records.filter(service_instance=spec.instance)
    if spec.engine_type:
        if "-" in spec.engine_type:
            records = records.filter(label_value__endswith=f",{spec.engine_type}")
        else:
            records = records.filter(engine_type=spec.engine_type)
    if spec.status:
        records = records.filter(status=spec.status)
    return records


def history_page(spec: HistoryFilter, *, page: int, size: int) -> tuple[list[EngineHistory], int]:
    """One page of engine history records, newest first, and how many match in all."""
    records = _history_query(spec)
    total = records.count()
    offset = (page - 1) * size
    return list(records.order_by("-created", "-pk")[offset : offset + size]), total


def ec_list(
    *,
    owners: list[str],
    engine_types: list[str],
    statuses: list[str],
    instances: list[str],
    queue_name: str | None,
    cross_cluster: bool | None,
) -> tuple[list[EngineConn], dict[str, EngineHistory]]:
    """Live engines for ``ecinfo/ecList``, and their history records by ticket id.

    An empty list filters nothing. ``engine_types`` take a type (``python``) or a type with version
    (``python-python3``). A queue name matches only engines on a YARN queue, and this manager
    runs none. ``cross_cluster`` True keeps engines on ECMs that carry a yarnCluster label, False
    those on ECMs without one.
    """
    if queue_name:
        return [], {}
    engines = EngineConn.objects.live().select_related("ecm")
    if owners:
        engines = engines.filter(owner__in=owners)
    if statuses:
        engines = engines.filter(status__in=statuses)
    if instances:
        engines = engines.filter(instance__in=instances)
    if engine_types:
        engines = engines.annotate(key_type=_ENGINE_TYPE_LABEL).filter(
            Q(engine_type__in=[name for name in engine_types if "-" not in name])
            | Q(key_type__in=[name for name in engine_types if "-" in name])
        )
    if cross_cluster is not None:
        on_cluster = Exists(Label.objects.filter(ecm=OuterRef("ecm"), key=YARN_CLUSTER))
        engines = engines.filter(on_cluster if cross_cluster else ~on_cluster)
    found = list(engines.order_by("created", "pk"))
    records = EngineHistory.objects.filter(ticket_id__in=[engine.ticket_id for engine in found])
    return found, {str(record.ticket_id): record for record in records}

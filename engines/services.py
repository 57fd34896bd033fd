"""Lifecycle services of engines: admission, start, runtime reports, kill, failure, cull, end.

One function per state change. Each guards its source state with a compare-and-set (an UPDATE
filtered on the allowed source statuses, checked for exactly one row), writes its health record
in the same transaction, and sends agent tasks only after commit. ShuttingDown, Failed and
Success are terminal: no function moves an engine out of them, and recording the end is a
separate, once-only step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum, Value
from django.db.models.functions import Coalesce

from config.celery import ecm_queue, enqueue_after_commit
from engines.exceptions import AdmissionError, EngineNotFoundError
from engines.models import EngineConn, EngineHistory
from linkismanager.choices import TERMINAL_STATUSES, NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.labels import (
    EM_INSTANCE,
    ENGINE_INSTANCE,
    SERVER_ALIAS,
    TENANT,
    format_engine_instance,
)
from linkismanager.models import EngineConnManager, HealthRecord, HealthSource, Label, NodeKind, UserQuota
from linkismanager.resources import LoadInstance, log_json
from linkismanager.services import audit, ecm_capacities, record_health_change, set_labels

__all__ = [
    "KILL_TASK",
    "LAUNCH_TASK",
    "EngineRequest",
    "admit_engine",
    "cull_engine",
    "cull_idle_engine",
    "default_resources",
    "fail_engine",
    "fail_stale_engine",
    "mark_engine_started",
    "record_engine_end",
    "EngineReport",
    "record_engine_heartbeat",
    "record_engine_heartbeats",
    "record_launch",
    "record_user_activity",
    "release_engine_of_lost_ecm",
    "request_engine_kill",
    "resend_engine_kill",
    "set_runtime_status",
    "user_usage",
]

# Tasks run by the agent that owns the engine, on its queue, sent by name.
LAUNCH_TASK = "engines.tasks.launch_engine"
KILL_TASK = "engines.tasks.kill_engine"

_NON_TERMINAL = [s.value for s in NodeStatus if s not in TERMINAL_STATUSES]
# Statuses the runtime itself reports once the engine is up.
_RUNTIME_STATUSES = [NodeStatus.UNLOCK, NodeStatus.LOCKED, NodeStatus.IDLE, NodeStatus.BUSY]


@dataclass(frozen=True)
class EngineRequest:
    """What a create or ask asks for, already validated."""

    user: str
    creator: str
    engine_type: str
    engine_version: str
    resources: LoadInstance
    labels: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def engine_type_label(self) -> str:
        return f"{self.engine_type}-{self.engine_version}"


def default_resources(engine_type: str) -> LoadInstance:
    """What one engine of ``engine_type`` asks for when the request does not say."""
    per_type = settings.ENGINE_DEFAULT_RESOURCES.get(engine_type, {})
    return LoadInstance(
        memory=per_type.get("memory", settings.ENGINE_DEFAULT_MEMORY),
        cores=per_type.get("cores", settings.ENGINE_DEFAULT_CORES),
        instances=1,
    )


def user_usage(user: str, creator: str, engine_type: str, engine_version: str) -> LoadInstance:
    """What a user's live engines of one creator and engine type hold (Starting ones included)."""
    totals = (
        EngineConn.objects.live()
        .filter(owner=user, creator=creator, engine_type=engine_type, engine_version=engine_version)
        .aggregate(
            memory=Coalesce(Sum("memory"), Value(0)),
            cores=Coalesce(Sum("cores"), Value(0)),
            instances=Coalesce(Sum("instances"), Value(0)),
        )
    )
    return LoadInstance(totals["memory"], totals["cores"], totals["instances"])


def _ecm_accepts(ecm_labels: Mapping[str, str], request_labels: Mapping[str, str]) -> bool:
    """An ECM takes a request when their tenants agree (both none, or the same) and, if the
    request names an ECM (emInstance), it is that one."""
    if ecm_labels.get(TENANT) != request_labels.get(TENANT):
        return False
    wanted = request_labels.get(EM_INSTANCE)
    return wanted is None or wanted == ecm_labels.get(EM_INSTANCE)


def _log_dir(request: EngineRequest, ticket_id: str, now: datetime) -> str:
    return f"{request.user}/{now:%Y%m%d}/{request.engine_type}/{ticket_id}/logs"


def admit_engine(request: EngineRequest, *, actor: str, via: str = "api") -> EngineConn:
    """Admit a new engine: check the user's quota and an ECM's capacity, insert it in Starting,
    and have the ECM's agent launch it once committed.

    The user's quota row (created on first use, so there is always a row to lock) is locked first,
    then every candidate ECM row in id order, so parallel admissions queue up instead of
    overshooting a limit, and never deadlock.
    """
    resources = request.resources
    now = db_now()
    with transaction.atomic():
        # One statement, so a reset that deletes a lock-only row cannot slip in between.
        quota, _ = UserQuota.objects.select_for_update().get_or_create(
            user=request.user, creator=request.creator, engine_type=request.engine_type_label
        )
        limit = LoadInstance(*quota.limits())
        used = user_usage(request.user, request.creator, request.engine_type, request.engine_version)
        if not (limit - used - resources).not_less_than(LoadInstance.ZERO):
            raise AdmissionError(
                f"User {request.user} has reached the quota for {request.user}-{request.creator},"
                f"{request.engine_type_label}: using {used.describe()} of {limit.describe()}, "
                f"asking for {resources.describe()}.",
                code=30002,
            )

        candidate_ids = []
        for ecm in EngineConnManager.objects.placeable().prefetch_related("labels"):
            if _ecm_accepts({label.key: label.value for label in ecm.labels.all()}, request.labels):
                candidate_ids.append(ecm.pk)
        if not candidate_ids:
            raise AdmissionError(
                "No healthy ECM matches the request's labels"
                + (f" (tenant {request.labels[TENANT]})" if TENANT in request.labels else "")
                + ".",
                code=30002,
                can_retry=True,
            )
        # Checked again under the lock: an ECM may have been lost or pinned since it was read.
        ecms = list(
            EngineConnManager.objects.select_for_update().placeable().filter(pk__in=candidate_ids).order_by("pk")
        )
        capacities = ecm_capacities(ecms)
        fitting = [ecm for ecm in ecms if capacities[ecm.pk].admits(resources)]
        if not fitting:
            raise AdmissionError(
                f"No ECM has {resources.describe()} left above its protected reserve.",
                code=30002,
                can_retry=True,
            )
        ecm = max(fitting, key=lambda e: (capacities[e.pk].left.memory, capacities[e.pk].left.cores, -e.pk))

        engine = EngineConn(
            ecm=ecm,
            owner=request.user,
            creator=request.creator,
            engine_type=request.engine_type,
            engine_version=request.engine_version,
            memory=resources.memory,
            cores=resources.cores,
            instances=resources.instances,
            properties=dict(request.properties),
        )
        engine.log_dir = _log_dir(request, str(engine.ticket_id), now)
        engine.save()
        ecm_labels = {label.key: label.value for label in Label.objects.filter(ecm=ecm, key__in=[EM_INSTANCE, TENANT])}
        set_labels(engine, {**request.labels, SERVER_ALIAS: NodeKind.ENGINE.value, **ecm_labels})
        EngineHistory.objects.create(
            ticket_id=engine.ticket_id,
            label_value=f"{engine.user_creator},{engine.engine_type_label}",
            create_user=engine.owner,
            engine_type=engine.engine_type,
            ecm_instance=ecm.instance,
            status=NodeStatus.STARTING,
            log_dir_suffix=engine.log_dir,
            request_resource=log_json(resources),
            request_times=1,
        )
        record_health_change(
            engine,
            field=HealthRecord.Field.STATUS,
            old="",
            new=NodeStatus.STARTING,
            source=HealthSource.API,
            actor=actor,
            reason="admitted",
        )
        audit(
            actor=actor,
            via=via,
            action="create_engine",
            target_type="engine",
            target=str(engine.ticket_id),
            after={"ecm": ecm.instance, "engineType": engine.engine_type_label, "owner": engine.owner},
        )
        enqueue_after_commit(LAUNCH_TASK, engine.pk, queue=ecm_queue(ecm.instance))
    return engine


def _get(engine_id: int) -> EngineConn:
    engine = EngineConn.objects.filter(pk=engine_id).select_related("ecm").first()
    if engine is None:
        raise EngineNotFoundError(f"Engine {engine_id} does not exist.")
    return engine


def _move(
    engine_id: int,
    *,
    sources: list[str],
    target: str,
    source: str,
    actor: str,
    reason: str,
    extra: Q | None = None,
    **updates: Any,
) -> EngineConn | None:
    """Compare-and-set the status of a live engine from one of ``sources`` to ``target``.

    Returns the engine as it is after the move, or None when another change got there first (the
    engine was not in a source status, or has ended). Call inside a transaction.
    """
    engine = EngineConn.objects.filter(pk=engine_id).first()
    if engine is None:
        raise EngineNotFoundError(f"Engine {engine_id} does not exist.")
    matched = EngineConn.objects.filter(pk=engine_id, ended_at__isnull=True, status__in=sources)
    if extra is not None:
        matched = matched.filter(extra)
    if matched.update(status=target, modified=db_now(), **updates) != 1:
        return None
    old = engine.status
    engine.refresh_from_db()
    record_health_change(
        engine, field=HealthRecord.Field.STATUS, old=old, new=target, source=source, actor=actor, reason=reason
    )
    return engine


def record_launch(engine_id: int, *, pid: int, process_started_at: float, control_secret: str = "") -> bool:
    """The agent has spawned the process: keep its pid and start time, the only kill handle.

    Recorded as soon as the process exists, so a kill during start-up can reach it. Only once.
    """
    updated = EngineConn.objects.filter(pk=engine_id, pid__isnull=True, ended_at__isnull=True).update(
        pid=pid, process_started_at=process_started_at, control_secret=control_secret, modified=db_now()
    )
    return updated == 1


def mark_engine_started(engine_id: int, *, instance: str, actor: str = "agent") -> EngineConn | None:
    """The engine's control port answers: Starting → Unlock, its instance now known.

    Returns None if the engine left Starting meanwhile (killed or failed during start-up); the
    agent must then stop the process.
    """
    now = db_now()
    try:
        with transaction.atomic():
            engine = _move(
                engine_id,
                sources=[NodeStatus.STARTING],
                target=NodeStatus.UNLOCK,
                source=HealthSource.AGENT,
                actor=actor,
                reason="control port ready",
                instance=instance,
                ready_at=now,
                last_activity=now,
                last_heartbeat=now,
            )
            if engine is None:
                return None
            set_labels(engine, {ENGINE_INSTANCE: format_engine_instance(instance)})
            EngineHistory.objects.filter(ticket_id=engine.ticket_id).update(
                service_instance=instance,
                status=NodeStatus.RUNNING,
                used_resource=log_json(LoadInstance(engine.memory, engine.cores, engine.instances)),
                used_times=1,
                used_time=now,
            )
    except IntegrityError:
        # Another live engine holds this instance: the registry must not get two.
        fail_engine(engine_id, reason=f"instance {instance} is already used by a live engine", actor=actor)
        return None
    return engine


def set_runtime_status(engine_id: int, status: str, *, actor: str = "agent") -> bool:
    """The runtime reports Unlock, Locked, Idle or Busy. Terminal and Starting engines are left alone."""
    if status not in _RUNTIME_STATUSES:
        return False
    with transaction.atomic():
        sources = [s for s in _RUNTIME_STATUSES if s != status]
        return (
            _move(
                engine_id,
                sources=sources,
                target=status,
                source=HealthSource.HEARTBEAT,
                actor=actor,
                reason="runtime report",
            )
            is not None
        )


@dataclass(frozen=True)
class EngineReport:
    """What an agent learnt of one of its live engines at a heartbeat."""

    engine_id: int
    status: str | None = None
    last_activity: datetime | None = None
    responsive: bool = True
    metrics: Mapping[str, Any] | None = None


def record_engine_heartbeats(reports: list[EngineReport], *, actor: str = "agent") -> int:
    """One agent heartbeat's reports on its engines, written together: runtime status, idle
    clock, responsiveness, metrics. Returns how many live engines were updated.

    One transaction and one prepared update for all the rows (an agent reports every engine at
    every heartbeat, so this is the manager's busiest write); only a status that really changed takes
    the compare-and-set of ``set_runtime_status``. The idle clock only moves forward and only on
    user actions the runtime reports; a terminal engine keeps its status whatever a late report
    says.
    """
    if not reports:
        return 0
    by_id = {report.engine_id: report for report in reports}
    now = db_now()
    with transaction.atomic():
        engines = list(
            EngineConn.objects.select_for_update()
            .filter(pk__in=list(by_id), ended_at__isnull=True)
            .only("id", "status", "last_activity", "unresponsive_since", "metrics", "last_heartbeat", "modified")
            .order_by("pk")
        )
        moves = []
        for engine in engines:
            report = by_id[engine.pk]
            engine.last_heartbeat = now
            engine.modified = now
            if report.responsive:
                engine.unresponsive_since = None
            elif engine.unresponsive_since is None:
                engine.unresponsive_since = now
            if report.last_activity is not None and (
                engine.last_activity is None or report.last_activity > engine.last_activity
            ):
                engine.last_activity = report.last_activity
            if report.metrics is not None:
                engine.metrics = dict(report.metrics)
            if report.status is not None and report.responsive and report.status != engine.status:
                moves.append((engine.pk, report.status))
        _write_heartbeat_fields(engines)
        for engine_id, status in moves:
            set_runtime_status(engine_id, status, actor=actor)
    return len(engines)


_HEARTBEAT_FIELDS = ("last_heartbeat", "modified", "unresponsive_since", "last_activity", "metrics")


def _write_heartbeat_fields(engines: list[EngineConn]) -> None:
    """Write the heartbeat fields of ``engines`` with one prepared UPDATE run for every row.

    Django's ``bulk_update`` builds a CASE expression per row and field; for an agent's hundred
    engines that took ~150 ms of Python against ~3 ms in the database. Values go through each
    field's own database preparation, so JSON and times are written as the ORM writes them.
    """
    if not engines:
        return
    meta = EngineConn._meta
    fields = [meta.get_field(name) for name in _HEARTBEAT_FIELDS]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    statement = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    rows = [
        [field.get_db_prep_save(getattr(engine, field.attname), connection) for field in fields] + [engine.pk]
        for engine in engines
    ]
    with connection.cursor() as cursor:
        cursor.executemany(statement, rows)


def record_engine_heartbeat(
    engine_id: int,
    *,
    status: str | None = None,
    last_activity: datetime | None = None,
    responsive: bool = True,
    metrics: Mapping[str, Any] | None = None,
    actor: str = "agent",
) -> None:
    """One engine's report (see :func:`record_engine_heartbeats`)."""
    record_engine_heartbeats(
        [EngineReport(engine_id, status, last_activity, responsive, metrics)],
        actor=actor,
    )


def record_user_activity(engine_id: int) -> bool:
    """A user acts on a live, available engine (a code run, a lock): its idle clock moves to now.

    The idle sweep's cull is a compare-and-set on this clock, so whichever of the two lands first
    wins: an engine culled first is already terminal here, and a cull after this sees it active.
    """
    updated = EngineConn.objects.filter(
        pk=engine_id, ended_at__isnull=True, status__in=[str(s) for s in _RUNTIME_STATUSES]
    ).update(last_activity=db_now())
    return updated == 1


def request_engine_kill(
    engine: EngineConn, *, actor: str, reason: str = "", via: str = "api", enqueue: bool = True
) -> bool:
    """Ask for an engine to be killed. One compare-and-set to ShuttingDown decides who kills.

    Returns True when this call decided (the kill task goes to the engine's agent after commit,
    unless the caller is that agent and kills it itself), False when the engine was already
    stopping or stopped.
    """
    return _kill(
        engine,
        sources=_NON_TERMINAL,
        actor=actor,
        reason=reason,
        default_reason="kill requested",
        via=via,
        enqueue=enqueue,
    )


def _kill(
    engine: EngineConn,
    *,
    sources: list[str],
    actor: str,
    reason: str,
    default_reason: str,
    via: str,
    enqueue: bool = True,
    audit_extra: dict[str, Any] | None = None,
) -> bool:
    """The compare-and-set from ``sources`` to ShuttingDown that decides a kill, its audit entry,
    and the kill task for the engine's agent after commit. False when another change won."""
    now = db_now()
    with transaction.atomic():
        moved = _move(
            engine.pk,
            sources=sources,
            target=NodeStatus.SHUTTING_DOWN,
            source=HealthSource.API if via == "api" else via,
            actor=actor,
            reason=reason or default_reason,
            kill_requested_at=now,
            kill_requested_by=actor,
        )
        if moved is None:
            return False
        audit(
            actor=actor,
            via=via,
            action="kill_engine",
            target_type="engine",
            target=str(moved),
            after={"reason": reason, **(audit_extra or {})},
        )
        if enqueue:
            enqueue_after_commit(KILL_TASK, moved.pk, queue=ecm_queue(moved.ecm.instance))
    return True


def fail_engine(
    engine_id: int, *, reason: str, actor: str, source: str = HealthSource.AGENT, kill: bool = True
) -> bool:
    """The manager decides an engine has failed (start failure, hang, lost host): → Failed.

    With ``kill`` its agent is told to stop the process (and then record the end).
    """
    with transaction.atomic():
        moved = _move(
            engine_id,
            sources=_NON_TERMINAL,
            target=NodeStatus.FAILED,
            source=source,
            actor=actor,
            reason=reason,
            end_reason=reason,
        )
        if moved is None:
            return False
        if kill:
            enqueue_after_commit(KILL_TASK, moved.pk, queue=ecm_queue(_get(engine_id).ecm.instance))
    return True


def cull_engine(engine_id: int, *, reason: str, idle_before: datetime, actor: str = "sweep") -> bool:
    """An Unlock engine idle since before ``idle_before`` is culled: → Success, then killed.

    The idle clock is part of the compare-and-set, so a user action that lands meanwhile saves it.
    """
    with transaction.atomic():
        moved = _move(
            engine_id,
            sources=[NodeStatus.UNLOCK],
            target=NodeStatus.SUCCESS,
            source=HealthSource.SWEEP,
            actor=actor,
            reason=reason,
            extra=Q(last_activity__lt=idle_before),
            end_reason=reason,
        )
        if moved is None:
            return False
        audit(actor=actor, via="sweep", action="cull_engine", target_type="engine", target=str(moved))
        enqueue_after_commit(KILL_TASK, moved.pk, queue=ecm_queue(_get(engine_id).ecm.instance))
    return True


def record_engine_end(engine_id: int, *, exit_code: int | None, reason: str = "", actor: str = "agent") -> bool:
    """The process is gone: record the end once, freeing the engine's resources.

    An engine still in a live status ended on its own: Success on a clean exit, Failed otherwise.
    A terminal status is kept. Returns False when the end was already recorded.
    """
    now = db_now()
    with transaction.atomic():
        engine = EngineConn.objects.select_for_update().filter(pk=engine_id).first()
        if engine is None:
            raise EngineNotFoundError(f"Engine {engine_id} does not exist.")
        if engine.ended_at is not None:
            return False
        old = engine.status
        if not engine.is_terminal:
            engine.status = NodeStatus.SUCCESS if exit_code == 0 else NodeStatus.FAILED
        engine.ended_at = now
        engine.exit_code = exit_code
        if reason and not engine.end_reason:
            engine.end_reason = reason
        engine.save(update_fields=["status", "ended_at", "exit_code", "end_reason", "modified"])
        record_health_change(
            engine,
            field=HealthRecord.Field.STATUS,
            old=old,
            new=engine.status,
            source=HealthSource.AGENT,
            actor=actor,
            reason=reason or "process ended",
        )
        EngineHistory.objects.filter(ticket_id=engine.ticket_id).update(
            status=engine.status,
            released_resource=log_json(LoadInstance(engine.memory, engine.cores, engine.instances)),
            release_times=1,
            release_time=now,
            metrics=engine.metrics,
        )
    return True


def kill_if_unlock(engine: EngineConn, *, actor: str, reason: str = "", via: str = "api") -> bool:
    """Kill ``engine`` only if it is Unlock at this moment (Linkis' async batch kill).

    One compare-and-set Unlock → ShuttingDown decides: an engine that is Starting, locked, busy or
    already stopping is left alone and False is returned. When the move wins, the kill task goes
    to the engine's agent after commit, as for :func:`request_engine_kill`.
    """
    return _kill(
        engine,
        sources=[NodeStatus.UNLOCK],
        actor=actor,
        reason=reason,
        default_reason="kill of an Unlock engine requested",
        via=via,
        audit_extra={"onlyIfUnlock": True},
    )


__all__ += ["kill_if_unlock"]


# --- Sweep transitions ---------------------------------------------------------------------------------


def fail_stale_engine(
    engine_id: int, *, sources: list[str], stale: Q, reason: str, now: datetime, actor: str = "sweep"
) -> bool:
    """The sweep fails an engine it found stuck (starting too long, not answering): → Failed, killed.

    ``stale`` is part of the compare-and-set, so an engine that moved on meanwhile (became Unlock,
    answered again) is left alone. The kill goes to its agent after commit; its time is kept in
    ``kill_requested_at`` so that a kill that never lands is sent again.
    """
    with transaction.atomic():
        moved = _move(
            engine_id,
            sources=sources,
            target=NodeStatus.FAILED,
            source=HealthSource.SWEEP,
            actor=actor,
            reason=reason,
            extra=stale,
            end_reason=reason,
            kill_requested_at=now,
            kill_requested_by=actor,
        )
        if moved is None:
            return False
        audit(
            actor=actor,
            via="sweep",
            action="fail_engine",
            target_type="engine",
            target=str(moved),
            after={"reason": reason},
        )
        enqueue_after_commit(KILL_TASK, moved.pk, queue=ecm_queue(moved.ecm.instance))
    return True


def cull_idle_engine(
    engine_id: int, *, reason: str, idle_before: datetime, now: datetime, actor: str = "sweep"
) -> bool:
    """``cull_engine``, with the kill's time kept so that a kill that never lands is sent again."""
    with transaction.atomic():
        if not cull_engine(engine_id, reason=reason, idle_before=idle_before, actor=actor):
            return False
        EngineConn.objects.filter(pk=engine_id, kill_requested_at__isnull=True).update(
            kill_requested_at=now, kill_requested_by=actor
        )
    return True


def resend_engine_kill(engine_id: int, *, stuck_before: datetime, now: datetime, actor: str = "sweep") -> str | None:
    """A terminal engine whose end is still not recorded: its kill (sent before ``stuck_before``) is sent again.

    The agent's kill escalates to SIGKILL after its grace, and records the end when the process is
    already gone. An engine that never had a process is ended here. Returns "resent" or "ended", or
    None when the engine ended or was handled by another sweep meanwhile (the kill time is the
    compare-and-set, so concurrent sweeps send it once).
    """
    stuck = Q(kill_requested_at__lt=stuck_before) | Q(kill_requested_at__isnull=True, modified__lt=stuck_before)
    with transaction.atomic():
        engine = (
            EngineConn.objects.select_related("ecm")
            .filter(stuck, pk=engine_id, ended_at__isnull=True, status__in=[s.value for s in TERMINAL_STATUSES])
            .first()
        )
        if engine is None:
            return None
        if engine.pid is None:
            reason = "ended by the sweep: its kill was pending and it never had a process"
            return "ended" if record_engine_end(engine_id, exit_code=None, reason=reason, actor=actor) else None
        claimed = EngineConn.objects.filter(stuck, pk=engine_id, ended_at__isnull=True).update(
            kill_requested_at=now, modified=now
        )
        if claimed != 1:
            return None
        audit(actor=actor, via="sweep", action="resend_kill", target_type="engine", target=str(engine))
        enqueue_after_commit(KILL_TASK, engine_id, queue=ecm_queue(engine.ecm.instance))
    return "resent"


def release_engine_of_lost_ecm(engine_id: int, *, reason: str, actor: str = "sweep") -> bool:
    """An engine of a lost ECM: → Failed (a terminal status is kept) and its end recorded, freeing
    its resources. No kill is sent: it would wait on the dead agent's queue; the agent kills the
    process when it comes back (``Agent.reconcile``). Returns False when its ECM has reported again
    (its agent owns the engine again) or the end was recorded already.
    """
    with transaction.atomic():
        engine = EngineConn.objects.filter(pk=engine_id, ended_at__isnull=True).first()
        if engine is None:
            return False
        # Locked so that this orders against the agent's registration or heartbeat, which clear lost_at.
        if (
            EngineConnManager.objects.select_for_update().filter(pk=engine.ecm_id, lost_at__isnull=False).first()
            is None
        ):
            return False
        fail_engine(engine_id, reason=reason, actor=actor, source=HealthSource.SWEEP, kill=False)
        if not record_engine_end(engine_id, exit_code=None, reason=reason, actor=actor):
            return False
        audit(
            actor=actor,
            via="sweep",
            action="release_engine",
            target_type="engine",
            target=str(engine),
            after={"reason": reason},
        )
    return True

"""Engine rules of the health sweep (run by ``linkismanager.sweeps.run_health_sweep``).

Each rule takes the run's "now" (database clock), a batch size and the run's counts; it selects
the oldest stale engines through an index that holds only live engines, and changes each through
a service whose compare-and-set checks again that it is still stale. Engines of a lost ECM are
left to the first rule: their agent is gone, so no kill is sent to its queue.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from engines.models import EngineConn
from engines.services import (
    cull_idle_engine,
    fail_stale_engine,
    release_engine_of_lost_ecm,
    resend_engine_kill,
)
from linkismanager.choices import TERMINAL_STATUSES, NodeStatus
from linkismanager.models import EngineConnManager
from linkismanager.sweeps import apply_each

__all__ = [
    "cull_idle_engines",
    "fail_engines_stuck_starting",
    "fail_unresponsive_engines",
    "release_engines_of_lost_ecms",
    "resend_stuck_kills",
]

# Statuses the runtime reports while it is up.
_RUNNING = [NodeStatus.UNLOCK.value, NodeStatus.LOCKED.value, NodeStatus.IDLE.value, NodeStatus.BUSY.value]
_TERMINAL = [status.value for status in TERMINAL_STATUSES]


def release_engines_of_lost_ecms(now: datetime, batch: int, counts: Counter) -> None:
    """Every live engine of a lost ECM (ShuttingDown ones too) is failed and ended: its resources are
    free. The agent kills the processes when it comes back."""
    # Index ecm_lost: the lost ECMs (few: hosts), then engine_live_by_ecm for their live engines, so
    # the cost follows the engines to release rather than all live engines.
    lost = {
        pk: (instance, last_heartbeat)
        for pk, instance, last_heartbeat in EngineConnManager.objects.filter(lost_at__isnull=False).values_list(
            "pk", "instance", "last_heartbeat"
        )
    }
    if not lost:
        return
    rows = list(
        EngineConn.objects.live().filter(ecm_id__in=list(lost)).order_by("pk").values_list("pk", "ecm_id")[:batch]
    )

    def release(row: tuple[int, int]) -> bool:
        pk, ecm_id = row
        instance, last_heartbeat = lost[ecm_id]
        late = (now - last_heartbeat).total_seconds() if last_heartbeat else 0
        return release_engine_of_lost_ecm(pk, reason=f"the ECM {instance} was lost (no heartbeat for {late:.0f} s)")

    apply_each("engines_released", rows, release, counts)


def fail_engines_stuck_starting(now: datetime, batch: int, counts: Counter) -> None:
    """Engines still Starting ``ENGINE_START_SWEEP_MARGIN`` past ``ENGINE_START_TIMEOUT`` (counted from
    admission, or from the launch once the process exists) are failed and killed."""
    timeout = settings.ENGINE_START_TIMEOUT + settings.ENGINE_START_SWEEP_MARGIN
    cutoff = now - timedelta(seconds=timeout)
    # Index engine_live_status (status, modified).
    ids = list(
        EngineConn.objects.live()
        .filter(status=NodeStatus.STARTING, modified__lt=cutoff, ecm__lost_at__isnull=True)
        .order_by("modified")
        .values_list("pk", flat=True)[:batch]
    )
    reason = f"still starting after {timeout:g} s"
    apply_each(
        "engines_start_timeout",
        ids,
        lambda pk: fail_stale_engine(
            pk, sources=[NodeStatus.STARTING], stale=Q(modified__lt=cutoff), reason=reason, now=now
        ),
        counts,
    )


def resend_stuck_kills(now: datetime, batch: int, counts: Counter) -> None:
    """Engines in a terminal status whose end is not recorded ``ENGINE_KILL_DEADLINE`` after their kill
    was sent: the kill is sent again (the agent escalates to SIGKILL, or records the end if the
    process is gone), or the end is recorded at once if there never was a process."""
    cutoff = now - timedelta(seconds=settings.ENGINE_KILL_DEADLINE)
    live = EngineConn.objects.live().filter(status__in=_TERMINAL, ecm__lost_at__isnull=True)
    # Index engine_kill_pending; then, for terminal engines whose kill time was never kept,
    # engine_live_status (status, modified).
    pending = list(
        live.filter(kill_requested_at__lt=cutoff).order_by("kill_requested_at").values_list("pk", flat=True)[:batch]
    )
    unknown = list(
        live.filter(kill_requested_at__isnull=True, modified__lt=cutoff)
        .order_by("modified")
        .values_list("pk", flat=True)[:batch]
    )

    def resend(pk: int) -> str | None:
        outcome = resend_engine_kill(pk, stuck_before=cutoff, now=now)
        return {"resent": "kills_resent", "ended": "engines_ended_without_process"}.get(outcome or "")

    apply_each("kills_resent", pending + unknown, resend, counts)


def fail_unresponsive_engines(now: datetime, batch: int, counts: Counter) -> None:
    """Engines whose runtime has not answered their agent for ``ENGINE_UNRESPONSIVE_TIMEOUT`` are
    failed and killed."""
    timeout = settings.ENGINE_UNRESPONSIVE_TIMEOUT
    cutoff = now - timedelta(seconds=timeout)
    # Index engine_unresponsive.
    ids = list(
        EngineConn.objects.live()
        .filter(unresponsive_since__lt=cutoff, status__in=_RUNNING, ecm__lost_at__isnull=True)
        .order_by("unresponsive_since")
        .values_list("pk", flat=True)[:batch]
    )
    reason = f"its runtime has not answered for more than {timeout:g} s"
    apply_each(
        "engines_unresponsive",
        ids,
        lambda pk: fail_stale_engine(
            pk, sources=_RUNNING, stale=Q(unresponsive_since__lt=cutoff), reason=reason, now=now
        ),
        counts,
    )


def cull_idle_engines(now: datetime, batch: int, counts: Counter) -> None:
    """Unlock engines whose last user action is older than ``ENGINE_IDLE_TIMEOUT`` are culled: Success,
    then killed. Locked (Idle) and Busy engines never are; an engine that does not answer is left
    to the unresponsive rule, as its real status is unknown."""
    timeout = settings.ENGINE_IDLE_TIMEOUT
    cutoff = now - timedelta(seconds=timeout)
    # Index engine_unlock_idle.
    ids = list(
        EngineConn.objects.live()
        .filter(
            status=NodeStatus.UNLOCK,
            last_activity__lt=cutoff,
            unresponsive_since__isnull=True,
            ecm__lost_at__isnull=True,
        )
        .order_by("last_activity")
        .values_list("pk", flat=True)[:batch]
    )
    reason = f"idle: no user action for more than {timeout:g} s"
    apply_each(
        "engines_culled", ids, lambda pk: cull_idle_engine(pk, reason=reason, idle_before=cutoff, now=now), counts
    )

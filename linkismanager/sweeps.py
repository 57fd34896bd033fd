"""The periodic sweeps: health (late and lost ECMs; stuck, hung and idle engines) and housekeeping.

Celery beat sends ``linkismanager.tasks.sweep_health`` and ``linkismanager.tasks.housekeeping``;
tests call ``run_health_sweep`` and ``run_housekeeping`` directly. A run reads "now" from the
database once and passes it to every rule. Each rule takes the oldest stale rows first, at most
``SWEEP_BATCH_SIZE`` of them, through indexed queries that only touch stale rows, and changes each
row through a service whose compare-and-set re-checks that the row is still stale, so two runs at
once change every row once. A row that fails is logged and counted, and the run goes on; so does
a rule that fails. Each run logs one line of counts and keeps them in ``SweepRun`` for metrics.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone

from linkismanager.choices import NodeHealthy
from linkismanager.dbtime import db_now
from linkismanager.models import EngineConnManager, HealthRecord, SweepRun
from linkismanager.services import mark_ecm_late, mark_ecm_lost

__all__ = [
    "HEALTH_COUNTS",
    "HOUSEKEEPING_COUNTS",
    "apply_each",
    "exclusive",
    "mark_late_ecms",
    "mark_lost_ecms",
    "prune_ended_engines",
    "prune_health_records",
    "prune_processed_messages",
    "prune_result_files",
    "run_health_sweep",
    "run_housekeeping",
]

logger = logging.getLogger(__name__)

Rule = Callable[[datetime, int, Counter], None]

# What a run reports, always with every key so that metrics see zeros rather than gaps.
HEALTH_COUNTS = (
    "ecms_late",
    "ecms_lost",
    "engines_released",
    "engines_start_timeout",
    "kills_resent",
    "engines_ended_without_process",
    "engines_unresponsive",
    "engines_culled",
    "errors",
)
HOUSEKEEPING_COUNTS = (
    "planner_statistics_refreshed",
    "health_records_deleted",
    "engines_deleted",
    "result_files_deleted",
    "processed_messages_deleted",
    "errors",
)
# A housekeeping delete works in batches of SWEEP_BATCH_SIZE rows, at most this many per run.
MAX_DELETE_BATCHES = 100


def apply_each(key: str, ids: Iterable[Any], action: Callable[[Any], object], counts: Counter) -> None:
    """Run ``action`` on each row; a true result counts one under ``key`` (a string result counts
    under that name instead). A row that raises is logged and counted under ``errors``; the rest go on."""
    for row in ids:
        try:
            outcome = action(row)
        except Exception:
            logger.exception("Sweep rule %s failed on %s", key, row)
            counts["errors"] += 1
            continue
        if isinstance(outcome, str):
            counts[outcome] += 1
        elif outcome:
            counts[key] += 1


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Whether this run may go ahead: a non-blocking PostgreSQL advisory lock held for the block.

    Only an economy: a second run at once would be correct anyway (every change is a
    compare-and-set). Other databases always go ahead; SQLite's IMMEDIATE transactions serialise
    the writers.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = zlib.crc32(f"linkismanager.sweeps.{name}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (acquired,) = cursor.fetchone()
    try:
        yield bool(acquired)
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _run(name: str, rules: list[Rule], keys: Iterable[str], now: datetime | None) -> dict[str, Any]:
    started = time.monotonic()
    now = now or db_now()
    counts: Counter = Counter({key: 0 for key in keys})
    batch = settings.SWEEP_BATCH_SIZE
    for rule in rules:
        try:
            rule(now, batch, counts)
        except Exception:
            logger.exception("Sweep %s: rule %s failed", name, getattr(rule, "__name__", rule))
            counts["errors"] += 1
    duration = round(time.monotonic() - started, 3)
    result: dict[str, Any] = {"sweep": name, "duration_seconds": duration, **counts}
    # One line of key=value pairs, easy to grep and to parse; the dict rides along for handlers
    # that emit structured records.
    logger.info(" ".join(f"{key}={value}" for key, value in result.items()), extra={"sweep": result})
    _record(name, now, duration, dict(counts))
    return result


def _record(name: str, started: datetime, duration: float, counts: dict[str, int]) -> None:
    """Keep the run's figures for metrics; a failure here never fails the sweep."""
    try:
        run, _ = SweepRun.objects.get_or_create(name=name)
        SweepRun.objects.filter(pk=run.pk).update(
            runs=F("runs") + 1,
            last_started=started,
            last_duration=duration,
            last_counts=counts,
            last_errors=counts.get("errors", 0),
            modified=timezone.now(),
        )
    except Exception:
        logger.exception("Recording the %s sweep run failed", name)


def run_health_sweep(now: datetime | None = None) -> dict[str, Any]:
    """One health sweep: every ECM and engine rule, in an order where each sees the last's work."""
    from engines import sweeps as engine_rules

    rules: list[Rule] = [
        mark_late_ecms,
        mark_lost_ecms,
        engine_rules.release_engines_of_lost_ecms,
        engine_rules.fail_engines_stuck_starting,
        engine_rules.resend_stuck_kills,
        engine_rules.fail_unresponsive_engines,
        engine_rules.cull_idle_engines,
    ]
    return _run("health", rules, HEALTH_COUNTS, now)


def run_housekeeping(now: datetime | None = None) -> dict[str, Any]:
    """One housekeeping run: old history and ended engines, result files, processed messages."""
    rules: list[Rule] = [
        prune_health_records,
        prune_ended_engines,
        prune_result_files,
        prune_processed_messages,
        refresh_planner_statistics,
    ]
    return _run("housekeeping", rules, HOUSEKEEPING_COUNTS, now)


def refresh_planner_statistics(now: datetime, batch: int, counts: Counter) -> None:
    """SQLite only: refresh the query planner's statistics (ANALYZE).

    Without them SQLite picks the wide live-status index for the idle and unresponsive rules and
    reads every live Unlock engine (about 100 ms at 100,000 engines) instead of the partial indexes
    made for them (under a millisecond). PostgreSQL keeps its statistics itself (autovacuum).
    """
    from django.db import connection

    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    counts["planner_statistics_refreshed"] += 1


# --- ECM rules ---------------------------------------------------------------------------------------


def mark_late_ecms(now: datetime, batch: int, counts: Counter) -> None:
    """ECMs whose heartbeat is late report StockAvailable, StockUnavailable or UnHealthy by how late.

    Worst first, so an ECM late past several thresholds at once (the sweep was not running) goes
    straight to the worst. Each level selects only ECMs that report something milder, so ECMs that
    already show their level never fill a batch. The next heartbeat puts back what the agent reports.
    """
    healthy = [NodeHealthy.HEALTHY, NodeHealthy.WARN]
    levels = [
        (
            NodeHealthy.UNHEALTHY,
            settings.ECM_LATE_UNHEALTHY_SECONDS,
            [*healthy, NodeHealthy.STOCK_AVAILABLE, NodeHealthy.STOCK_UNAVAILABLE],
        ),
        (
            NodeHealthy.STOCK_UNAVAILABLE,
            settings.ECM_LATE_STOCK_UNAVAILABLE_SECONDS,
            [*healthy, NodeHealthy.STOCK_AVAILABLE],
        ),
        (NodeHealthy.STOCK_AVAILABLE, settings.ECM_LATE_STOCK_AVAILABLE_SECONDS, healthy),
    ]
    for health, seconds, milder in levels:
        late_before = now - timedelta(seconds=seconds)
        # Index ecm_late_candidates (last_heartbeat, where reported_health != UnHealthy).
        ids = list(
            EngineConnManager.objects.filter(last_heartbeat__lt=late_before, reported_health__in=milder)
            .exclude(reported_health=NodeHealthy.UNHEALTHY)
            .order_by("last_heartbeat")
            .values_list("pk", flat=True)[:batch]
        )
        apply_each(
            "ecms_late",
            ids,
            lambda pk, health=health, late_before=late_before: mark_ecm_late(
                pk, health=health, late_before=late_before, now=now
            ),
            counts,
        )


def mark_lost_ecms(now: datetime, batch: int, counts: Counter) -> None:
    """ECMs late past ``ECM_LOST_SECONDS`` are lost; their engines are released by the next rule."""
    lost_before = now - timedelta(seconds=settings.ECM_LOST_SECONDS)
    # Index ecm_not_lost.
    ids = list(
        EngineConnManager.objects.filter(lost_at__isnull=True, last_heartbeat__lt=lost_before)
        .order_by("last_heartbeat")
        .values_list("pk", flat=True)[:batch]
    )
    apply_each("ecms_lost", ids, lambda pk: mark_ecm_lost(pk, lost_before=lost_before, now=now), counts)


# --- Housekeeping ------------------------------------------------------------------------------------


def _delete_in_batches(queryset: QuerySet, batch: int) -> int:
    """Delete what ``queryset`` selects, ``batch`` rows per statement; how many rows of its model went."""
    model = queryset.model
    total = 0
    for _ in range(MAX_DELETE_BATCHES):
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            break
        _, per_model = model.objects.filter(pk__in=ids).delete()
        total += per_model.get(model._meta.label, 0)
        if len(ids) < batch:
            break
    return total


def prune_health_records(now: datetime, batch: int, counts: Counter) -> None:
    """Health records older than ``HEALTH_RECORD_RETENTION_DAYS`` (index on ``created``)."""
    cutoff = now - timedelta(days=settings.HEALTH_RECORD_RETENTION_DAYS)
    counts["health_records_deleted"] += _delete_in_batches(HealthRecord.objects.filter(created__lt=cutoff), batch)


def prune_ended_engines(now: datetime, batch: int, counts: Counter) -> None:
    """Engine rows ended more than ``ENDED_ENGINE_RETENTION_DAYS`` ago, with their labels and health
    records (index engine_ended). Their ``EngineHistory`` (Linkis' ecinfo) stays."""
    from engines.models import EngineConn

    cutoff = now - timedelta(days=settings.ENDED_ENGINE_RETENTION_DAYS)
    counts["engines_deleted"] += _delete_in_batches(EngineConn.objects.filter(ended_at__lt=cutoff), batch)


def _delete_old_files(folder: Path, *, older_than: float, prefix: str = "") -> int:
    """Delete the regular files in ``folder`` (not below it) last changed before ``older_than``."""
    deleted = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if prefix and not entry.name.startswith(prefix):
            continue
        try:
            status = entry.lstat()
            if not entry.is_file() or entry.is_symlink() or status.st_mtime >= older_than:
                continue
            entry.unlink()
            deleted += 1
        except FileNotFoundError:
            continue  # gone meanwhile: read and forgotten by its caller
    return deleted


def prune_result_files(now: datetime, batch: int, counts: Counter) -> None:
    """Celery results of the file backend older than ``result_expires``; Celery prunes only
    database backends itself. Other backends (Redis) expire their keys on their own."""
    backend = settings.CELERY_RESULT_BACKEND
    if not backend.startswith("file://"):
        return
    folder = Path(backend[len("file://") :] or settings.RESULTS_DIR)
    older_than = time.time() - settings.CELERY_RESULT_EXPIRES.total_seconds()
    counts["result_files_deleted"] += _delete_old_files(folder, older_than=older_than, prefix="celery-")


def prune_processed_messages(now: datetime, batch: int, counts: Counter) -> None:
    """Messages the file broker moved to its ``processed`` folder, once as old as ``result_expires``."""
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return
    older_than = time.time() - settings.CELERY_RESULT_EXPIRES.total_seconds()
    counts["processed_messages_deleted"] += _delete_old_files(settings.BROKER_DIR / "processed", older_than=older_than)

"""Manager-side periodic tasks, scheduled by Celery beat (``CELERY_BEAT_SCHEDULE``) on the manager queue.

Each takes no arguments, skips when another run holds its lock, and calls the sweep; the sweep
logs its counts and keeps them for metrics.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.utils.log import get_task_logger

from linkismanager.sweeps import exclusive, run_health_sweep, run_housekeeping

__all__ = ["housekeeping", "sweep_health"]

logger = get_task_logger(__name__)


@shared_task(name="linkismanager.tasks.sweep_health", ignore_result=True)
def sweep_health() -> dict[str, Any] | None:
    """Late and lost ECMs; engines stuck starting or stopping, not answering, or idle."""
    with exclusive("health") as acquired:
        if not acquired:
            logger.info("Health sweep skipped: another run is in progress")
            return None
        return run_health_sweep()


@shared_task(name="linkismanager.tasks.housekeeping", ignore_result=True)
def housekeeping() -> dict[str, Any] | None:
    """Old health records and ended engines, Celery result files, the broker's processed messages."""
    with exclusive("housekeeping") as acquired:
        if not acquired:
            logger.info("Housekeeping skipped: another run is in progress")
            return None
        return run_housekeeping()

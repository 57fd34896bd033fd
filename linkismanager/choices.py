"""Named states of Linkis nodes (ECMs and engines) and their groupings, defined once."""

from __future__ import annotations

from django.db import models

__all__ = [
    "AVAILABLE_HEALTH",
    "AVAILABLE_STATUSES",
    "IDLE_STATUSES",
    "LOCKED_STATUSES",
    "TERMINAL_STATUSES",
    "NodeHealthy",
    "NodeStatus",
]


class NodeStatus(models.TextChoices):
    """Linkis NodeStatus, in Linkis' ordinal order (Starting is 0, Success is 8)."""

    STARTING = "Starting"
    UNLOCK = "Unlock"
    LOCKED = "Locked"
    IDLE = "Idle"
    BUSY = "Busy"
    RUNNING = "Running"
    SHUTTING_DOWN = "ShuttingDown"
    FAILED = "Failed"
    SUCCESS = "Success"


class NodeHealthy(models.TextChoices):
    """Linkis NodeHealthy: the health of an ECM or an engine."""

    HEALTHY = "Healthy"
    UNHEALTHY = "UnHealthy"
    WARN = "WARN"
    STOCK_AVAILABLE = "StockAvailable"
    STOCK_UNAVAILABLE = "StockUnavailable"


# Up and able to serve (Running is the ECM's own up state).
AVAILABLE_STATUSES = frozenset(
    {NodeStatus.UNLOCK, NodeStatus.LOCKED, NodeStatus.IDLE, NodeStatus.BUSY, NodeStatus.RUNNING}
)
# Held by a client.
LOCKED_STATUSES = frozenset({NodeStatus.LOCKED, NodeStatus.IDLE, NodeStatus.BUSY})
# Running no task.
IDLE_STATUSES = frozenset({NodeStatus.IDLE, NodeStatus.UNLOCK})
# An engine in one of these never changes status again.
TERMINAL_STATUSES = frozenset({NodeStatus.SHUTTING_DOWN, NodeStatus.FAILED, NodeStatus.SUCCESS})
# Health values that keep a node in placement.
AVAILABLE_HEALTH = frozenset({NodeHealthy.HEALTHY, NodeHealthy.WARN})

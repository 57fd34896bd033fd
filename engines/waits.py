"""Bounded waits of API requests on engine state, read from the database."""

from __future__ import annotations

import time

from django.conf import settings

from engines.models import EngineConn
from linkismanager.choices import NodeStatus

__all__ = ["wait_for_end", "wait_for_start"]


def wait_for_start(engine: EngineConn, timeout: float) -> bool:
    """Wait until the engine leaves Starting (ready, failed or stopped). False on timeout."""
    deadline = time.monotonic() + timeout
    row = EngineConn.objects.filter(pk=engine.pk).values_list("status", "ended_at")
    while True:
        # Two columns by primary key while waiting; the whole row once, at the end.
        status, ended_at = row.get()
        if status != NodeStatus.STARTING or ended_at is not None:
            engine.refresh_from_db()
            return True
        if time.monotonic() >= deadline:
            engine.refresh_from_db()
            return False
        time.sleep(settings.ENGINE_WAIT_POLL_SECONDS)


def wait_for_end(engines: list[EngineConn], timeout: float) -> bool:
    """Wait until every engine's end is recorded. False on timeout."""
    deadline = time.monotonic() + timeout
    pending = {engine.pk for engine in engines}
    while pending:
        pending = set(EngineConn.objects.filter(pk__in=pending, ended_at__isnull=True).values_list("pk", flat=True))
        if not pending:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(settings.ENGINE_WAIT_POLL_SECONDS)
    for engine in engines:
        engine.refresh_from_db()
    return not pending

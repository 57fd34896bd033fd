"""Heartbeats: engine reports ingested per second through ``record_engine_heartbeats``, the service
the agent calls at every heartbeat with the reports of all its engines (one call per ECM of
``ENGINES_PER_HEARTBEAT`` engines here).

Two passes over every engine: the steady state (the runtime reports the status the row already
has: clocks and metrics change) and a pass where every status changes (Unlock → Busy, with its
health record). Each is set against a bare bulk write of the same rows in one transaction
(``executemany`` of one UPDATE, plus the health records in one bulk insert for the second).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from bench.common import Environment, Figure, Results, parse_args
from bench.fleet import populate

NAME = "heartbeats"
SIZES = {
    "tiny": {"ecms": 5, "engines": 50},
    "small": {"ecms": 10, "engines": 1000},
    "large": {"ecms": 100, "engines": 10000},
}


def _metrics(index: int, run: int) -> dict[str, Any]:
    return {"rss": 60_000_000 + index * 4096 + run, "cpuPercent": 0.5, "pid": 100000 + index, "runningTasks": 0}


ENGINES_PER_HEARTBEAT = 100


def ours(engine_ids: list[int], status: str, run: int, base: Any) -> float:
    """Every engine's report through the agent's service, one call per agent heartbeat; seconds."""
    from engines.services import EngineReport, record_engine_heartbeats

    reports = [
        EngineReport(
            engine_id,
            status=status,
            last_activity=base + timedelta(microseconds=index),
            responsive=True,
            metrics=_metrics(index, run),
        )
        for index, engine_id in enumerate(engine_ids)
    ]
    started = time.perf_counter()
    for first in range(0, len(reports), ENGINES_PER_HEARTBEAT):
        record_engine_heartbeats(reports[first : first + ENGINES_PER_HEARTBEAT], actor="bench")
    return time.perf_counter() - started


def bare(engine_ids: list[int], status: str | None, run: int, base: Any) -> float:
    """The same rows written with one executemany in one transaction (and, with ``status``, the
    status and one health record per row inserted in bulk); seconds."""
    from django.db import connection, transaction

    from engines.models import EngineConn
    from linkismanager.models import HealthRecord

    quote = connection.ops.quote_name
    stamp = connection.ops.adapt_datetimefield_value
    now = stamp(base)
    table = quote(EngineConn._meta.db_table)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if status is None:
            cursor.executemany(
                f"UPDATE {table} SET last_heartbeat = %s, last_activity = %s, metrics = %s, "
                "unresponsive_since = NULL, modified = %s WHERE id = %s",
                [
                    (now, stamp(base + timedelta(microseconds=i)), json.dumps(_metrics(i, run)), now, pk)
                    for i, pk in enumerate(engine_ids)
                ],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, last_heartbeat = %s, last_activity = %s, metrics = %s, "
                "unresponsive_since = NULL, modified = %s WHERE id = %s",
                [
                    (status, now, stamp(base + timedelta(microseconds=i)), json.dumps(_metrics(i, run)), now, pk)
                    for i, pk in enumerate(engine_ids)
                ],
            )
            HealthRecord.objects.bulk_create(
                [
                    HealthRecord(
                        node_kind="linkis-cg-engineconn",
                        engine_id=pk,
                        field="status",
                        old="Unlock",
                        new=status,
                        source="heartbeat",
                        actor="bench",
                        reason="runtime report",
                    )
                    for pk in engine_ids
                ],
                batch_size=1000,
            )
    return time.perf_counter() - started


def _figure(name: str, rows: int, our_seconds: float, limit_seconds: float, what: str) -> Figure:
    ours_rate = rows / our_seconds
    limit_rate = rows / limit_seconds
    return Figure(
        name,
        {
            "per_second": round(ours_rate, 1),
            "seconds": round(our_seconds, 6),
            "per_row_ms": round(our_seconds * 1000 / rows, 4),
        },
        {
            "per_second": round(limit_rate, 1),
            "seconds": round(limit_seconds, 6),
            "per_row_ms": round(limit_seconds * 1000 / rows, 4),
        },
        what,
        limit_rate / ours_rate,
        {"rows": rows},
    )


def run(size: str, out: Any) -> None:
    from django.utils import timezone

    from engines.models import EngineConn
    from linkismanager.models import HealthRecord

    p = SIZES[size]
    fleet = populate(
        p["ecms"], p["engines"] // p["ecms"], now=timezone.now(), labels=False, status_of=lambda i: "Unlock"
    )
    ids = fleet.engine_ids
    results = Results(NAME, size, p)

    # Warm the caches (and the service's code paths) on a slice, then measure every row.
    ours(ids[: min(50, len(ids))], "Unlock", 0, timezone.now())
    bare(ids[: min(50, len(ids))], None, 0, timezone.now())
    steady_limit = bare(ids, None, 1, timezone.now())
    steady = ours(ids, "Unlock", 2, timezone.now())
    results.add(
        _figure(
            f"engine heartbeats, status unchanged ({len(ids):,} engines)",
            len(ids),
            steady,
            steady_limit,
            "one executemany UPDATE of the same rows (clocks, metrics) in one transaction",
        )
    )

    records_before = HealthRecord.objects.count()
    changed = ours(ids, "Busy", 3, timezone.now())
    assert EngineConn.objects.filter(pk__in=ids, status="Busy").count() == len(ids)
    assert HealthRecord.objects.count() - records_before == len(ids)
    EngineConn.objects.filter(pk__in=ids).update(status="Unlock")
    changed_limit = bare(ids, "Busy", 4, timezone.now())
    results.add(
        _figure(
            f"engine heartbeats, every status changes ({len(ids):,} engines)",
            len(ids),
            changed,
            changed_limit,
            "one executemany UPDATE with the status + one bulk INSERT of the health records, one transaction",
        )
    )
    results.write(out)


def main() -> None:
    args = parse_args(NAME, __doc__.splitlines()[0])
    with Environment(NAME):
        run(args.size, args.out)


if __name__ == "__main__":
    main()

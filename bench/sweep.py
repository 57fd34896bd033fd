"""Sweep: one health sweep (``run_health_sweep``) over a fleet of which 1% of the engines are stale.

The stale engines are split between three rules: stuck Starting, unresponsive, and idle past the
cull timeout; 1% of the ECMs are late. The limit is the same rows found with the same indexed
conditions and changed in bulk: one UPDATE per rule and their health records in one INSERT, in
one transaction (no per-row compare-and-set, audit entry or kill message). A second sweep, with
nothing stale any more, shows what scanning the fleet costs; the query plans of its SELECTs are
checked for full table scans.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

from bench.common import Environment, Figure, QueryLog, Results, parse_args
from bench.fleet import STATUS_CYCLE, populate

NAME = "sweep"
SIZES = {
    "tiny": {"engines": 1000},
    "small": {"engines": 10000},
    "large": {"engines": 100000},
}
ENGINES_PER_ECM = 100
STALE_FRACTION = 0.01
RULES = ("start_timeout", "unresponsive", "idle")


def _stale_sets(engine_ids: list[int]) -> dict[str, list[int]]:
    """1% of the engines, spread over the fleet, split between the three rules."""
    count = max(3, int(len(engine_ids) * STALE_FRACTION))
    step = len(engine_ids) // count
    chosen = [engine_ids[index * step] for index in range(count)]
    return {rule: chosen[offset :: len(RULES)] for offset, rule in enumerate(RULES)}


def make_stale(stale: dict[str, list[int]], late_ecms: list[int]) -> None:
    """Make the chosen rows stale, and every other clock fresh (setting a large fleet up takes
    longer than an ECM may stay silent)."""
    from django.utils import timezone

    from engines.models import EngineConn
    from linkismanager.models import EngineConnManager

    now = timezone.now()
    old = now - timedelta(hours=1)
    EngineConnManager.objects.update(last_heartbeat=now, reported_health="Healthy")
    EngineConnManager.objects.filter(pk__in=late_ecms).update(last_heartbeat=now - timedelta(seconds=45))
    EngineConn.objects.exclude(status="Starting").update(last_heartbeat=now, last_activity=now)
    chosen = stale["start_timeout"] + stale["unresponsive"] + stale["idle"]
    EngineConn.objects.filter(pk__in=chosen).update(kill_requested_at=None, end_reason="")
    EngineConn.objects.filter(pk__in=stale["start_timeout"]).update(
        status="Starting", instance="", pid=None, ready_at=None, last_activity=None, modified=old
    )
    EngineConn.objects.filter(pk__in=stale["unresponsive"]).update(status="Unlock", unresponsive_since=old)
    EngineConn.objects.filter(pk__in=stale["idle"]).update(status="Unlock", last_activity=old)


def bare(now: Any) -> tuple[float, dict[str, int]]:
    """The limit: the stale rows found with the rules' conditions and changed in bulk; seconds."""
    from django.conf import settings
    from django.db import transaction

    from engines.models import EngineConn
    from linkismanager.models import EngineConnManager, HealthRecord

    batch = settings.SWEEP_BATCH_SIZE
    live = EngineConn.objects.live().filter(ecm__lost_at__isnull=True)
    started = time.perf_counter()
    with transaction.atomic():
        late_cutoff = now - timedelta(seconds=settings.ECM_LATE_STOCK_AVAILABLE_SECONDS)
        ecm_ids = list(
            EngineConnManager.objects.filter(last_heartbeat__lt=late_cutoff, reported_health__in=["Healthy", "WARN"])
            .order_by("last_heartbeat")
            .values_list("pk", flat=True)[:batch]
        )
        start_cutoff = now - timedelta(seconds=settings.ENGINE_START_TIMEOUT + settings.ENGINE_START_SWEEP_MARGIN)
        selected = {
            "start_timeout": live.filter(status="Starting", modified__lt=start_cutoff).order_by("modified"),
            "unresponsive": live.filter(
                unresponsive_since__lt=now - timedelta(seconds=settings.ENGINE_UNRESPONSIVE_TIMEOUT),
                status__in=["Unlock", "Locked", "Idle", "Busy"],
            ).order_by("unresponsive_since"),
            "idle": live.filter(
                status="Unlock",
                last_activity__lt=now - timedelta(seconds=settings.ENGINE_IDLE_TIMEOUT),
                unresponsive_since__isnull=True,
            ).order_by("last_activity"),
        }
        counts = {"ecms_late": len(ecm_ids)}
        records = []
        EngineConnManager.objects.filter(pk__in=ecm_ids).update(reported_health="StockAvailable", modified=now)
        records += [
            HealthRecord(
                node_kind="linkis-cg-engineconnmanager", ecm_id=pk, field="health", old="Healthy", new="StockAvailable"
            )
            for pk in ecm_ids
        ]
        for rule, queryset in selected.items():
            rows = list(queryset.values_list("pk", "status")[:batch])
            target = "Success" if rule == "idle" else "Failed"
            EngineConn.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                status=target, end_reason=rule, kill_requested_at=now, kill_requested_by="sweep", modified=now
            )
            records += [
                HealthRecord(node_kind="linkis-cg-engineconn", engine_id=pk, field="status", old=status, new=target)
                for pk, status in rows
            ]
            counts[rule] = len(rows)
        for record in records:
            record.source, record.actor, record.reason = "sweep", "bench", "limit"
        HealthRecord.objects.bulk_create(records, batch_size=1000)
    return time.perf_counter() - started, counts


def _slowest_queries(statements: list[tuple[str, Any]], count: int = 3) -> list[dict[str, Any]]:
    """The SELECTs among ``statements`` that take longest, run again one by one, with their plans: a
    query that reads the whole fleet to find nothing shows here."""
    from django.db import connection

    timed_queries = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith("SELECT") or " FROM " not in sql.upper():
                continue
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            seconds = time.perf_counter() - started
            if connection.vendor == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                plan = "; ".join(row[-1] for row in cursor.fetchall())
            else:
                cursor.execute(f"EXPLAIN {sql}", params)
                plan = "; ".join(row[0].strip() for row in cursor.fetchall())
            table = re.search(r'FROM "?(\w+)"?', sql)
            timed_queries.append(
                {
                    "ms": round(seconds * 1000, 2),
                    "from": table.group(1) if table else "?",
                    "where": sql[sql.upper().find(" WHERE ") :][:160].strip(),
                    "plan": plan[:300],
                }
            )
    return sorted(timed_queries, key=lambda item: -item["ms"])[:count]


def run(size: str, out: Any) -> None:
    from django.db import connection
    from django.utils import timezone

    from linkismanager.models import EngineConnManager
    from linkismanager.sweeps import run_health_sweep

    p = SIZES[size]
    total = p["engines"]
    ecms = total // ENGINES_PER_ECM
    now = timezone.now()
    # Every engine up (Unlock and in use) except the stale Starting ones.
    fleet = populate(
        ecms,
        ENGINES_PER_ECM,
        now=now,
        labels=False,
        status_of=lambda index: STATUS_CYCLE[index % 9],
    )
    stale = _stale_sets(fleet.engine_ids)
    late_ecms = fleet.ecm_ids[:: max(1, int(1 / STALE_FRACTION))][: max(1, int(ecms * STALE_FRACTION))]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    stale_count = sum(len(ids) for ids in stale.values())
    results = Results(
        NAME,
        size,
        {
            **p,
            "ecms": ecms,
            "stale_engines": stale_count,
            "late_ecms": len(late_ecms),
            **{r: len(stale[r]) for r in RULES},
        },
    )

    # The limit first, on the same rows, then the rows are put back.
    make_stale(stale, late_ecms)
    limit_seconds, limit_counts = bare(timezone.now())
    make_stale(stale, late_ecms)
    from linkismanager.models import HealthRecord

    HealthRecord.objects.filter(actor="bench").delete()

    with QueryLog() as log:
        started = time.perf_counter()
        outcome = run_health_sweep()
        seconds = time.perf_counter() - started
    expected = {
        "engines_start_timeout": len(stale["start_timeout"]),
        "engines_unresponsive": len(stale["unresponsive"]),
        "engines_culled": len(stale["idle"]),
        "ecms_late": len(late_ecms),
    }
    changed = {key: outcome.get(key) for key in expected}
    if changed != expected or outcome.get("errors"):
        raise RuntimeError(f"the sweep changed {changed} (errors {outcome.get('errors')}), expected {expected}")
    if limit_counts != {
        "ecms_late": len(late_ecms),
        "start_timeout": len(stale["start_timeout"]),
        "unresponsive": len(stale["unresponsive"]),
        "idle": len(stale["idle"]),
    }:
        raise RuntimeError(f"the limit changed {limit_counts}")
    changed_rows = stale_count + len(late_ecms)
    results.add(
        Figure(
            f"health sweep, {total:,} engines of which {stale_count:,} stale, {len(late_ecms)} late ECMs",
            {"ms": round(seconds * 1000, 1), "per_row_ms": round(seconds * 1000 / changed_rows, 3)},
            {"ms": round(limit_seconds * 1000, 1), "per_row_ms": round(limit_seconds * 1000 / changed_rows, 3)},
            "the same rows found by the rules' conditions, one bulk UPDATE per rule + bulk INSERT of health records",
            seconds / limit_seconds,
            {
                "queries": len(log),
                "queries_per_changed_row": round(len(log) / changed_rows, 1),
            },
        )
    )

    # Every ECM reports again (the late ones too): the next sweep has nothing to do.
    EngineConnManager.objects.update(last_heartbeat=timezone.now())
    with QueryLog() as log:
        started = time.perf_counter()
        outcome = run_health_sweep()
        seconds = time.perf_counter() - started
    idle_changes = sum(value for key, value in outcome.items() if key not in ("sweep", "duration_seconds"))
    slowest = _slowest_queries(log.statements)
    results.add(
        Figure(
            f"health sweep, {total:,} engines, nothing stale",
            {"ms": round(seconds * 1000, 1)},
            None,
            "none: what finding nothing costs; it must not grow with the fleet",
            None,
            {
                "queries": len(log),
                "changes": idle_changes,
                "slowest_ms": slowest[0]["ms"] if slowest else 0,
                "slowest_queries": slowest,
            },
        )
    )
    results.write(out)


def main() -> None:
    args = parse_args(NAME, __doc__.splitlines()[0])
    with Environment(NAME):
        run(args.size, args.out)


if __name__ == "__main__":
    main()

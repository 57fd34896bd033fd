"""Listing: ``listEMEngines`` and ``listAllEMs`` over a fleet of ECMs and engines.

Each endpoint is called in-process through Django's test client, logged in as an admin: the whole
request (middleware, session, permission, query, serialisation, JSON) is timed. Its limit is the
same rows (and the same resource sums) fetched with bare SQL and written with ``json.dumps``.
The number of SQL queries is counted for the full answer and for an answer of one row: it must
be the same.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from bench.common import (
    API,
    Environment,
    Figure,
    QueryLog,
    Results,
    admin_client,
    api_get,
    parse_args,
    stats,
    time_ratio,
    timed,
)
from bench.fleet import populate

NAME = "listing"
SIZES = {
    "tiny": {"ecms": 3, "engines_per_ecm": 5, "repeats": 5},
    "small": {"ecms": 10, "engines_per_ecm": 100, "repeats": 20},
    "large": {"ecms": 100, "engines_per_ecm": 100, "repeats": 30},
}
WARM_UP = 3


def _tables() -> dict[str, str]:
    from django.db import connection

    from engines.models import EngineConn
    from linkismanager.models import EngineConnManager, Label

    quote = connection.ops.quote_name
    return {
        "ecm": quote(EngineConnManager._meta.db_table),
        "engine": quote(EngineConn._meta.db_table),
        "label": quote(Label._meta.db_table),
        "key": quote("key"),
    }


def _rows(cursor: Any) -> list[dict[str, Any]]:
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def bare_em_engines(instance: str) -> str:
    """The limit of listEMEngines: the ECM, its live engines, their labels and the ECM's sums."""
    from django.db import connection

    t = _tables()
    live = f"SELECT id FROM {t['engine']} WHERE ecm_id = %s AND ended_at IS NULL"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {t['ecm']} WHERE instance = %s", [instance])
        ecm = _rows(cursor)[0]
        cursor.execute(
            f"SELECT * FROM {t['engine']} WHERE ecm_id = %s AND ended_at IS NULL ORDER BY created DESC, id DESC",
            [ecm["id"]],
        )
        engines = _rows(cursor)
        cursor.execute(
            f"SELECT engine_id, {t['key']}, value FROM {t['label']} WHERE engine_id IN ({live})", [ecm["id"]]
        )
        labels: dict[int, list[dict[str, str]]] = defaultdict(list)
        for engine_id, key, value in cursor.fetchall():
            labels[engine_id].append({"labelKey": key, "stringValue": value})
        cursor.execute(
            f"SELECT status = 'Starting', SUM(memory), SUM(cores), SUM(instances) FROM {t['engine']} "
            "WHERE ecm_id = %s AND ended_at IS NULL GROUP BY status = 'Starting'",
            [ecm["id"]],
        )
        sums = cursor.fetchall()
    return json.dumps(
        {"ecm": ecm, "sums": sums, "engines": [{**row, "labels": labels[row["id"]]} for row in engines]}, default=str
    )


def bare_all_ecms() -> str:
    """The limit of listAllEMs: every ECM, its labels, and the sums of live engines per ECM."""
    from django.db import connection

    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {t['ecm']} ORDER BY instance")
        ecms = _rows(cursor)
        cursor.execute(f"SELECT ecm_id, {t['key']}, value FROM {t['label']} WHERE ecm_id IS NOT NULL")
        labels: dict[int, list[dict[str, str]]] = defaultdict(list)
        for ecm_id, key, value in cursor.fetchall():
            labels[ecm_id].append({"labelKey": key, "stringValue": value})
        cursor.execute(
            f"SELECT ecm_id, status = 'Starting', SUM(memory), SUM(cores), SUM(instances) FROM {t['engine']} "
            "WHERE ended_at IS NULL GROUP BY ecm_id, status = 'Starting'"
        )
        sums: dict[int, list[Any]] = defaultdict(list)
        for ecm_id, *figures in cursor.fetchall():
            sums[ecm_id].append(figures)
    return json.dumps([{**row, "labels": labels[row["id"]], "sums": sums[row["id"]]} for row in ecms], default=str)


def _em_body(instance: str) -> dict[str, Any]:
    return {"em": {"serviceInstance": {"applicationName": "linkis-cg-engineconnmanager", "instance": instance}}}


def _post(client: Any, path: str, body: Any) -> bytes:
    response = client.post(f"{API}/{path}", data=json.dumps(body), content_type="application/json")
    if response.status_code != 200 or response.json().get("status") != 0:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")
    return response.content


def _get(client: Any, path: str) -> bytes:
    response = client.get(f"{API}/{path}")
    if response.status_code != 200 or response.json().get("status") != 0:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")
    return response.content


def _queries(call: Any) -> tuple[int, Any]:
    with QueryLog() as log:
        answer = call()
    return len(log), answer


def _measure(call: Any, repeats: int, arguments: list[Any]) -> dict[str, float]:
    for index in range(WARM_UP):
        call(arguments[index % len(arguments)])
    samples: list[float] = []
    for index in range(repeats):
        with timed(samples):
            call(arguments[index % len(arguments)])
    return stats(samples)


def run(size: str, out: Any) -> None:
    from django.db import connection
    from django.utils import timezone

    p = SIZES[size]
    total = p["ecms"] * p["engines_per_ecm"]
    now = timezone.now()
    fleet = populate(p["ecms"], p["engines_per_ecm"], now=now)
    # One more ECM with one engine: the query count of a one-row answer.
    solo = populate(1, 1, now=now, prefix="solo-", status_of=lambda index: "Unlock")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk load
    results = Results(NAME, size, {**p, "engines": total})
    client = admin_client()

    # listEMEngines: one ECM's engines.
    full_queries, content = _queries(lambda: _post(client, "listEMEngines", _em_body(fleet.ecm_instances[0])))
    engines = json.loads(content)["data"]["engines"]
    assert len(engines) == p["engines_per_ecm"], len(engines)
    one_queries, _ = _queries(lambda: _post(client, "listEMEngines", _em_body(solo.ecm_instances[0])))
    ours = _measure(
        lambda instance: _post(client, "listEMEngines", _em_body(instance)), p["repeats"], fleet.ecm_instances
    )
    limit = _measure(bare_em_engines, p["repeats"], fleet.ecm_instances)
    results.add(
        Figure(
            f"listEMEngines ({p['engines_per_ecm']} engines of one ECM, {total:,} in all)",
            ours,
            limit,
            "bare SQL of the same ECM, engines, labels and sums + json.dumps",
            time_ratio(ours, limit),
            {
                "queries": full_queries,
                "queries_one_row": one_queries,
                "queries_constant": full_queries == one_queries,
                "bytes": len(content),
            },
        )
    )

    # listAllEMs: every ECM with its figures.
    full_queries, content = _queries(lambda: _get(client, "listAllEMs"))
    ecms = json.loads(content)["data"]["EMs"]
    assert len(ecms) == p["ecms"] + 1, len(ecms)
    one_queries, _ = _queries(lambda: _get(client, f"listAllEMs?instance={solo.ecm_instances[0]}"))
    ours = _measure(lambda _: _get(client, "listAllEMs"), p["repeats"], [None])
    limit = _measure(lambda _: bare_all_ecms(), p["repeats"], [None])
    results.add(
        Figure(
            f"listAllEMs ({p['ecms'] + 1} ECMs, {total + 1:,} engines)",
            ours,
            limit,
            "bare SQL of the same ECMs, labels and per-ECM sums + json.dumps",
            time_ratio(ours, limit),
            {
                "queries": full_queries,
                "queries_one_row": one_queries,
                "queries_constant": full_queries == one_queries,
                "bytes": len(content),
            },
        )
    )

    # The fixed cost of any request (middleware, session, permission, envelope), for reading the above.
    floor_queries, _ = _queries(lambda: api_get(client, "listAllECMHealthyStatus"))
    floor = _measure(lambda _: api_get(client, "listAllECMHealthyStatus"), p["repeats"], [None])
    results.add(
        Figure(
            "request floor (listAllECMHealthyStatus, no rows)",
            floor,
            None,
            "none: the fixed cost of one authenticated request, for reference",
            None,
            {"queries": floor_queries},
        )
    )
    results.write(out)


def main() -> None:
    args = parse_args(NAME, __doc__.splitlines()[0])
    with Environment(NAME):
        run(args.size, args.out)


if __name__ == "__main__":
    main()

"""Launch: time from ``createEngineConn`` to the engine being Unlock, for ``python-python3`` engines,
one at a time and many at once, through a real ECM agent process.

``createEngineConn`` answers once the engine is Unlock (it waits for it), so the request's time is
the launch time: admission, the task through the broker, the agent's spawn, the runtime's start,
the agent marking it Unlock, and the request seeing it. The limit is the same interpreter started
bare (``python -m engines.runtime``, as the agent starts it) and waited for until it has its port,
the same number at once.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.agentproc import bare_engines, running_agent, start_bare, stop_bare
from bench.common import Environment, Figure, Results, admin_client, api_post, parse_args, stats, time_ratio

NAME = "launch"
SIZES = {
    "tiny": {"single": 1, "parallel": [2]},
    "small": {"single": 3, "parallel": [10]},
    "large": {"single": 5, "parallel": [10, 30]},
}


def create(client: Any, user: str) -> tuple[float, dict[str, Any]]:
    """One createEngineConn; its seconds and the engine it answered (which must be Unlock)."""
    body = {"labels": {"engineType": "python-python3", "userCreator": f"{user}-IDE"}, "timeout": 120000}
    wall = time.time()
    started = time.perf_counter()
    try:
        engine = api_post(client, "createEngineConn", body)["engine"]
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\nECMs: {_ecm_states()}") from None
    seconds = time.perf_counter() - started
    if engine["nodeStatus"] != "Unlock":
        raise RuntimeError(f"engine answered {engine['nodeStatus']}, not Unlock: {engine}")
    engine["_asked_at"], engine["_answered_at"] = wall, wall + seconds
    return seconds, engine


def phases(engine: dict[str, Any]) -> dict[str, float]:
    """Where one launch's time went (ms), from the engine row's clocks: admission (request to the
    row written), to Unlock (the task through the broker, the agent's spawn, the runtime's start,
    the agent seeing its port), to the answer (marking it Unlock, the request seeing it). One
    machine, one clock."""
    from engines.models import EngineConn

    row = EngineConn.objects.get(ticket_id=engine["ticketId"])
    created, ready = row.created.timestamp(), row.ready_at.timestamp()
    return {
        "admission": (created - engine["_asked_at"]) * 1000,
        "to_unlock": (ready - created) * 1000,
        "to_answer": (engine["_answered_at"] - ready) * 1000,
    }


def median_phases(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(sample[key] for sample in samples), 1) for key in samples[0]}


def _ecm_states() -> list[dict[str, Any]]:
    from linkismanager.models import EngineConnManager

    return list(EngineConnManager.objects.values("instance", "status", "reported_health", "pinned_health", "lost_at"))


def kill_all(client: Any, engines: list[dict[str, Any]]) -> None:
    """Stop the engines (the console's stop, which waits for their ends)."""
    if not engines:
        return
    items = [
        {"engineInstance": engine["serviceInstance"]["instance"], "applicationName": "linkis-cg-engineconn"}
        for engine in engines
    ]
    answer = api_post(client, "rm/enginekill", items)
    if not answer.get("ended"):
        raise RuntimeError(f"engines did not end: {answer}")


def parallel_creates(count: int, tag: str) -> tuple[list[float], list[dict[str, Any]]]:
    """``count`` createEngineConn requests at once, each from its own thread and client (each for
    its own user, so no user quota stops them); their seconds and engines."""
    from django.db import connection

    clients = [admin_client() for _ in range(count)]
    outcomes: list[tuple[float, dict[str, Any]] | None] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def request(index: int) -> None:
        try:
            barrier.wait()
            outcomes[index] = create(clients[index], f"{tag}{index}")
        except BaseException as exc:  # reported by the caller, after every thread is done
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engines = [outcome[1] for outcome in outcomes if outcome is not None]
    if errors:
        kill_all(admin_client(), engines)
        raise errors[0]
    return [outcome[0] for outcome in outcomes if outcome is not None], engines


def run(size: str, out: Any, data_dir: Path) -> None:
    p = SIZES[size]
    instance = f"127.0.0.1:{9200 + os.getpid() % 700}"
    results = Results(NAME, size, {**p, "ecm": instance, "engine": "python-python3"})
    bare_root = data_dir / "bare"
    with running_agent(instance):
        client = admin_client()
        # Warm-up, untimed: the first interpreter start reads its files from disk.
        stop_bare(start_bare(bare_root / "warm-up").popen)
        _, engine = create(client, "warmup")
        kill_all(client, [engine])

        ours_samples, limit_samples, where = [], [], []
        for index in range(p["single"]):
            seconds, engine = create(client, f"single{index}")
            ours_samples.append(seconds)
            where.append(phases(engine))
            kill_all(client, [engine])
            bare = start_bare(bare_root / f"single-{index}")
            limit_samples.append(bare.seconds)
            stop_bare(bare.popen)
        ours, limit = stats(ours_samples), stats(limit_samples)
        results.add(
            Figure(
                "createEngineConn → Unlock, one at a time",
                ours,
                limit,
                "the same interpreter started bare, until it has its port",
                time_ratio(ours, limit),
                {"median_phases_ms": median_phases(where)},
            )
        )

        for count in p["parallel"]:
            ours_samples, engines = parallel_creates(count, f"par{count}u")
            where = [phases(engine) for engine in engines]
            try:
                assert len({engine["serviceInstance"]["instance"] for engine in engines}) == count
            finally:
                kill_all(client, engines)
            with bare_engines(bare_root / f"parallel-{count}", count) as bare:
                limit_samples = [engine.seconds for engine in bare]
            ours, limit = stats(ours_samples), stats(limit_samples)
            results.add(
                Figure(
                    f"createEngineConn → Unlock, {count} at once: each request",
                    ours,
                    limit,
                    f"{count} interpreters started bare at once, each until it has its port",
                    time_ratio(ours, limit),
                    {"median_phases_ms": median_phases(where)},
                )
            )
            all_up, limit_all_up = max(ours_samples), max(limit_samples)
            results.add(
                Figure(
                    f"createEngineConn → Unlock, {count} at once: until all are Unlock",
                    {"ms": round(all_up * 1000, 1)},
                    {"ms": round(limit_all_up * 1000, 1)},
                    f"{count} interpreters started bare at once, until all have their ports",
                    all_up / limit_all_up,
                )
            )
    results.write(out)


def main() -> None:
    args = parse_args(NAME, __doc__.splitlines()[0])
    with Environment(NAME) as environment:
        run(args.size, args.out, environment.data_dir)


if __name__ == "__main__":
    main()

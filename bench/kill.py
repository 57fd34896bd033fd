"""Kill: time from ``killEngineConn`` to the engine's process gone and its resources free, through a
real ECM agent process.

``killEngineConn`` moves the engine to ShuttingDown, sends the kill to its agent and waits for the
end to be recorded (which frees its resources: they are derived from live engines). The clock
stops once the answer is in, the pid no longer runs and the engine no longer counts on its ECM.
The limit is a bare SIGTERM to the same runtime's process group and waiting for it to exit. A
batch is killed at once with ``rm/enginekill`` (the console's stop), against as many bare
SIGTERMs at once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.agentproc import bare_engines, running_agent, start_bare, stop_bare, wait_gone
from bench.common import Environment, Figure, Results, admin_client, api_post, parse_args, stats, time_ratio
from bench.launch import create, kill_all, parallel_creates

NAME = "kill"
SIZES = {
    "tiny": {"single": 2, "parallel": 2},
    "small": {"single": 5, "parallel": 10},
    "large": {"single": 10, "parallel": 10},
}


def _held(ecm_instance: str) -> int:
    """How many engines the ECM's resources count (used and locked instances)."""
    from linkismanager.models import EngineConnManager
    from linkismanager.services import ecm_capacity

    capacity = ecm_capacity(EngineConnManager.objects.get(instance=ecm_instance))
    return capacity.used.instances + capacity.locked.instances


def _wait_free(ecm_instance: str, expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _held(ecm_instance) > expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"ECM {ecm_instance} still holds {_held(ecm_instance)} engines")
        time.sleep(0.001)


def kill_one(client: Any, engine: dict[str, Any], ecm_instance: str) -> float:
    """killEngineConn, then until the pid is gone and the ECM no longer counts it; seconds."""
    held = _held(ecm_instance)
    pid = int(engine["identifier"])
    started = time.perf_counter()
    answer = api_post(
        client,
        "killEngineConn",
        {"applicationName": "linkis-cg-engineconn", "instance": engine["serviceInstance"]["instance"]},
    )
    if not wait_gone(pid):
        raise RuntimeError(f"engine process {pid} still runs")
    _wait_free(ecm_instance, held - 1)
    seconds = time.perf_counter() - started
    if not answer.get("ended"):
        raise RuntimeError(f"killEngineConn did not see the end: {answer}")
    return seconds


def kill_batch(client: Any, engines: list[dict[str, Any]], ecm_instance: str) -> float:
    """rm/enginekill of every engine at once, then until every pid is gone and every engine freed."""
    held = _held(ecm_instance)
    started = time.perf_counter()
    kill_all(client, engines)
    for engine in engines:
        if not wait_gone(int(engine["identifier"])):
            raise RuntimeError(f"engine process {engine['identifier']} still runs")
    _wait_free(ecm_instance, held - len(engines))
    return time.perf_counter() - started


def start_plain(folder: Path) -> subprocess.Popen:
    """A plain interpreter that only sleeps, once it is up."""
    folder.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(3600)"],
        stdout=subprocess.PIPE,
        cwd=folder,
        start_new_session=True,
    )
    popen.stdout.readline()
    popen.stdout.close()
    return popen


def run(size: str, out: Any, data_dir: Path) -> None:
    p = SIZES[size]
    instance = f"127.0.0.1:{9200 + os.getpid() % 700}"
    results = Results(NAME, size, {**p, "ecm": instance, "engine": "python-python3"})
    bare_root = data_dir / "bare"
    with running_agent(instance):
        client = admin_client()
        _, engine = create(client, "warmup")
        kill_one(client, engine, instance)
        stop_bare(start_bare(bare_root / "warm-up").popen)

        ours_samples, limit_samples = [], []
        # The runtime notices a stop on 0.1 s polls, so how long it takes depends on when the
        # signal lands: both sides kill after the same spread of delays, the same for every run.
        delays = [random.Random(index).uniform(0.05, 0.35) for index in range(p["single"])]
        for index, delay in enumerate(delays):
            _, engine = create(client, f"single{index}")
            time.sleep(delay)
            ours_samples.append(kill_one(client, engine, instance))
            bare = start_bare(bare_root / f"single-{index}")
            time.sleep(delay)
            limit_samples.append(stop_bare(bare.popen))
        ours, limit = stats(ours_samples), stats(limit_samples)
        results.add(
            Figure(
                "killEngineConn → pid gone and resources free, one at a time",
                ours,
                limit,
                "a bare SIGTERM to the same runtime (up as long), until it has exited",
                time_ratio(ours, limit),
            )
        )

        plain = [stop_bare(start_plain(bare_root / f"plain-{index}")) for index in range(p["single"])]
        results.add(
            Figure(
                "the runtime's own stop (bare SIGTERM → exit), for reference",
                limit,
                stats(plain),
                "a plain interpreter (sleeping) stopped the same way",
                time_ratio(limit, stats(plain)),
                {"why": "the runtime looks for a stop every 0.02 s and its HTTP server stops on a 0.02 s poll"},
            )
        )

        count = p["parallel"]
        _, engines = parallel_creates(count, "batch")
        try:
            batch_seconds = kill_batch(client, engines, instance)
        except BaseException:
            kill_all(client, engines)
            raise
        with bare_engines(bare_root / "batch", count) as bare:
            started = time.perf_counter()
            for engine in bare:
                os.killpg(engine.popen.pid, signal.SIGTERM)
            for engine in bare:
                stop_bare(engine.popen)  # waits, blocking, for each exit
            limit_seconds = time.perf_counter() - started
        results.add(
            Figure(
                f"rm/enginekill of {count} at once → every pid gone and resources free",
                {"ms": round(batch_seconds * 1000, 1)},
                {"ms": round(limit_seconds * 1000, 1)},
                f"bare SIGTERMs to {count} runtimes at once, until all have exited",
                batch_seconds / limit_seconds,
            )
        )
    results.write(out)


def main() -> None:
    args = parse_args(NAME, __doc__.splitlines()[0])
    with Environment(NAME) as environment:
        run(args.size, args.out, environment.data_dir)


if __name__ == "__main__":
    main()

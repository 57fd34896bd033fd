"""Real processes for the launch and kill benchmarks: an ECM agent (``manage.py run_ecm``) sharing
the benchmark's database and broker, and bare engine runtimes started without the manager.

Everything started here is stopped by its context manager, and waited for.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import BASE_DIR

__all__ = ["BareEngine", "agent_env", "bare_engines", "running_agent", "start_bare", "wait_gone"]

READY_DEADLINE = 60.0
# How often the bare launch looks for the ready file: finer than the agent's own poll, so that the
# limit is the interpreter's start, not the polling.
BARE_POLL_SECONDS = 0.002


def agent_env(**overrides: str) -> dict[str, str]:
    """The environment of an agent that shares this process's database, broker and data folder.

    Production timings (heartbeat every 10 s, the default kill grace and start timeout); only the
    host-overload thresholds are lifted, so that a busy 2-core machine does not stop placement.
    """
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if connection.vendor == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
    else:
        s = connection.settings_dict
        env["DATABASE_URL"] = f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    env.update(
        {
            "DATA_DIR": str(settings.DATA_DIR),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
            "LOG_LEVEL": "INFO",
            "ECM_OVERLOAD_CPU_PERCENT": "1000",
            "ECM_OVERLOAD_MEMORY_PERCENT": "1000",
        }
    )
    env.update(overrides)
    return env


def _kill_engine_processes(instance: str) -> None:
    """Last resort: kill any engine process the agent started and left (checked pid and start time)."""
    import psutil

    from engines.models import EngineConn

    for pid, started in EngineConn.objects.filter(ecm__instance=instance, pid__isnull=False).values_list(
        "pid", "process_started_at"
    ):
        try:
            if abs(psutil.Process(pid).create_time() - (started or 0)) < 0.05:
                os.killpg(pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue


@contextmanager
def running_agent(instance: str, *args: str, **env: str) -> Iterator[subprocess.Popen]:
    """Start ``manage.py run_ecm`` for ``instance``, wait until its worker is ready, and stop it
    (SIGTERM: it stops its engines) afterwards, whatever happens."""
    from django.conf import settings

    log = Path(settings.DATA_DIR) / f"agent-{instance.replace(':', '_')}.log"
    command = [
        sys.executable, "manage.py", "run_ecm", "--instance", instance,
        "--log-root", str(Path(settings.DATA_DIR) / "engines"), *args,
    ]  # fmt: skip
    # A fresh log: "ready." in an earlier agent's log must not count.
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=agent_env(**env), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + READY_DEADLINE
        while "ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"agent {instance} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        yield process
    except BaseException:
        sys.stderr.write(f"-- agent {instance} log (last lines):\n{log.read_text(errors='replace')[-4000:]}\n")
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        _kill_engine_processes(instance)


@dataclass
class BareEngine:
    """An engine runtime started directly, as the agent starts one, without the manager."""

    popen: subprocess.Popen
    port: int
    seconds: float


def _bare_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(BASE_DIR),
        "PYTHONUNBUFFERED": "1",
    }


def start_bare(folder: Path) -> BareEngine:
    """Start ``python -m engines.runtime --kind python`` in ``folder`` and wait for its port (the
    ready file it writes once listening); the time that took."""
    folder.mkdir(parents=True, exist_ok=True)
    ready = folder / "ready.json"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "engines.runtime", "--kind", "python",
        "--ready-file", str(ready), "--workdir", str(folder / "work"),
    ]  # fmt: skip
    started = time.perf_counter()
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=folder,
        env=_bare_env(folder),
        start_new_session=True,
        close_fds=True,
    )
    try:
        popen.stdin.write(f"{secrets.token_hex(24)}\n".encode())
        popen.stdin.close()
        deadline = time.monotonic() + READY_DEADLINE
        while True:
            try:
                port = int(json.loads(ready.read_text())["port"])
                break
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                if popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"bare engine in {folder} did not start (exit {popen.poll()})") from None
                time.sleep(BARE_POLL_SECONDS)
    except BaseException:
        stop_bare(popen)
        raise
    return BareEngine(popen, port, time.perf_counter() - started)


def stop_bare(popen: subprocess.Popen) -> float:
    """SIGTERM the engine's process group and wait until it is gone; the seconds that took."""
    started = time.perf_counter()
    if popen.poll() is None:
        # A blocking wait sees the exit at once (a wait with a timeout polls, up to 50 ms late);
        # the timer makes sure it returns.
        watchdog = threading.Timer(30, _kill_group, args=(popen.pid,))
        watchdog.start()
        try:
            os.killpg(popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            popen.wait()
        finally:
            watchdog.cancel()
    return time.perf_counter() - started


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def bare_engines(folder: Path, count: int) -> Iterator[list[BareEngine]]:
    """Start ``count`` bare engines at once (one thread each), yield them, and stop any still running."""
    engines: list[BareEngine | None] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def start(index: int) -> None:
        try:
            barrier.wait()
            engines[index] = start_bare(folder / f"bare-{index}")
        except BaseException as exc:  # reported below, after every thread is done
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [engine for engine in engines if engine is not None]
    try:
        if errors:
            raise errors[0]
        yield started
    finally:
        for engine in started:
            stop_bare(engine.popen)


def wait_gone(pid: int, timeout: float = 60.0, poll: float = 0.001) -> bool:
    """Wait until process ``pid`` no longer runs (gone or a zombie)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(poll)
    return False

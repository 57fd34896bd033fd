"""A real ECM agent process for integration tests, with test-scale settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from engines.models import EngineConn
from linkismanager.models import EngineConnManager

# Generous: a loaded 2-core machine can be slow to start interpreters.
DEADLINE = 60.0


def wait_for(condition: Callable[[], object], *, timeout: float = DEADLINE, what: str = "condition") -> object:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def agent_env(**overrides: str) -> dict[str, str]:
    """The environment of an agent that shares the test's database and broker."""
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
            "ECM_HEARTBEAT_INTERVAL": "0.3",
            "ENGINE_KILL_GRACE": "1",
            "ENGINE_START_TIMEOUT": "30",
            "LOG_LEVEL": "INFO",
            # The suite itself loads this small machine; overload is tested on its own.
            "ECM_OVERLOAD_CPU_PERCENT": "1000",
            "ECM_OVERLOAD_MEMORY_PERCENT": "1000",
        }
    )
    env.update(overrides)
    return env


@dataclass
class RunningAgent:
    instance: str
    process: subprocess.Popen
    log: Path

    @property
    def ecm(self) -> EngineConnManager:
        return EngineConnManager.objects.get(instance=self.instance)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = DEADLINE) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def _kill_engine_processes(instance: str) -> None:
    """Last-resort cleanup: kill any engine process this test's ECM started."""
    for engine in EngineConn.objects.filter(ecm__instance=instance, pid__isnull=False):
        try:
            process = psutil.Process(engine.pid)
            if abs(process.create_time() - (engine.process_started_at or 0)) < 0.05:
                os.killpg(engine.pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue


@pytest.fixture
def start_agent(transactional_db, tmp_path) -> Iterator[Callable[..., RunningAgent]]:
    """Start real agents (``manage.py run_ecm``); every one is stopped, and its engines killed."""
    started: list[RunningAgent] = []

    def start(instance: str = "testhost:9102", *args: str, **env: str) -> RunningAgent:
        log = tmp_path / f"agent-{len(started)}.log"
        command = [
            sys.executable, "manage.py", "run_ecm", "--instance", instance,
            "--memory", "16g", "--cores", "16", "--instances", "12",
            "--reserve-memory", "1g", "--reserve-cores", "1", "--reserve-instances", "1",
            "--log-root", str(tmp_path / "engines"), "--threads", "4", *args,
        ]  # fmt: skip
        with open(log, "ab") as out:
            process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=agent_env(**env), stdout=out, stderr=out)
        agent = RunningAgent(instance, process, log)
        started.append(agent)
        wait_for(
            lambda: process.poll() is not None or "ready." in log.read_text(errors="replace"),
            what=f"agent {instance} to be ready",
        )
        assert process.poll() is None, log.read_text()
        return agent

    yield start
    for agent in started:
        agent.stop()
        _kill_engine_processes(agent.instance)

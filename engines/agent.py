"""The ECM agent: launches, watches and kills the engine processes of one host.

One agent runs per host (``manage.py run_ecm``). It registers its ECM row, consumes the Celery
queue ``ecm.<instance>`` with a thread pool (so engines are children of this long-lived process),
heartbeats host figures and the state of each engine, and writes what it learns through the same
services as the API. The kill handle of an engine is its pid checked against the process start
time recorded at launch; a process is never looked up by port.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.db import connection

from engines.logs import LogQuery, read_log
from engines.models import EngineConn
from engines.services import (
    EngineReport,
    fail_engine,
    mark_engine_started,
    record_engine_end,
    record_engine_heartbeats,
    record_launch,
    request_engine_kill,
)
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.models import EngineConnManager
from linkismanager.resources import LoadInstance, format_size
from linkismanager.services import record_ecm_heartbeat, register_ecm, stop_ecm

__all__ = ["Agent", "AgentError", "current_agent"]

logger = logging.getLogger(__name__)

# A process start time read twice by psutil may differ by rounding; anything further is another
# process that reused the pid.
START_TIME_TOLERANCE = 0.05
READY_POLL_SECONDS = 0.02


class AgentError(Exception):
    """A request the agent refuses or cannot carry out."""


_current: Agent | None = None


def current_agent() -> Agent:
    """The agent of this process; tasks on an ECM queue run only inside one."""
    if _current is None:
        raise AgentError("This worker is not an ECM agent; ECM tasks run only under manage.py run_ecm.")
    return _current


@dataclass
class ManagedEngine:
    """What the agent holds in memory about one engine process it runs or has adopted."""

    engine_id: int
    pid: int
    create_time: float
    secret: str
    popen: subprocess.Popen | None = None
    port: int | None = None
    watcher: threading.Thread | None = None
    memory: int = 0
    cpu_probe: psutil.Process | None = field(default=None, repr=False)


@contextmanager
def _db_thread() -> Iterator[None]:
    """Close this thread's database connection afterwards: agent threads come and go."""
    try:
        yield
    finally:
        connection.close()


class Agent:
    """The state and actions of one ECM agent."""

    def __init__(
        self,
        instance: str,
        *,
        owner: str,
        capacity: LoadInstance,
        reserve: LoadInstance,
        log_root: Path,
        labels: dict[str, str] | None = None,
        heartbeat_interval: float | None = None,
        kill_grace: float | None = None,
    ) -> None:
        self.instance = instance
        self.host = instance.rsplit(":", 1)[0]
        self.owner = owner
        self.capacity = capacity
        self.reserve = reserve
        self.log_root = log_root.resolve()
        self.labels = labels or {}
        self.heartbeat_interval = heartbeat_interval or settings.ECM_HEARTBEAT_INTERVAL
        self.kill_grace = settings.ENGINE_KILL_GRACE if kill_grace is None else kill_grace
        self.ecm: EngineConnManager | None = None
        self._engines: dict[int, ManagedEngine] = {}
        self._engines_lock = threading.Lock()
        self._engine_locks: dict[int, threading.Lock] = {}
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._was_high = False
        self._next_log_prune = 0.0
        self._log_prune_thread: threading.Thread | None = None

    # --- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        """Register, reconcile what survived a restart, and start heartbeating."""
        global _current
        self.log_root.mkdir(parents=True, exist_ok=True)
        previous = EngineConnManager.objects.filter(instance=self.instance).first()
        last_seen = previous.last_heartbeat if previous else None
        self.ecm = register_ecm(
            self.instance, owner=self.owner, capacity=self.capacity, reserve=self.reserve, labels=self.labels
        )
        _current = self
        self.reconcile(since=last_seen)
        self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="ecm-heartbeat", daemon=True)
        self._heartbeat_thread.start()
        logger.info("ECM agent %s registered (log root %s)", self.instance, self.log_root)

    def stop(self) -> None:
        """A graceful stop: stop heartbeating, stop every engine, mark the ECM as shutting down."""
        global _current
        self._stop.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=self.heartbeat_interval + 5)
        live = list(EngineConn.objects.live().filter(ecm=self.ecm).values_list("pk", flat=True))
        for engine_id in live:
            engine = EngineConn.objects.get(pk=engine_id)
            request_engine_kill(engine, actor=self.instance, reason="ECM agent stopped", via="agent", enqueue=False)
        threads = [threading.Thread(target=self._kill_quietly, args=(engine_id,)) for engine_id in live]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=self.kill_grace + 15)
        stop_ecm(self.instance)
        _current = None
        logger.info("ECM agent %s stopped (%d engines stopped)", self.instance, len(live))

    def _kill_quietly(self, engine_id: int) -> None:
        with _db_thread():
            try:
                self.kill(engine_id)
            except Exception:
                logger.exception("Stopping engine %s failed", engine_id)

    # --- processes ----------------------------------------------------------------------------------

    def _engine_lock(self, engine_id: int) -> threading.Lock:
        with self._engines_lock:
            return self._engine_locks.setdefault(engine_id, threading.Lock())

    @staticmethod
    def _verified_process(pid: int | None, create_time: float | None) -> psutil.Process | None:
        """The process ``pid`` if it is still the one started at ``create_time``, else None."""
        if pid is None or create_time is None:
            return None
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - create_time) > START_TIME_TOLERANCE:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def _own_engine(self, engine_id: int) -> EngineConn:
        engine = EngineConn.objects.filter(pk=engine_id).first()
        if engine is None:
            raise AgentError(f"Engine {engine_id} does not exist.")
        if self.ecm is None or engine.ecm_id != self.ecm.pk:
            raise AgentError(f"Engine {engine_id} does not belong to ECM {self.instance}; refusing to touch it.")
        return engine

    def _signal(self, process: psutil.Process, sig: int) -> None:
        """Signal the engine's process group (it leads its own session), so its children go too."""
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            process.send_signal(sig)

    def _scrubbed_env(self, engine: EngineConn, workdir: Path) -> dict[str, str]:
        """The engine's environment: nothing of the manager's (no secret key, database or broker)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "USER": engine.owner,
            # Only so that the interpreter finds the runtime module of this project.
            "PYTHONPATH": str(settings.BASE_DIR),
            "PYTHONUNBUFFERED": "1",
            "LINKIS_ENGINE_TICKET_ID": str(engine.ticket_id),
            "LINKIS_ENGINE_TYPE": engine.engine_type_label,
        }

    def _launch_argv(self, engine: EngineConn) -> list[str]:
        template = settings.ENGINE_LAUNCH_TEMPLATES.get(engine.engine_type)
        if template is None:
            known = ", ".join(sorted(settings.ENGINE_LAUNCH_TEMPLATES))
            raise AgentError(f"Unknown engine type {engine.engine_type!r}; ECM {self.instance} runs: {known}.")
        argv = [
            part.replace("{python}", sys.executable).replace("{version}", engine.engine_version) for part in template
        ]
        if shutil.which(argv[0]) is None:
            raise AgentError(
                f"Command {argv[0]!r} for engine type {engine.engine_type} is not installed on {self.host}."
            )
        return argv

    def _log_dir(self, engine: EngineConn) -> Path:
        path = (self.log_root / engine.log_dir).resolve()
        if not path.is_relative_to(self.log_root):
            raise AgentError(f"Log folder of engine {engine.pk} is outside the log root.")
        return path

    def _user_switch(self, owner: str) -> dict[str, Any]:
        """Popen arguments that run the engine as its owner, where the agent may switch user."""
        if not settings.ECM_SWITCH_USER or os.geteuid() != 0:
            return {}
        import pwd

        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            raise AgentError(f"There is no OS user {owner!r} on {self.host} to run the engine as.") from None
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    # --- launch -------------------------------------------------------------------------------------

    def launch(self, engine_id: int) -> dict[str, Any]:
        """Start the engine's process, wait for its control port, and mark it Unlock.

        Any failure ends as Failed with the reason, and nothing is left running or held.
        """
        engine = self._own_engine(engine_id)
        if engine.status != NodeStatus.STARTING or engine.ended_at is not None or engine.pid is not None:
            logger.info("Not launching engine %s: it is %s", engine_id, engine.status)
            return {"launched": False, "status": engine.status}
        try:
            argv = self._launch_argv(engine)
            log_dir = self._log_dir(engine)
            workdir = log_dir.parent / "work"
            log_dir.mkdir(parents=True, exist_ok=True)
            workdir.mkdir(parents=True, exist_ok=True)
            switch = self._user_switch(engine.owner)
            if switch:
                for path in (log_dir.parent, log_dir, workdir):
                    os.chown(path, switch["user"], switch["group"])
        except (AgentError, OSError) as exc:
            return self._fail_without_process(engine_id, str(exc))

        ready_file = log_dir.parent / "ready.json"
        ready_file.unlink(missing_ok=True)
        argv += [
            "--ready-file", str(ready_file),
            "--workdir", str(workdir),
            "--lock-idle-seconds", str(settings.ENGINE_LOCK_IDLE_SECONDS),
            "--output-limit", str(settings.ENGINE_OUTPUT_LIMIT),
        ]  # fmt: skip
        secret = secrets.token_hex(24)
        with self._engine_lock(engine_id):
            try:
                with open(log_dir / "stdout", "ab") as stdout, open(log_dir / "stderr", "ab") as stderr:
                    popen = subprocess.Popen(
                        argv,
                        stdin=subprocess.PIPE,
                        stdout=stdout,
                        stderr=stderr,
                        cwd=workdir,
                        env=self._scrubbed_env(engine, workdir),
                        start_new_session=True,
                        close_fds=True,
                        **switch,
                    )
            except OSError as exc:
                return self._fail_without_process(engine_id, f"could not start the engine process: {exc}")
            try:
                popen.stdin.write(f"{secret}\n".encode())
                popen.stdin.close()
            except OSError:
                pass  # it died at once; the watcher records why
            create_time = psutil.Process(popen.pid).create_time()
            managed = ManagedEngine(engine_id, popen.pid, create_time, secret, popen=popen, memory=engine.memory)
            record_launch(engine_id, pid=popen.pid, process_started_at=create_time, control_secret=secret)
            with self._engines_lock:
                self._engines[engine_id] = managed
            managed.watcher = threading.Thread(
                target=self._watch_child, args=(managed,), name=f"engine-{engine_id}-watch", daemon=True
            )
            managed.watcher.start()

        port = self._wait_ready(managed, ready_file)
        if port is None:
            if popen.poll() is None:
                reason = f"engine did not open its control port within {settings.ENGINE_START_TIMEOUT:g} s"
                fail_engine(engine_id, reason=reason, actor=self.instance, kill=False)
                self._terminate(managed)
                return {"launched": False, "reason": reason}
            managed.watcher.join(timeout=10)
            return {"launched": False, "reason": f"engine exited during start-up with code {popen.returncode}"}
        managed.port = port
        instance = f"{self.host}:{port}"
        if mark_engine_started(engine_id, instance=instance, actor=self.instance) is None:
            # Killed or failed while starting: whoever decided that expects the process gone.
            self._terminate(managed)
            return {"launched": False, "reason": "stopped during start-up"}
        logger.info("Engine %s is up at %s (pid %s)", engine_id, instance, popen.pid)
        return {"launched": True, "instance": instance, "pid": popen.pid}

    def _wait_ready(self, managed: ManagedEngine, ready_file: Path) -> int | None:
        deadline = time.monotonic() + settings.ENGINE_START_TIMEOUT
        while time.monotonic() < deadline:
            if managed.popen is not None and managed.popen.poll() is not None:
                return None
            try:
                return int(json.loads(ready_file.read_text())["port"])
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                time.sleep(READY_POLL_SECONDS)
        return None

    def _fail_without_process(self, engine_id: int, reason: str) -> dict[str, Any]:
        logger.warning("Engine %s failed to launch: %s", engine_id, reason)
        fail_engine(engine_id, reason=reason, actor=self.instance, kill=False)
        record_engine_end(engine_id, exit_code=None, reason=reason, actor=self.instance)
        return {"launched": False, "reason": reason}

    def _watch_child(self, managed: ManagedEngine) -> None:
        """Record the end the moment a child process exits, with its exit code or signal."""
        assert managed.popen is not None
        code = managed.popen.wait()
        with _db_thread():
            reason = f"exited with code {code}" if code >= 0 else f"killed by signal {signal.Signals(-code).name}"
            try:
                record_engine_end(managed.engine_id, exit_code=code, reason=reason, actor=self.instance)
            except Exception:
                logger.exception("Recording the end of engine %s failed", managed.engine_id)
            with self._engines_lock:
                self._engines.pop(managed.engine_id, None)

    # --- kill -----------------------------------------------------------------------------------------

    def _terminate(self, managed: ManagedEngine) -> None:
        """SIGTERM, the grace period, then SIGKILL; returns once the process is gone."""
        process = self._verified_process(managed.pid, managed.create_time)
        if process is None:
            return
        # Commands an engine runs may lead sessions of their own; collect them before they are
        # orphaned, so that a SIGKILL of the engine does not leave them behind.
        try:
            descendants = process.children(recursive=True)
        except psutil.Error:
            descendants = []
        self._signal(process, signal.SIGTERM)
        if not self._wait_gone(managed, process, self.kill_grace):
            logger.warning("Engine %s ignored SIGTERM for %.1f s; sending SIGKILL", managed.engine_id, self.kill_grace)
            self._signal(process, signal.SIGKILL)
            self._wait_gone(managed, process, 10)
        for child in descendants:
            try:
                child.kill()
            except psutil.Error:
                continue

    @staticmethod
    def _wait_gone(managed: ManagedEngine, process: psutil.Process, seconds: float) -> bool:
        if managed.popen is not None:
            try:
                managed.popen.wait(timeout=seconds)
                return True
            except subprocess.TimeoutExpired:
                return False
        # Not our child: poll. A zombie is gone for our purposes; only its parent can reap it, and
        # where that is a PID 1 that never reaps, waiting for the pid to vanish would never end.
        deadline = time.monotonic() + seconds
        while True:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def kill(self, engine_id: int) -> dict[str, Any]:
        """Stop the engine's process (checked pid only) and record its end."""
        engine = self._own_engine(engine_id)
        if engine.ended_at is not None:
            return {"killed": False, "reason": "already ended"}
        with self._engine_lock(engine_id):
            engine.refresh_from_db()
            with self._engines_lock:
                managed = self._engines.get(engine_id)
        if managed is None:
            if engine.pid is None:
                record_engine_end(engine_id, exit_code=None, reason="stopped before its process started")
                return {"killed": False, "reason": "no process"}
            managed = ManagedEngine(engine_id, engine.pid, engine.process_started_at or 0.0, engine.control_secret)
        self._terminate(managed)
        if managed.watcher is not None:
            managed.watcher.join(timeout=15)
        # A child's watcher records the end with its exit code; an adopted process is ended here.
        record_engine_end(engine_id, exit_code=None, reason="killed", actor=self.instance)
        with self._engines_lock:
            self._engines.pop(engine_id, None)
        return {"killed": True}

    # --- talking to engines ------------------------------------------------------------------------

    def call(
        self, engine_id: int, method: str, path: str, body: dict | None = None, timeout: float | None = None
    ) -> dict:
        """A request to the engine's control port, with its secret."""
        engine = self._own_engine(engine_id)
        if engine.ended_at is not None or engine.is_terminal:
            raise AgentError(f"Engine {engine.instance or engine_id} is {engine.status}.")
        port = engine.instance.rsplit(":", 1)[-1] if engine.instance else None
        if not port:
            raise AgentError(f"Engine {engine_id} is still starting.")
        return self._request(int(port), engine.control_secret, method, path, body, timeout)

    @staticmethod
    def _request(port: int, secret: str, method: str, path: str, body: dict | None, timeout: float | None) -> dict:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=data,
            method=method,
            headers={"X-Engine-Secret": secret, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or settings.ENGINE_CALL_TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return {"httpStatus": exc.code, **json.loads(exc.read())}
            except ValueError:
                return {"httpStatus": exc.code, "error": str(exc)}
        except (OSError, ValueError) as exc:
            raise AgentError(f"Engine on port {port} did not answer: {exc}") from None

    # --- reconciliation and heartbeats -------------------------------------------------------------

    def reconcile(self, since: datetime | None) -> None:
        """After a restart: adopt live processes of live rows, end rows whose process is gone, and
        stop processes whose rows are ended (the host was declared lost while the agent was away).

        Orphans are looked for among every ended row of this ECM whose process started after the
        host booted, not only those ended since ``since`` (the previous heartbeat): an earlier
        restart may have died before it got to them. The pid and start time make each a sure match.
        """
        to_stop: list[tuple[ManagedEngine, str]] = []
        adopted = 0
        for engine in EngineConn.objects.live().filter(ecm=self.ecm):
            process = self._verified_process(engine.pid, engine.process_started_at)
            if engine.pid is None:
                if engine.is_terminal:
                    record_engine_end(engine.pk, exit_code=None, reason="stopped before its process started")
                continue  # still Starting: its launch task is in the queue
            if process is None:
                record_engine_end(engine.pk, exit_code=None, reason="process gone while the ECM agent was down")
                continue
            managed = ManagedEngine(engine.pk, engine.pid, engine.process_started_at, engine.control_secret)
            managed.memory = engine.memory
            if engine.status == NodeStatus.STARTING:
                fail_engine(
                    engine.pk,
                    reason="ECM agent restarted while the engine was starting",
                    actor=self.instance,
                    kill=False,
                )
            if engine.status == NodeStatus.STARTING or engine.is_terminal:
                to_stop.append((managed, "stopped after an ECM agent restart"))
                continue
            with self._engines_lock:
                self._engines[engine.pk] = managed
            adopted += 1
            logger.info("Adopted engine %s (pid %s)", engine.instance, engine.pid)
        ended = (
            EngineConn.objects.filter(
                ecm=self.ecm,
                ended_at__isnull=False,
                pid__isnull=False,
                process_started_at__gte=psutil.boot_time() - 1,
            )
            .values_list("pk", "pid", "process_started_at")
            .iterator()
        )
        orphans = [ManagedEngine(pk, pid, started, "") for pk, pid, started in ended]
        killed = self._kill_orphans([managed for managed, _ in to_stop] + orphans)
        for managed, reason in to_stop:
            record_engine_end(managed.engine_id, exit_code=None, reason=reason, actor=self.instance)
        logger.info(
            "ECM %s reconciled (last heartbeat before the restart: %s): %d engines adopted, %d processes stopped",
            self.instance,
            since.isoformat() if since else "never",
            adopted,
            killed,
        )

    def _kill_orphans(self, orphans: list[ManagedEngine]) -> int:
        """Stop, all at once, processes whose engines are ended or not to be trusted: SIGTERM, the
        grace period, then SIGKILL. Returns how many were still running.

        They are not children of this process (the agent that started them died), so they are
        watched by pid and start time, which also counts a zombie as gone: where the init process
        does not reap orphans, a dead engine stays a zombie forever.
        """
        targets = []
        for managed in orphans:
            process = self._verified_process(managed.pid, managed.create_time)
            if process is None:
                continue
            try:
                descendants = process.children(recursive=True)
            except psutil.Error:
                descendants = []
            logger.warning("Stopping the orphaned process of engine %s (pid %s)", managed.engine_id, managed.pid)
            self._signal(process, signal.SIGTERM)
            targets.append((managed, process, descendants))
        remaining = self._wait_verified_gone([managed for managed, _, _ in targets], self.kill_grace)
        for managed in remaining:
            process = self._verified_process(managed.pid, managed.create_time)
            if process is not None:
                logger.warning("Engine %s ignored SIGTERM; sending SIGKILL", managed.engine_id)
                self._signal(process, signal.SIGKILL)
        self._wait_verified_gone(remaining, 10)
        for _, _, descendants in targets:
            for child in descendants:
                try:
                    child.kill()
                except psutil.Error:
                    continue
        return len(targets)

    def _wait_verified_gone(self, engines: list[ManagedEngine], seconds: float) -> list[ManagedEngine]:
        """Wait up to ``seconds`` for these processes to be gone; the ones still running."""
        deadline = time.monotonic() + seconds
        while True:
            running = [m for m in engines if self._verified_process(m.pid, m.create_time) is not None]
            if not running or time.monotonic() >= deadline:
                return running
            time.sleep(READY_POLL_SECONDS)

    def kill_processes_of_ended_engines(self) -> int:
        """Stop the processes this agent holds whose engines were ended behind its back.

        The sweep declares an ECM lost, fails its engines and frees their resources when the agent
        has not reported for a while; if the agent was only cut off or paused, it finds out here,
        at its next heartbeat, and stops those processes (in a thread, so heartbeats go on).
        Returns how many it is stopping.
        """
        with self._engines_lock:
            held = dict(self._engines)
        if not held:
            return 0
        ended = EngineConn.objects.filter(pk__in=list(held), ended_at__isnull=False).values_list("pk", flat=True)
        stopping = []
        with self._engines_lock:
            for engine_id in ended:
                managed = self._engines.pop(engine_id, None)
                if managed is not None and self._verified_process(managed.pid, managed.create_time) is not None:
                    stopping.append(managed)
        if stopping:
            threading.Thread(target=self._kill_orphans, args=(stopping,), name="ecm-stop-ended", daemon=True).start()
        return len(stopping)

    def prune_logs(self, now: float | None = None) -> int:
        """Delete the folders (logs and work folder) of engines that are not live and wrote nothing
        for ``ENGINE_LOG_RETENTION_DAYS``. Returns how many engine folders it removed.

        Folders are ``<user>/<yyyyMMdd>/<engineType>/<ticketId>`` under the log root; only date
        folders older than the retention are looked into, so the cost follows what is old. A folder
        that is not named like that is left alone, and links are never followed.
        """
        now = time.time() if now is None else now
        cutoff = now - settings.ENGINE_LOG_RETENTION_DAYS * 86400
        cutoff_day = datetime.fromtimestamp(cutoff, tz=UTC).strftime("%Y%m%d")
        candidates: dict[str, Path] = {}
        for user_dir in self._subfolders(self.log_root):
            for day_dir in self._subfolders(user_dir):
                if not (len(day_dir.name) == 8 and day_dir.name.isdigit() and day_dir.name <= cutoff_day):
                    continue
                for type_dir in self._subfolders(day_dir):
                    for ticket_dir in self._subfolders(type_dir):
                        try:
                            candidates[str(uuid.UUID(ticket_dir.name))] = ticket_dir
                        except ValueError:
                            continue
        if not candidates:
            return 0
        live = set()
        tickets = list(candidates)
        for start in range(0, len(tickets), 500):
            chunk = tickets[start : start + 500]
            live.update(
                str(t)
                for t in EngineConn.objects.live().filter(ticket_id__in=chunk).values_list("ticket_id", flat=True)
            )
        removed = 0
        for ticket, folder in candidates.items():
            if ticket in live or self._newest_mtime(folder) >= cutoff:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            # Drop the engine type, day and user folders once they are empty.
            for parent in (folder.parent, folder.parent.parent, folder.parent.parent.parent):
                try:
                    parent.rmdir()
                except OSError:
                    break
        if removed:
            logger.info(
                "Removed the log folders of %d engines older than %d days", removed, settings.ENGINE_LOG_RETENTION_DAYS
            )
        return removed

    @staticmethod
    def _subfolders(path: Path) -> list[Path]:
        try:
            return [entry for entry in path.iterdir() if entry.is_dir() and not entry.is_symlink()]
        except OSError:
            return []

    @staticmethod
    def _newest_mtime(folder: Path) -> float:
        newest = folder.lstat().st_mtime
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    continue
        return newest

    def after_heartbeat(self) -> None:
        """What rides on the heartbeat loop: stop processes of engines ended behind the agent's
        back, and prune old log folders every ``HOUSEKEEPING_INTERVAL_SECONDS`` (in a thread)."""
        try:
            self.kill_processes_of_ended_engines()
        except Exception:
            logger.exception("Checking for engines ended behind the agent's back failed")
        now = time.monotonic()
        if now < self._next_log_prune or (self._log_prune_thread is not None and self._log_prune_thread.is_alive()):
            return
        self._next_log_prune = now + settings.HOUSEKEEPING_INTERVAL_SECONDS
        self._log_prune_thread = threading.Thread(target=self._prune_logs_quietly, name="ecm-log-prune", daemon=True)
        self._log_prune_thread.start()

    def _prune_logs_quietly(self) -> None:
        with _db_thread():
            try:
                self.prune_logs()
            except Exception:
                logger.exception("Pruning old engine log folders failed")

    def _heartbeat_loop(self) -> None:
        psutil.cpu_percent(None)  # the first reading is meaningless; start the measuring window
        while not self._stop.is_set():
            with _db_thread():
                try:
                    self.heartbeat_once()
                except Exception:
                    logger.exception("ECM heartbeat failed")
                self.after_heartbeat()
            self._stop.wait(self.heartbeat_interval)

    def host_health(self) -> tuple[dict[str, Any], str]:
        """Host figures and the health they imply (StockAvailable when overloaded)."""
        memory = psutil.virtual_memory()
        cpu = psutil.cpu_percent(None)
        metrics = {
            "maxMemory": memory.total,
            "usedMemory": memory.total - memory.available,
            "systemLeftMemory": memory.available,
            "systemCPUUsed": cpu,
        }
        high = memory.percent >= settings.ECM_OVERLOAD_MEMORY_PERCENT or cpu >= settings.ECM_OVERLOAD_CPU_PERCENT
        # Like Linkis, one high reading is a spike; two in a row is overload.
        overloaded = high and self._was_high
        self._was_high = high
        return metrics, NodeHealthy.STOCK_AVAILABLE if overloaded else NodeHealthy.HEALTHY

    def heartbeat_once(self) -> None:
        """Report the host, then every engine this agent runs in one write.

        One query reads the engines' rows, each engine is probed (process, memory, a status call
        over loopback), and the reports are written together; an engine over its memory limit is
        then failed and killed.
        """
        metrics, health = self.host_health()
        record_ecm_heartbeat(self.instance, host_metrics=metrics, reported_health=health)
        with self._engines_lock:
            engines = list(self._engines.values())
        if not engines:
            return
        rows = EngineConn.objects.in_bulk([managed.engine_id for managed in engines])
        reports: list[EngineReport] = []
        over_limit: list[tuple[EngineConn, int]] = []
        for managed in engines:
            engine = rows.get(managed.engine_id)
            try:
                report = self._probe_engine(managed, engine)
            except Exception:
                logger.exception("Probing engine %s failed", managed.engine_id)
                continue
            if report is None or engine is None:
                continue
            reports.append(report)
            rss = report.metrics["rss"] if report.metrics else 0
            if engine.memory and rss > engine.memory * settings.ENGINE_MEMORY_KILL_FACTOR:
                over_limit.append((engine, rss))
        record_engine_heartbeats(reports, actor=self.instance)
        for engine, rss in over_limit:
            factor = settings.ENGINE_MEMORY_KILL_FACTOR
            reason = f"memory use {format_size(rss)} exceeds {factor:g}× the requested {format_size(engine.memory)}"
            if fail_engine(engine.pk, reason=reason, actor=self.instance, kill=False):
                threading.Thread(target=self._kill_quietly, args=(engine.pk,), daemon=True).start()

    def _probe_engine(self, managed: ManagedEngine, engine: EngineConn | None) -> EngineReport | None:
        """What one engine's process and runtime say now, or None when there is nothing to report."""
        process = self._verified_process(managed.pid, managed.create_time)
        if process is None:
            if managed.popen is None:  # adopted: no watcher sees it exit
                record_engine_end(managed.engine_id, exit_code=None, reason="process exited", actor=self.instance)
                with self._engines_lock:
                    self._engines.pop(managed.engine_id, None)
            return None
        if engine is None or engine.ended_at is not None or not engine.instance:
            return None
        rss, cpu = self._measure(managed, process)
        status: str | None = None
        last_activity = None
        responsive = True
        extra: dict[str, Any] = {}
        if not engine.is_terminal:
            try:
                port = int(engine.instance.rsplit(":", 1)[-1])
                answer = self._request(port, engine.control_secret, "GET", "/status", None, None)
                status = answer.get("status")
                if answer.get("lastActivity"):
                    last_activity = datetime.fromtimestamp(answer["lastActivity"] / 1000, tz=UTC)
                extra["runningTasks"] = answer.get("runningTasks", 0)
            except (AgentError, ValueError):
                responsive = False
        return EngineReport(
            managed.engine_id,
            status=status,
            last_activity=last_activity,
            responsive=responsive,
            metrics={"rss": rss, "cpuPercent": cpu, "pid": managed.pid, **extra},
        )

    @staticmethod
    def _measure(managed: ManagedEngine, process: psutil.Process) -> tuple[int, float]:
        """Resident memory and CPU use of the engine and its children."""
        if managed.cpu_probe is None:
            managed.cpu_probe = process
        rss = 0
        cpu = 0.0
        try:
            members = [process, *process.children(recursive=True)]
        except psutil.Error:
            members = [process]
        for member in members:
            try:
                rss += member.memory_info().rss
                cpu += member.cpu_percent(None) if member is managed.cpu_probe else 0.0
            except psutil.Error:
                continue
        return rss, cpu

    # --- logs ------------------------------------------------------------------------------------------

    def read_log(self, log_dir: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of an engine log under this agent's log root (``engines.logs``).

        The query is checked again here, and the path confined to this agent's root, whatever the
        manager sent.
        """
        return read_log(self.log_root, log_dir, LogQuery.from_params(params))


def run_with(agent: Agent, serve: Callable[[], None]) -> None:
    """Start ``agent``, run ``serve`` (the Celery worker) until it returns, then stop the agent."""
    agent.start()
    try:
        serve()
    finally:
        agent.stop()

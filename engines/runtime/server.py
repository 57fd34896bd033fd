"""One engine process: runs user code for the manager, over a JSON protocol on loopback HTTP.

The agent starts ``python -m engines.runtime`` with the engine secret on the first line of stdin.
The runtime binds a free loopback port, writes ``{"port", "pid"}`` to the ready file (atomically,
as the agent polls for it) and answers, for callers that send ``X-Engine-Secret``:

- ``GET /status``: Unlock, Idle (locked) or Busy (running), with the time of the last user action;
- ``POST /execute``: runs Python (one namespace kept across calls) or a bash command, one at a time;
- ``POST /lock`` and ``POST /unlock``: Linkis' engine lock, released by itself after an idle spell.

User code runs on the main thread, fed by the HTTP threads through a queue. Only the main thread
receives signals, so this is what lets SIGALRM stop Python code that overruns its timeout (even
inside ``time.sleep``) and SIGTERM stop whatever is running before the process exits. A call that
is stuck inside C code without returning to the interpreter still cannot be interrupted.

Standard library only: an engine must start fast and carry none of the manager's code or secrets.
"""

from __future__ import annotations

import argparse
import builtins
import codecs
import contextlib
import hmac
import io
import json
import linecache
import math
import os
import queue
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, BinaryIO, Protocol, TextIO
from urllib.parse import urlsplit

__all__ = [
    "KINDS",
    "SECRET_HEADER",
    "STATUS_BUSY",
    "STATUS_IDLE",
    "STATUS_UNLOCK",
    "TRUNCATION_MARKER",
    "CappedOutput",
    "EngineRuntime",
    "EngineState",
    "ExecutionResult",
    "Executor",
    "PythonExecutor",
    "RuntimeConfig",
    "ShellExecutor",
    "main",
    "parse_args",
    "read_secret",
    "write_ready_file",
]

KINDS = ("python", "shell")
SECRET_HEADER = "X-Engine-Secret"

# Linkis' engine node statuses, as the manager reads them.
STATUS_UNLOCK = "Unlock"
STATUS_IDLE = "Idle"
STATUS_BUSY = "Busy"

TRUNCATION_MARKER = "[output truncated]"

# Generous for code, yet a bound on what one request can make the engine hold in memory.
MAX_BODY_BYTES = 32 * 1024 * 1024

# setitimer() rejects very large intervals; a timeout of years means "no timeout" anyway.
_MAX_TIMER_SECONDS = 1e8

_JOB_POLL_SECONDS = 0.02
# How often the HTTP thread checks for shutdown. Both polls bound how long a stop takes, which is
# most of every kill; waking 50 times a second costs an idle engine next to nothing.
_HTTP_POLL_SECONDS = 0.02
_READ_CHUNK = 64 * 1024

JsonObject = dict[str, Any]
Answer = tuple[int, JsonObject]


def _log(message: str) -> None:
    # Straight to the real stderr: while Python code runs, sys.stderr is the user's capture.
    stream = sys.__stderr__
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(message.rstrip("\n") + "\n")
        stream.flush()


def _now() -> tuple[int, float]:
    """The wall clock in epoch milliseconds (reported) and the monotonic clock (for durations)."""
    return time.time_ns() // 1_000_000, time.monotonic()


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


# Configuration


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """The command line, with paths made absolute (the runtime changes directory before using them)."""

    kind: str
    ready_file: str
    workdir: str
    host: str = "127.0.0.1"
    lock_idle_seconds: float = 300.0
    output_limit: int = 1024 * 1024
    exec_timeout: float = 3600.0


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> RuntimeConfig:
    """Read the command line; argparse exits with code 2 on a bad one."""
    parser = argparse.ArgumentParser(
        prog="python -m engines.runtime",
        description="Run one engine. The engine secret is read from the first line of stdin.",
    )
    parser.add_argument("--kind", required=True, choices=KINDS, help="what the engine runs")
    parser.add_argument("--ready-file", required=True, help='where to write {"port", "pid"} once listening')
    parser.add_argument("--workdir", required=True, help="working directory, created if missing")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--lock-idle-seconds",
        type=_positive_number,
        default=300.0,
        help="release a lock after this long without user action (default: %(default)s)",
    )
    parser.add_argument(
        "--output-limit",
        type=_positive_int,
        default=1024 * 1024,
        help="bytes of output kept per execution (default: %(default)s)",
    )
    parser.add_argument(
        "--exec-timeout",
        type=_positive_number,
        default=3600.0,
        help="default timeout of one execution, in seconds (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    return RuntimeConfig(
        kind=args.kind,
        ready_file=os.path.abspath(args.ready_file),
        workdir=os.path.abspath(args.workdir),
        host=args.host,
        lock_idle_seconds=args.lock_idle_seconds,
        output_limit=args.output_limit,
        exec_timeout=args.exec_timeout,
    )


def read_secret(stream: BinaryIO | None) -> str:
    """The first line of ``stream``, without surrounding whitespace ("" when there is none)."""
    if stream is None:
        return ""
    try:
        line = stream.readline()
    except (OSError, ValueError):
        return ""
    return line.decode("utf-8", "replace").strip()


def _detach_stdin() -> None:
    """Close the agent's pipe and put /dev/null on fd 0, for user code and the commands it starts."""
    if sys.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.close()
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)
    sys.stdin = open(os.devnull, encoding="utf-8")


def write_ready_file(path: str, port: int, pid: int) -> None:
    """Write the ready file through a temporary name, so the polling agent never reads half of it."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump({"port": port, "pid": pid}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# Engine state


class EngineState:
    """Lock, running flag and last user action, behind one mutex shared by the HTTP threads.

    The status is derived, never stored: Busy while something runs, else Idle when locked, else
    Unlock. So an execution "returns the engine to what it was before" without remembering it.
    """

    def __init__(self, lock_idle_seconds: float) -> None:
        self._mutex = threading.Lock()
        self._lock_idle_seconds = lock_idle_seconds
        self._lock_token: str | None = None
        self._running = False
        self._activity_ms, self._activity_monotonic = _now()

    def _status(self) -> str:
        if self._running:
            return STATUS_BUSY
        if self._lock_token is not None:
            return STATUS_IDLE
        return STATUS_UNLOCK

    def _touch(self) -> None:
        self._activity_ms, self._activity_monotonic = _now()

    def snapshot(self) -> JsonObject:
        """Status fields of ``GET /status``; reading them is not a user action."""
        with self._mutex:
            return {
                "status": self._status(),
                "lastActivity": self._activity_ms,
                "runningTasks": 1 if self._running else 0,
                "locked": self._lock_token is not None,
            }

    def begin_execution(self) -> bool:
        """Mark the engine Busy; False when something already runs."""
        with self._mutex:
            if self._running:
                return False
            self._running = True
            self._touch()
            return True

    def end_execution(self) -> None:
        """Clear Busy; the idle clock of a lock starts again from here."""
        with self._mutex:
            self._running = False
            self._touch()

    def lock(self) -> tuple[str | None, str]:
        """Take the lock if the engine is Unlock: (new lock string, status) or (None, refusing status)."""
        with self._mutex:
            status = self._status()
            if status != STATUS_UNLOCK:
                return None, status
            self._lock_token = secrets.token_urlsafe(24)
            self._touch()
            return self._lock_token, self._status()

    def unlock(self, token: object) -> bool:
        """Release the lock when ``token`` is the current lock string."""
        with self._mutex:
            current = self._lock_token
            if current is None or not isinstance(token, str):
                return False
            if not hmac.compare_digest(token.encode("utf-8"), current.encode("utf-8")):
                return False
            # Matching lock while Busy: released now, so the run ends in Unlock rather than Idle.
            self._lock_token = None
            self._touch()
            return True

    def release_idle_lock(self) -> bool:
        """Drop a lock unused for the idle spell; not a user action, so lastActivity stays."""
        with self._mutex:
            if self._lock_token is None or self._running:
                # A long run is use of the lock; its end restarts the idle clock.
                return False
            if time.monotonic() - self._activity_monotonic < self._lock_idle_seconds:
                return False
            self._lock_token = None
            return True


# Output capture


class CappedOutput:
    """Bytes written by one execution, kept up to a limit; the rest is counted out, not stored."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self._truncated = False
        self._mutex = threading.Lock()

    @property
    def truncated(self) -> bool:
        return self._truncated

    def add(self, chunk: bytes) -> None:
        with self._mutex:
            room = self._limit - len(self._data)
            if len(chunk) > room:
                self._data += chunk[: max(room, 0)]
                self._truncated = True
            else:
                self._data += chunk

    def text(self) -> str:
        """The kept output as text, ending with a marker line when some was cut."""
        with self._mutex:
            data = bytes(self._data)
            truncated = self._truncated
        # A non-final decode holds back a character split by the cut instead of mangling it.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=not truncated)
        if not truncated:
            return text
        if text and not text.endswith("\n"):
            text += "\n"
        return f"{text}{TRUNCATION_MARKER}\n"


class _StreamProxy(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr for the whole life of a Python engine.

    While code runs, writes go to that execution's capture; in between, to the real stream (the
    engine's log). A stream kept by user code, such as a logging handler set up in one run, so
    keeps capturing in later runs instead of writing into a finished capture.
    """

    def __init__(self, idle_target: TextIO | None) -> None:
        super().__init__()
        self._idle_target = idle_target
        self._capture: CappedOutput | None = None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def capture_into(self, capture: CappedOutput | None) -> None:
        self._capture = capture

    def write(self, text: str) -> int:  # type: ignore[override]
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        capture = self._capture
        if capture is not None:
            capture.add(text.encode("utf-8", "replace"))
        elif self._idle_target is not None:
            self._idle_target.write(text)
        return len(text)

    def flush(self) -> None:
        if self._capture is None and self._idle_target is not None:
            with contextlib.suppress(OSError, ValueError):
                self._idle_target.flush()


# Interruptions


class _ExecutionTimedOut(BaseException):
    """Raised into running Python code by SIGALRM; a BaseException so `except Exception` lets it by."""


class _EngineStopping(BaseException):
    """Raised into a running execution by SIGTERM or SIGINT."""


class _Interrupts:
    """Signal handlers of the main thread.

    Stop signals always set a flag, which the job loop polls. They raise into the code only inside
    an armed section (a running execution), never into the runtime's own bookkeeping. A stop
    signal raises again each time it comes, in case user code swallowed the first; the alarm, a
    one-shot, disarms before raising.
    """

    def __init__(self) -> None:
        self.stop_requested = False
        self._armed = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_stop(self, signum: int, frame: types.FrameType | None) -> None:
        self.stop_requested = True
        if self._armed:
            raise _EngineStopping(signal.Signals(signum).name)

    def _on_alarm(self, signum: int, frame: types.FrameType | None) -> None:
        if self._armed:
            self._armed = False
            raise _ExecutionTimedOut

    @contextlib.contextmanager
    def armed(self, alarm_seconds: float | None = None) -> Iterator[None]:
        """Let stop signals (and, when given, an alarm after ``alarm_seconds``) interrupt the body."""
        self._armed = True
        try:
            if self.stop_requested:
                # The signal came before arming: nothing was raised, so stop here instead.
                self._armed = False
                raise _EngineStopping("stop requested")
            if alarm_seconds is not None:
                signal.setitimer(signal.ITIMER_REAL, min(alarm_seconds, _MAX_TIMER_SECONDS))
            yield
        finally:
            self._armed = False
            if alarm_seconds is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)


# Executors


@dataclass(slots=True)
class ExecutionResult:
    """What one execution answers."""

    ok: bool
    output: str
    error: str | None
    duration_ms: int

    def as_json(self) -> JsonObject:
        return {"ok": self.ok, "output": self.output, "error": self.error, "durationMs": self.duration_ms}


class Executor(Protocol):
    def run(self, code: str, timeout: float) -> ExecutionResult: ...


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the user's first frame on, without the runtime's own."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class PythonExecutor:
    """Runs Python code in one namespace that lasts as long as the engine, like a notebook kernel."""

    def __init__(self, output_limit: int, interrupts: _Interrupts) -> None:
        self._output_limit = output_limit
        self._interrupts = interrupts
        self._runs = 0
        # The user's code is this process' program: making its namespace the __main__ module lets
        # pickle, dataclasses and typing find the classes it defines.
        module = types.ModuleType("__main__", "Namespace of the code run by this engine.")
        module.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = module
        self._namespace = module.__dict__
        self._stdout = _StreamProxy(sys.__stdout__)
        self._stderr = _StreamProxy(sys.__stderr__)
        sys.stdout = self._stdout
        sys.stderr = self._stderr

    def run(self, code: str, timeout: float) -> ExecutionResult:
        started = time.monotonic()
        self._runs += 1
        filename = f"<execution-{self._runs}>"
        capture = CappedOutput(self._output_limit)
        error: str | None = None
        self._stdout.capture_into(capture)
        self._stderr.capture_into(capture)
        try:
            compiled = compile(code, filename, "exec")
            # Kept so tracebacks show source lines, also when a later run calls a function defined here.
            linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
            with self._interrupts.armed(timeout):
                exec(compiled, self._namespace)
        except _ExecutionTimedOut:
            error = f"TimeoutError: execution timed out after {timeout:g} s"
        except _EngineStopping:
            error = "execution interrupted: the engine is stopping"
        except BaseException as exc:  # user code may raise anything, SystemExit included
            error = _user_traceback(exc)
        finally:
            self._stdout.capture_into(None)
            self._stderr.capture_into(None)
            # User code may have replaced the streams; the next run must still be captured.
            sys.stdout = self._stdout
            sys.stderr = self._stderr
        return ExecutionResult(ok=error is None, output=capture.text(), error=error, duration_ms=_elapsed_ms(started))


def _pump(stream: IO[bytes], capture: CappedOutput) -> None:
    """Copy a command's output into the capture until end of file (reading on, past the cap)."""
    fd = stream.fileno()
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(fd, _READ_CHUNK):
            capture.add(chunk)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The command runs in a session of its own, so its pid is its group's id: this reaches the
    # children and background jobs of the command too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class ShellExecutor:
    """Runs each code as ``bash -c`` in the working directory, stdout and stderr merged."""

    def __init__(self, workdir: str, output_limit: int, interrupts: _Interrupts) -> None:
        self._workdir = workdir
        self._output_limit = output_limit
        self._interrupts = interrupts

    def run(self, code: str, timeout: float) -> ExecutionResult:
        started = time.monotonic()
        deadline = started + timeout
        capture = CappedOutput(self._output_limit)
        process = subprocess.Popen(
            ["bash", "-c", code],
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        reader = threading.Thread(target=_pump, args=(process.stdout, capture), name="shell-output", daemon=True)
        reader.start()
        finished = stopping = False
        try:
            with self._interrupts.armed():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=timeout)
                # A background job that inherited the pipe keeps the output open after bash exits;
                # like subprocess.run, the output is complete only at end of file.
                reader.join(max(0.0, deadline - time.monotonic()))
                finished = process.returncode is not None and not reader.is_alive()
        except _EngineStopping:
            stopping = True
        finally:
            if not finished:
                _kill_group(process)
            process.wait()
            # Bounded: a process that left the group (setsid) may still hold the pipe open.
            reader.join(2.0)
            if not reader.is_alive():
                process.stdout.close()
        if stopping:
            error: str | None = "execution interrupted: the engine is stopping; the command was killed"
        elif not finished:
            error = f"execution timed out after {timeout:g} s; the command was killed"
        elif process.returncode != 0:
            error = f"exit code {process.returncode}"
        else:
            error = None
        return ExecutionResult(ok=error is None, output=capture.text(), error=error, duration_ms=_elapsed_ms(started))


# The runtime


@dataclass(slots=True)
class _Job:
    code: str
    timeout: float
    done: threading.Event = field(default_factory=threading.Event)
    result: ExecutionResult | None = None


class EngineRuntime:
    """Serves the protocol: HTTP threads take requests, the main thread runs the code."""

    def __init__(self, config: RuntimeConfig, secret: str, interrupts: _Interrupts) -> None:
        self.config = config
        self.pid = os.getpid()
        self.state = EngineState(config.lock_idle_seconds)
        self._secret = secret.encode("utf-8")
        self._interrupts = interrupts
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._stopped = threading.Event()
        self._runs = 0
        self._executor: Executor
        if config.kind == "python":
            self._executor = PythonExecutor(config.output_limit, interrupts)
        else:
            self._executor = ShellExecutor(config.workdir, config.output_limit, interrupts)

    # Called from the HTTP threads.

    def authorized(self, presented: str | None) -> bool:
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self._secret)

    def release_idle_lock(self) -> None:
        if self.state.release_idle_lock():
            _log(f"lock released after {self.config.lock_idle_seconds:g} s without user action")

    def status(self) -> Answer:
        return 200, {**self.state.snapshot(), "pid": self.pid, "kind": self.config.kind}

    def execute(self, code: str, timeout: float | None) -> Answer:
        if self._interrupts.stop_requested or self._stopped.is_set():
            return 503, {"error": "engine is stopping"}
        if not self.state.begin_execution():
            return 409, {"error": "busy"}
        job = _Job(code=code, timeout=timeout if timeout is not None else self.config.exec_timeout)
        self._jobs.put(job)
        job.done.wait()
        assert job.result is not None
        return 200, job.result.as_json()

    def lock(self) -> Answer:
        token, status = self.state.lock()
        if token is None:
            return 409, {"locked": False, "error": f"engine is {status}"}
        return 200, {"locked": True, "lock": token}

    def unlock(self, token: object) -> Answer:
        if not self.state.unlock(token):
            return 409, {"unlocked": False, "error": "no such lock"}
        return 200, {"unlocked": True}

    # Called from the main thread.

    def serve(self) -> int:
        """Listen, announce the port, run code until a stop signal; the exit code."""
        server = _EngineHTTPServer((self.config.host, 0), self)
        host, port = server.server_address[:2]
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": _HTTP_POLL_SECONDS}, name="engine-http", daemon=True
        ).start()
        threading.Thread(target=self._expire_idle_locks, name="engine-lock-timer", daemon=True).start()
        try:
            write_ready_file(self.config.ready_file, port, self.pid)
            _log(f"engine runtime ({self.config.kind}) listening on {host}:{port}")
            self._run_jobs()
        finally:
            self._stopped.set()
            self._refuse_pending_jobs()
            server.shutdown()
            server.server_close()
        _log(f"engine runtime ({self.config.kind}) stopped")
        return 0

    def _expire_idle_locks(self) -> None:
        interval = min(1.0, self.config.lock_idle_seconds / 4)
        while not self._stopped.wait(interval):
            self.release_idle_lock()

    def _run_jobs(self) -> None:
        # Polled with a timeout: the stop handler only sets a flag (taking a lock inside a signal
        # handler could deadlock the thread it interrupted).
        while not self._interrupts.stop_requested:
            try:
                job = self._jobs.get(timeout=_JOB_POLL_SECONDS)
            except queue.Empty:
                continue
            self._run(job)

    def _run(self, job: _Job) -> None:
        self._runs += 1
        try:
            result = self._executor.run(job.code, job.timeout)
        except Exception as exc:  # a failure of the runtime itself must not take the engine down
            _log(f"execution {self._runs} failed in the runtime:\n{traceback.format_exc()}")
            result = ExecutionResult(
                ok=False, output="", error=f"engine error: {type(exc).__name__}: {exc}", duration_ms=0
            )
        self._echo(result.output)
        self.state.end_execution()
        _log(f"execution {self._runs} finished: ok={result.ok} in {result.duration_ms} ms")
        job.result = result
        job.done.set()

    def _refuse_pending_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job.result = ExecutionResult(ok=False, output="", error="engine is stopping", duration_ms=0)
            self.state.end_execution()
            job.done.set()

    @staticmethod
    def _echo(output: str) -> None:
        # The agent sends stdout to the engine's log file: it shows what each execution printed.
        stream = sys.__stdout__
        if not output or stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            stream.write(output)
            stream.flush()


# HTTP


def _parse_object(body: bytes) -> JsonObject:
    if not body.strip():
        return {}

    def reject_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        data = json.loads(body, parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _timeout_seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("timeout must be a number of seconds")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError("timeout is too large") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError("timeout must be a positive number of seconds")
    return seconds


def _status_route(runtime: EngineRuntime, data: JsonObject) -> Answer:
    return runtime.status()


def _execute_route(runtime: EngineRuntime, data: JsonObject) -> Answer:
    code = data.get("code")
    if not isinstance(code, str):
        return 400, {"error": "code must be a string"}
    try:
        timeout = _timeout_seconds(data.get("timeout"))
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return runtime.execute(code, timeout)


def _lock_route(runtime: EngineRuntime, data: JsonObject) -> Answer:
    return runtime.lock()


def _unlock_route(runtime: EngineRuntime, data: JsonObject) -> Answer:
    return runtime.unlock(data.get("lock"))


_ROUTES: dict[str, tuple[str, Callable[[EngineRuntime, JsonObject], Answer]]] = {
    "/status": ("GET", _status_route),
    "/execute": ("POST", _execute_route),
    "/lock": ("POST", _lock_route),
    "/unlock": ("POST", _unlock_route),
}


class _RequestHandler(BaseHTTPRequestHandler):
    server: _EngineHTTPServer
    server_version = "EngineRuntime/1.0"
    sys_version = ""
    # Only for reading the request and writing the answer; a long execution is waited for in between.
    timeout = 60

    def do_GET(self) -> None:  # noqa: N802 - named by BaseHTTPRequestHandler
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        try:
            status, payload = self._answer()
        except Exception as exc:  # one bad request must never stop the engine
            _log(f"{self.command} {self.path} failed:\n{traceback.format_exc()}")
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self._send_json(status, payload)

    def _answer(self) -> Answer:
        runtime = self.server.runtime
        # Read before answering even a refusal: closing with unread bytes would reset the
        # connection, and the client could lose the answer.
        body, body_error = self._read_body()
        if not runtime.authorized(self.headers.get(SECRET_HEADER)):
            return 403, {"error": "forbidden"}
        runtime.release_idle_lock()
        path = urlsplit(self.path).path
        route = _ROUTES.get(path)
        if route is None:
            return 404, {"error": f"no such path: {path}"}
        method, handler = route
        if self.command != method:
            return 405, {"error": f"{path} takes {method}"}
        if body_error is not None:
            return body_error
        try:
            data = _parse_object(body) if method == "POST" else {}
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return handler(runtime, data)

    def _read_body(self) -> tuple[bytes, Answer | None]:
        header = self.headers.get("Content-Length")
        if not header:
            return b"", None
        try:
            length = int(header)
        except ValueError:
            return b"", (400, {"error": "invalid Content-Length"})
        if length < 0:
            return b"", (400, {"error": "invalid Content-Length"})
        if length > MAX_BODY_BYTES:
            return b"", (413, {"error": f"the body is over {MAX_BODY_BYTES} bytes"})
        return self.rfile.read(length), None

    def _send_json(self, status: int, payload: JsonObject) -> None:
        body = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The client went away; the execution (if any) still happened and is logged.
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The agent and the manager poll /status; logging each poll would drown the log.
        if self.command == "GET" and urlsplit(self.path).path == "/status" and str(code) == "200":
            return
        super().log_request(code, size)

    def log_message(self, format: str, *args: Any) -> None:
        _log(f"{self.address_string()} - {format % args}")


class _EngineHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 overflows when the manager and the agent poll at once
    # while a burst of requests arrives; some systems then reset connections.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], runtime: EngineRuntime) -> None:
        self.runtime = runtime
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall on DNS; the
        # name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log(f"error serving {client_address}:\n{traceback.format_exc()}")


# Entry point


def _user_threads_alive() -> bool:
    main_thread = threading.main_thread()
    return any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the engine until SIGTERM or SIGINT; the process' exit code."""
    config = parse_args(argv)
    interrupts = _Interrupts()
    # Before anything slow, so that a SIGTERM during start-up still ends in a clean exit.
    interrupts.install()
    secret = read_secret(sys.stdin.buffer if sys.stdin is not None else None)
    _detach_stdin()
    if not secret:
        _log("engine runtime: no engine secret on the first line of stdin")
        return 2
    try:
        os.makedirs(config.workdir, exist_ok=True)
        os.chdir(config.workdir)
        if interrupts.stop_requested:
            return 0
        code = EngineRuntime(config, secret, interrupts).serve()
    except Exception:
        _log(f"engine runtime ({config.kind}) failed:\n{traceback.format_exc()}")
        code = 1
    if _user_threads_alive():
        # Threads started by user code would keep the interpreter alive after a SIGTERM, and the
        # agent expects the process to go.
        for stream in (sys.__stdout__, sys.__stderr__):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        os._exit(code)
    return code

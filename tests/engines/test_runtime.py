"""The engine runtime as the agent runs it: a real process, its ready file, its HTTP protocol and signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engines.runtime.server import TRUNCATION_MARKER, CappedOutput

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "engine-secret-for-tests"
READY_DEADLINE = 20.0

# Straight to the engine, even when the environment names an HTTP proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Engine:
    process: subprocess.Popen[bytes]
    port: int
    ready: dict[str, Any]
    workdir: Path
    stdout_path: Path
    stderr_path: Path

    def call(
        self, method: str, path: str, body: object = None, *, secret: str | None = SECRET, raw: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if secret is not None:
            request.add_header("X-Engine-Secret", secret)
        try:
            with _OPENER.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def status(self) -> dict[str, Any]:
        code, payload = self.call("GET", "/status")
        assert code == 200, payload
        return payload

    def execute(self, code: str, **extra: Any) -> dict[str, Any]:
        status, payload = self.call("POST", "/execute", {"code": code, **extra})
        assert status == 200, payload
        return payload

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], deadline: float = 10.0) -> dict[str, Any]:
        give_up = time.monotonic() + deadline
        while True:
            status = self.status()
            if predicate(status) or time.monotonic() > give_up:
                return status
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM, deadline: float = 10.0) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=deadline)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


def _wait_until(condition: Callable[[], bool], deadline: float = 10.0) -> bool:
    give_up = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start runtime processes as the agent does; every one is stopped at teardown, pass or fail."""
    processes: list[subprocess.Popen[bytes]] = []
    opened: list[Any] = []

    def start(*args: str, secret: str = SECRET, name: str = "engine") -> subprocess.Popen[bytes]:
        stdout = open(tmp_path / f"{name}.stdout.log", "wb")
        stderr = open(tmp_path / f"{name}.stderr.log", "wb")
        opened.extend([stdout, stderr])
        process = subprocess.Popen(
            [sys.executable, "-m", "engines.runtime", *args],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
        )
        processes.append(process)
        assert process.stdin is not None
        process.stdin.write(f"{secret}\n".encode())
        process.stdin.close()
        return process

    try:
        yield start
    finally:
        for process in processes:
            _stop(process)
        for handle in opened:
            handle.close()


@pytest.fixture
def start_engine(launch, tmp_path: Path) -> Callable[..., Engine]:
    counter = iter(range(1000))

    def start(kind: str = "python", *extra: str) -> Engine:
        name = f"engine{next(counter)}"
        ready_file = tmp_path / f"{name}.ready.json"
        workdir = tmp_path / f"{name}-work"
        process = launch("--kind", kind, "--ready-file", str(ready_file), "--workdir", str(workdir), *extra, name=name)
        give_up = time.monotonic() + READY_DEADLINE
        while not ready_file.exists():
            stderr = (tmp_path / f"{name}.stderr.log").read_text()
            assert process.poll() is None, f"the runtime exited with {process.returncode}: {stderr}"
            assert time.monotonic() < give_up, f"no ready file after {READY_DEADLINE} s: {stderr}"
            time.sleep(0.02)
        ready = json.loads(ready_file.read_text())
        return Engine(
            process=process,
            port=ready["port"],
            ready=ready,
            workdir=workdir,
            stdout_path=tmp_path / f"{name}.stdout.log",
            stderr_path=tmp_path / f"{name}.stderr.log",
        )

    return start


@pytest.fixture
def python_engine(start_engine) -> Engine:
    return start_engine("python")


@pytest.fixture
def shell_engine(start_engine) -> Engine:
    return start_engine("shell")


# Start-up and authentication


def test_it_writes_the_ready_file_and_answers_on_that_port(python_engine, tmp_path):
    # Given a started engine, then its ready file names its pid and a port where it answers.
    assert python_engine.ready == {"port": python_engine.port, "pid": python_engine.process.pid}
    assert not list(tmp_path.glob("*.tmp"))
    assert python_engine.workdir.is_dir()

    status = python_engine.status()

    assert status["status"] == "Unlock"
    assert status["runningTasks"] == 0
    assert status["locked"] is False
    assert status["kind"] == "python"
    assert status["pid"] == python_engine.process.pid
    assert abs(status["lastActivity"] - time.time() * 1000) < 60_000
    assert "engine runtime (python) listening on 127.0.0.1:" in python_engine.stderr_path.read_text()


@pytest.mark.parametrize("secret", [None, "wrong-secret", ""])
def test_it_refuses_requests_without_the_right_secret_and_runs_nothing(python_engine, secret):
    # Given an engine, when code comes without the right secret
    before = python_engine.status()["lastActivity"]
    code = "open('ran.txt', 'w').write('x')"

    answers = [
        python_engine.call("POST", "/execute", {"code": code}, secret=secret),
        python_engine.call("GET", "/status", secret=secret),
        python_engine.call("POST", "/lock", {}, secret=secret),
        python_engine.call("GET", "/nowhere", secret=secret),
    ]

    # then every request is refused and nothing ran or changed.
    assert answers == [(403, {"error": "forbidden"})] * 4
    assert not (python_engine.workdir / "ran.txt").exists()
    status = python_engine.status()
    assert status["status"] == "Unlock"
    assert status["lastActivity"] == before


def test_an_empty_secret_exits_with_code_2(launch, tmp_path):
    ready_file = tmp_path / "ready.json"
    process = launch(
        "--kind", "shell", "--ready-file", str(ready_file), "--workdir", str(tmp_path / "w"), secret="", name="nosecret"
    )

    assert process.wait(timeout=20) == 2
    assert "secret" in (tmp_path / "nosecret.stderr.log").read_text()
    assert not ready_file.exists()


def test_it_answers_404_for_unknown_paths_and_400_for_bad_json(python_engine):
    assert python_engine.call("GET", "/nowhere")[0] == 404
    assert "error" in python_engine.call("GET", "/nowhere")[1]
    status, payload = python_engine.call("POST", "/execute", raw=b"{not json")
    assert status == 400
    assert "error" in payload
    assert python_engine.call("POST", "/execute", {"code": 42})[0] == 400
    # and the engine still serves.
    assert python_engine.execute("print('still here')")["output"] == "still here\n"


# Python


def test_python_prints_are_captured(python_engine):
    result = python_engine.execute("print(6*7)")

    assert result["ok"] is True
    assert result["output"] == "42\n"
    assert result["error"] is None
    assert isinstance(result["durationMs"], int)


def test_python_keeps_its_namespace_across_executions(python_engine):
    assert python_engine.execute("x = 1\ndef double(n):\n    return 2 * n")["ok"] is True

    result = python_engine.execute("print(x, double(x))")

    assert result == {**result, "ok": True, "output": "1 2\n"}


def test_a_python_exception_answers_its_traceback_and_the_output_before_it(python_engine):
    result = python_engine.execute("print('before')\nimport sys\nprint('warn', file=sys.stderr)\n1 / 0")

    assert result["ok"] is False
    assert result["output"] == "before\nwarn\n"
    assert result["error"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in result["error"]
    assert "server.py" not in result["error"]


def test_a_python_timeout_interrupts_the_code_and_keeps_the_engine(python_engine):
    started = time.monotonic()

    result = python_engine.execute("import time\ny = 5\ntime.sleep(30)", timeout=1)

    assert time.monotonic() - started < 10
    assert result["ok"] is False
    assert "timed out" in result["error"]
    assert python_engine.execute("print(y)")["output"] == "5\n"
    assert python_engine.status()["status"] == "Unlock"


@pytest.mark.parametrize(
    ("kind", "code"),
    [("python", "print('é' * 5000)"), ("shell", "for i in $(seq 5000); do printf 'é'; done; echo")],
)
def test_output_is_capped_with_a_marker(start_engine, kind, code):
    engine = start_engine(kind, "--output-limit", "101")

    result = engine.execute(code)

    # 101 bytes hold 50 two-byte characters: the split one is dropped rather than mangled.
    assert result["ok"] is True
    assert result["output"] == "é" * 50 + f"\n{TRUNCATION_MARKER}\n"


def test_capped_output_keeps_output_under_the_limit_whole():
    capture = CappedOutput(10)
    capture.add(b"hello\n")

    assert capture.text() == "hello\n"
    assert not capture.truncated


# Shell


def test_shell_output_is_captured(shell_engine):
    result = shell_engine.execute("echo hi")

    assert result == {**result, "ok": True, "output": "hi\n", "error": None}


def test_shell_runs_in_the_workdir_with_stderr_merged(shell_engine):
    result = shell_engine.execute("pwd; echo oops >&2")

    assert result["output"] == f"{shell_engine.workdir}\noops\n"


def test_a_shell_non_zero_exit_is_an_error(shell_engine):
    result = shell_engine.execute("echo partial; exit 3")

    assert result["ok"] is False
    assert result["error"] == "exit code 3"
    assert result["output"] == "partial\n"


def test_a_shell_timeout_kills_the_command_and_its_children(shell_engine):
    started = time.monotonic()

    result = shell_engine.execute("sleep 30 & echo $! > child.pid; echo started; wait", timeout=1)

    assert time.monotonic() - started < 10
    assert result["ok"] is False
    assert "timed out" in result["error"]
    assert result["output"] == "started\n"
    child = int((shell_engine.workdir / "child.pid").read_text())
    assert _wait_until(lambda: _process_gone(child))
    assert shell_engine.status()["status"] == "Unlock"


# Busy, activity and the lock


def test_the_engine_is_busy_while_code_runs_and_refuses_a_second_run(python_engine):
    results: list[dict[str, Any]] = []
    runner = threading.Thread(target=lambda: results.append(python_engine.execute("import time; time.sleep(1.5)")))
    runner.start()
    try:
        busy = python_engine.wait_for(lambda status: status["status"] == "Busy")
        assert busy["status"] == "Busy"
        assert busy["runningTasks"] == 1

        assert python_engine.call("POST", "/execute", {"code": "print(1)"}) == (409, {"error": "busy"})
        assert python_engine.call("POST", "/lock", {}) == (409, {"locked": False, "error": "engine is Busy"})
    finally:
        runner.join(timeout=30)

    assert results[0]["ok"] is True
    status = python_engine.status()
    assert status["status"] == "Unlock"
    assert status["runningTasks"] == 0


def test_a_burst_of_concurrent_executions_runs_exactly_one(python_engine):
    # Given many callers at once, when they all ask to run code
    barrier = threading.Barrier(24)
    answers: list[int] = []

    def call() -> None:
        barrier.wait(timeout=10)
        answers.append(python_engine.call("POST", "/execute", {"code": "import time; time.sleep(1)"})[0])

    callers = [threading.Thread(target=call) for _ in range(24)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=30)

    # then each gets an answer (no reset connection), and only one ran.
    assert sorted(answers) == [200] + [409] * 23


def test_status_calls_do_not_move_last_activity_but_executions_do(python_engine):
    first = python_engine.status()["lastActivity"]
    time.sleep(0.05)
    assert python_engine.status()["lastActivity"] == first

    python_engine.execute("pass")

    assert python_engine.status()["lastActivity"] > first


def test_the_lock_makes_the_engine_idle_until_unlocked(python_engine):
    before = python_engine.status()["lastActivity"]
    time.sleep(0.05)

    status, granted = python_engine.call("POST", "/lock", {})

    assert status == 200
    assert granted["locked"] is True
    assert isinstance(granted["lock"], str) and granted["lock"]
    locked = python_engine.status()
    assert locked["status"] == "Idle"
    assert locked["locked"] is True
    assert locked["lastActivity"] > before
    # A second lock is refused while the first holds.
    assert python_engine.call("POST", "/lock", {}) == (409, {"locked": False, "error": "engine is Idle"})
    # A run while locked ends back in Idle.
    python_engine.execute("pass")
    assert python_engine.status()["status"] == "Idle"
    # Only the right lock string unlocks.
    assert python_engine.call("POST", "/unlock", {"lock": "not-the-lock"})[0] == 409
    assert python_engine.status()["status"] == "Idle"

    assert python_engine.call("POST", "/unlock", {"lock": granted["lock"]}) == (200, {"unlocked": True})

    unlocked = python_engine.status()
    assert unlocked["status"] == "Unlock"
    assert unlocked["locked"] is False
    assert python_engine.call("POST", "/unlock", {"lock": granted["lock"]})[0] == 409


def test_an_idle_lock_is_released_by_itself_without_moving_last_activity(start_engine):
    engine = start_engine("python", "--lock-idle-seconds", "1")
    status, granted = engine.call("POST", "/lock", {})
    assert status == 200
    locked_at = engine.status()["lastActivity"]

    # The background timer releases it, with no request coming to trigger the lazy check.
    assert _wait_until(lambda: "lock released" in engine.stderr_path.read_text(), deadline=15)

    released = engine.status()

    assert released["status"] == "Unlock"
    assert released["locked"] is False
    assert released["lastActivity"] == locked_at
    assert engine.call("POST", "/unlock", {"lock": granted["lock"]})[0] == 409


# Stopping and logs


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_exits_cleanly_and_quickly(python_engine, signum):
    started = time.monotonic()

    assert python_engine.stop(signum) == 0

    assert time.monotonic() - started < 5
    assert "engine runtime (python) stopped" in python_engine.stderr_path.read_text()


def test_sigterm_during_a_shell_command_kills_it_and_exits(shell_engine):
    runner = threading.Thread(
        target=lambda: shell_engine.call("POST", "/execute", {"code": "sleep 60 & echo $! > c.pid; wait"})
    )
    runner.daemon = True
    runner.start()
    pid_file = shell_engine.workdir / "c.pid"
    assert _wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    child = int(pid_file.read_text())
    started = time.monotonic()

    assert shell_engine.stop() == 0

    assert time.monotonic() - started < 5
    assert _wait_until(lambda: _process_gone(child))


def test_sigterm_during_python_code_exits(python_engine):
    runner = threading.Thread(
        target=lambda: python_engine.call("POST", "/execute", {"code": "import time; time.sleep(60)"})
    )
    runner.daemon = True
    runner.start()
    python_engine.wait_for(lambda status: status["status"] == "Busy")
    started = time.monotonic()

    assert python_engine.stop() == 0

    assert time.monotonic() - started < 5


def test_the_stdout_log_shows_what_executions_printed(python_engine):
    python_engine.execute("print('visible-in-the-log')")
    python_engine.execute("print('also-on-error'); raise ValueError('boom')")

    assert python_engine.stop() == 0
    log = python_engine.stdout_path.read_text()
    assert "visible-in-the-log\n" in log
    assert "also-on-error\n" in log
    assert "lastActivity" not in log

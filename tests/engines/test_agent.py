"""Integration: a real ECM agent launches, runs, watches and kills real engine processes through
the embedded broker (no eager mode, no mocked subprocess)."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import psutil
import pytest

from engines.models import EngineConn
from engines.remote import EngineUnreachableError, call_engine
from engines.services import EngineRequest, admit_engine, request_engine_kill
from linkismanager.choices import NodeStatus
from linkismanager.models import EngineConnManager
from linkismanager.resources import LoadInstance
from tests.engines.conftest import wait_for
from tests.factories import GIB

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def create(engine_type: str = "python", version: str = "python3", user: str = "alice") -> EngineConn:
    request = EngineRequest(user, "IDE", engine_type, version, LoadInstance(1 * GIB, 1, 1))
    return admit_engine(request, actor=user)


def wait_status(engine: EngineConn, *statuses: str) -> EngineConn:
    def reached():
        engine.refresh_from_db()
        return engine.status in statuses

    wait_for(reached, what=f"engine {engine.pk} to reach {statuses} (now {engine.status}: {engine.end_reason})")
    return engine


def wait_ended(engine: EngineConn) -> EngineConn:
    def ended():
        engine.refresh_from_db()
        return engine.ended_at is not None

    wait_for(ended, what=f"engine {engine.pk} to end")
    return engine


def run(engine: EngineConn, code: str) -> dict:
    engine.refresh_from_db()
    return call_engine(engine, "POST", "/execute", {"code": code})


def pid_alive(engine: EngineConn) -> bool:
    try:
        process = psutil.Process(engine.pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - engine.process_started_at) < 0.05
        )
    except psutil.NoSuchProcess:
        return False


def test_a_python_engine_launches_runs_code_and_is_killed(start_agent):
    agent = start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)

    assert engine.instance.startswith("testhost:")
    assert engine.pid and pid_alive(engine)
    assert run(engine, "print(6*7)")["output"] == "42\n"

    assert request_engine_kill(engine, actor="alice") is True
    wait_ended(engine)
    assert engine.status == NodeStatus.SHUTTING_DOWN
    assert not pid_alive(engine)
    assert EngineConnManager.objects.get(instance=agent.instance).health == "Healthy"


def test_a_shell_engine_runs_bash(start_agent):
    start_agent()
    engine = wait_status(create("shell", "1"), NodeStatus.UNLOCK)
    assert run(engine, "echo hi")["output"] == "hi\n"


def test_the_engine_environment_holds_no_manager_secret(start_agent):
    start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)
    seen = json.loads(run(engine, "import os, json; print(json.dumps(dict(os.environ)))")["output"])
    for name in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DJANGO_SETTINGS_MODULE"):
        assert name not in seen
    assert not any("sqlite" in value or "filesystem" in value for value in seen.values())


def test_the_control_port_refuses_a_caller_without_the_secret(start_agent):
    start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)
    port = engine.instance.rsplit(":", 1)[1]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/execute", data=b'{"code": "print(1)"}', headers={"X-Engine-Secret": "guess"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_an_engine_that_ignores_sigterm_dies_by_sigkill(start_agent):
    start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)
    run(engine, "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('deaf')")

    request_engine_kill(engine, actor="alice")
    wait_ended(engine)
    assert engine.status == NodeStatus.SHUTTING_DOWN
    assert engine.exit_code == -signal.SIGKILL
    assert not pid_alive(engine)


def test_an_engine_that_crashes_is_failed_with_its_exit_code(start_agent):
    start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)
    with pytest.raises(EngineUnreachableError):
        run(engine, "import os; os._exit(3)")
    wait_ended(engine)
    assert engine.status == NodeStatus.FAILED
    assert engine.exit_code == 3
    assert "code 3" in engine.end_reason


def test_an_unknown_engine_type_fails_cleanly(start_agent):
    start_agent()
    engine = wait_ended(create("spark", "2.4.3"))
    assert engine.status == NodeStatus.FAILED
    assert "Unknown engine type 'spark'" in engine.end_reason
    assert engine.pid is None


def test_an_engine_type_whose_command_is_missing_fails_at_launch(start_agent, settings):
    start_agent(ENGINE_EXTRA_TEMPLATES=json.dumps({"hive": ["no-such-hive-cli", "--version"]}))
    engine = wait_ended(create("hive", "3.1"))
    assert engine.status == NodeStatus.FAILED
    assert "'no-such-hive-cli'" in engine.end_reason and "not installed" in engine.end_reason


def test_a_restarted_agent_adopts_its_live_engines(start_agent):
    first = start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)
    run(engine, "x = 41")

    first.stop(signal.SIGKILL)  # a crash: the engine process lives on
    assert pid_alive(engine)
    start_agent()

    engine.refresh_from_db()
    assert engine.status == NodeStatus.UNLOCK and engine.ended_at is None
    assert run(engine, "print(x + 1)")["output"] == "42\n"
    request_engine_kill(engine, actor="alice")
    wait_ended(engine)
    assert not pid_alive(engine)


def test_a_graceful_agent_stop_stops_its_engines(start_agent):
    agent = start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)
    assert agent.stop() == 0
    engine.refresh_from_db()
    assert engine.ended_at is not None
    assert not pid_alive(engine)
    assert EngineConnManager.objects.get(instance=agent.instance).status == NodeStatus.SHUTTING_DOWN


def test_an_engine_over_its_memory_is_killed_with_that_reason(start_agent):
    start_agent()
    # A runtime needs far more than 1 MiB, so the first measurement is over the limit.
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1024 * 1024, 1, 1))
    engine = wait_ended(admit_engine(request, actor="alice"))
    assert engine.status == NodeStatus.FAILED
    assert "memory use" in engine.end_reason and "exceeds" in engine.end_reason
    assert not pid_alive(engine)


def test_heartbeats_report_real_memory_and_status(start_agent):
    agent = start_agent()
    engine = wait_status(create(), NodeStatus.UNLOCK)

    def measured():
        engine.refresh_from_db()
        return engine.metrics.get("rss")

    rss = wait_for(measured, what="a heartbeat with the engine's RSS")
    assert 1024 * 1024 < rss < 1 * GIB
    ecm = EngineConnManager.objects.get(instance=agent.instance)
    assert ecm.host_metrics["maxMemory"] > 0

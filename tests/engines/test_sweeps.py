"""The health sweep's engine rules, and the agent's side of them (orphans, old log folders).

Time is controlled by back-dating rows against the database clock; the sweep is called directly.
Kill tasks are sent after commit: the tests capture those callbacks and run them with the broker
send patched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import psutil
import pytest
from django.db.models import Q

from engines.agent import Agent, ManagedEngine
from engines.models import EngineConn
from engines.services import (
    KILL_TASK,
    EngineRequest,
    admit_engine,
    fail_stale_engine,
    mark_engine_started,
    record_engine_heartbeat,
    record_launch,
    request_engine_kill,
    set_runtime_status,
)
from linkismanager.choices import NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord
from linkismanager.resources import LoadInstance
from linkismanager.services import register_ecm
from linkismanager.sweeps import run_health_sweep
from tests.factories import GIB, make_engine

pytestmark = pytest.mark.django_db

KILL_TO_HOST1 = mock.call(KILL_TASK, args=mock.ANY, queue="ecm.host1_9102")


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.ENGINE_START_TIMEOUT = 60
    settings.ENGINE_START_SWEEP_MARGIN = 60
    settings.ENGINE_KILL_DEADLINE = 120
    settings.ENGINE_UNRESPONSIVE_TIMEOUT = 720
    settings.ENGINE_IDLE_TIMEOUT = 300


@pytest.fixture
def ecm() -> EngineConnManager:
    return register_ecm(
        "host1:9102", owner="hadoop", capacity=LoadInstance(100 * GIB, 100, 50), reserve=LoadInstance(10 * GIB, 2, 2)
    )


@pytest.fixture
def starting(ecm) -> EngineConn:
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))
    return admit_engine(request, actor="alice")


@pytest.fixture
def started(starting) -> EngineConn:
    record_launch(starting.pk, pid=4242, process_started_at=1.0)
    return mark_engine_started(starting.pk, instance="host1:40001")


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run the sweep; what it changed, and the tasks it would have sent once committed."""

    def run() -> tuple[dict, list]:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = run_health_sweep()
        with mock.patch("config.celery.app.send_task") as send_task:
            for callback in callbacks:
                callback()
        return result, send_task.call_args_list

    return run


def back(engine: EngineConn, **seconds_ago: float) -> None:
    """Back-date the engine's clocks (field=seconds ago) on the database clock."""
    now = db_now()
    EngineConn.objects.filter(pk=engine.pk).update(
        **{field: now - timedelta(seconds=seconds) for field, seconds in seconds_ago.items()}
    )


def kills(sent: list, engine: EngineConn) -> int:
    return sum(1 for call in sent if call.kwargs["args"] == [engine.pk])


# --- Stuck in Starting ------------------------------------------------------------------------------


def test_an_engine_stuck_in_starting_past_the_start_timeout_is_failed_and_killed(starting, sweep):
    back(starting, modified=121)

    result, sent = sweep()

    starting.refresh_from_db()
    assert result["engines_start_timeout"] == 1
    assert starting.status == NodeStatus.FAILED
    assert starting.end_reason == "still starting after 120 s"
    assert (starting.kill_requested_by, starting.kill_requested_at is not None) == ("sweep", True)
    assert sent == [mock.call(KILL_TASK, args=[starting.pk], queue="ecm.host1_9102")]
    record = HealthRecord.objects.filter(engine=starting).first()
    assert (record.old, record.new, record.source) == ("Starting", "Failed", "sweep")
    assert AuditEntry.objects.filter(action="fail_engine", via="sweep").exists()


def test_a_starting_engine_within_its_timeout_and_margin_is_left_alone(starting, sweep):
    back(starting, modified=100)

    result, sent = sweep()

    starting.refresh_from_db()
    assert (result["engines_start_timeout"], starting.status, sent) == (0, NodeStatus.STARTING, [])


def test_an_engine_that_came_up_after_the_sweep_looked_is_not_failed(starting):
    # given the sweep has chosen a stuck engine
    back(starting, modified=121)
    cutoff = db_now() - timedelta(seconds=120)
    # when the engine comes up before the sweep acts
    mark_engine_started(starting.pk, instance="host1:40001")

    # then the compare-and-set leaves it alone
    assert not fail_stale_engine(
        starting.pk, sources=[NodeStatus.STARTING], stale=Q(modified__lt=cutoff), reason="stuck", now=db_now()
    )
    starting.refresh_from_db()
    assert starting.status == NodeStatus.UNLOCK


# --- Stuck stopping ------------------------------------------------------------------------------------


def test_a_kill_not_done_by_the_deadline_is_sent_again_once_per_deadline(started, sweep):
    request_engine_kill(started, actor="alice", enqueue=False)
    back(started, kill_requested_at=121)

    result, sent = sweep()
    assert (result["kills_resent"], kills(sent, started)) == (1, 1)
    assert sent == [KILL_TO_HOST1]

    # the next run, soon after, does not pile up another
    result, sent = sweep()
    assert (result["kills_resent"], sent) == (0, [])

    # past another deadline it is sent again
    back(started, kill_requested_at=121)
    result, sent = sweep()
    assert kills(sent, started) == 1
    started.refresh_from_db()
    assert (started.status, started.ended_at, started.kill_requested_by) == (NodeStatus.SHUTTING_DOWN, None, "alice")


def test_a_kill_within_the_deadline_is_left_alone(started, sweep):
    request_engine_kill(started, actor="alice", enqueue=False)
    back(started, kill_requested_at=100)

    result, sent = sweep()

    assert (result["kills_resent"], sent) == (0, [])


def test_an_engine_stopped_before_it_had_a_process_is_ended_at_the_deadline(starting, sweep):
    request_engine_kill(starting, actor="alice", enqueue=False)
    back(starting, kill_requested_at=121)

    result, sent = sweep()

    starting.refresh_from_db()
    assert result["engines_ended_without_process"] == 1
    assert sent == []
    assert (starting.status, starting.ended_at is not None) == (NodeStatus.SHUTTING_DOWN, True)


def test_a_failed_engine_whose_kill_time_was_never_kept_is_killed_again(ecm, sweep):
    engine = make_engine(ecm, status=NodeStatus.FAILED, instance="host1:40002", pid=4243, process_started_at=1.0)
    back(engine, modified=121)

    result, sent = sweep()

    assert (result["kills_resent"], kills(sent, engine)) == (1, 1)


# --- Unresponsive -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [NodeStatus.UNLOCK, NodeStatus.BUSY])
def test_an_engine_whose_runtime_does_not_answer_past_the_timeout_is_failed_and_killed(started, sweep, status):
    set_runtime_status(started.pk, status)
    record_engine_heartbeat(started.pk, responsive=False)
    back(started, unresponsive_since=721, last_activity=10)

    result, sent = sweep()

    started.refresh_from_db()
    assert result["engines_unresponsive"] == 1
    assert started.status == NodeStatus.FAILED
    assert "has not answered for more than 720 s" in started.end_reason
    assert sent == [KILL_TO_HOST1]


def test_an_engine_that_answers_again_or_only_just_stopped_answering_is_kept(started, ecm, sweep):
    record_engine_heartbeat(started.pk, responsive=False)
    back(started, unresponsive_since=721, last_activity=10)
    record_engine_heartbeat(started.pk, responsive=True)
    other = make_engine(ecm, instance="host1:40002", last_activity=db_now())
    record_engine_heartbeat(other.pk, responsive=False)
    back(other, unresponsive_since=700, last_activity=10)

    result, sent = sweep()

    assert (result["engines_unresponsive"], sent) == (0, [])
    assert EngineConn.objects.filter(status=NodeStatus.FAILED).count() == 0


# --- Idle culling -----------------------------------------------------------------------------------------


def test_an_unlock_engine_idle_past_the_idle_timeout_is_culled_with_its_reason(started, sweep):
    back(started, last_activity=301)

    result, sent = sweep()

    started.refresh_from_db()
    assert result["engines_culled"] == 1
    assert started.status == NodeStatus.SUCCESS
    assert started.end_reason == "idle: no user action for more than 300 s"
    assert started.kill_requested_at is not None
    assert sent == [mock.call(KILL_TASK, args=[started.pk], queue="ecm.host1_9102")]


def test_a_recently_used_engine_is_kept(started, sweep):
    back(started, last_activity=200)

    result, sent = sweep()

    assert (result["engines_culled"], sent) == (0, [])


@pytest.mark.parametrize("status", [NodeStatus.BUSY, NodeStatus.IDLE])
def test_a_busy_or_locked_engine_past_the_idle_timeout_is_kept(started, sweep, status):
    set_runtime_status(started.pk, status)
    back(started, last_activity=86400)

    result, sent = sweep()

    started.refresh_from_db()
    assert (result["engines_culled"], started.status, sent) == (0, status, [])


def test_probes_and_heartbeats_do_not_reset_the_idle_clock(started, sweep):
    # given an engine last used long ago
    back(started, last_activity=400)
    started.refresh_from_db()
    used = started.last_activity

    # when its agent keeps probing it: status calls report the same last user action, or none
    record_engine_heartbeat(started.pk, status=NodeStatus.UNLOCK)
    record_engine_heartbeat(started.pk, status=NodeStatus.UNLOCK, last_activity=used)
    set_runtime_status(started.pk, NodeStatus.UNLOCK)

    # then it is still idle, and culled
    result, _ = sweep()
    started.refresh_from_db()
    assert (result["engines_culled"], started.status) == (1, NodeStatus.SUCCESS)


def test_a_locked_engine_whose_lock_idles_out_is_culled_like_any_unlock_engine(started, sweep):
    # given an engine locked by a client who then went away
    set_runtime_status(started.pk, NodeStatus.IDLE)
    back(started, last_activity=400)
    assert sweep()[0]["engines_culled"] == 0

    # when the runtime releases the lock (not a user action: lastActivity stays)
    started.refresh_from_db()
    record_engine_heartbeat(started.pk, status=NodeStatus.UNLOCK, last_activity=started.last_activity)

    # then the next sweep culls it
    assert sweep()[0]["engines_culled"] == 1


def test_an_engine_that_does_not_answer_is_not_culled_as_idle(started, sweep):
    # its real status is unknown (it may be running code), so only the unresponsive rule judges it
    record_engine_heartbeat(started.pk, responsive=False)
    back(started, last_activity=400)

    result, _ = sweep()

    assert result["engines_culled"] == 0


def test_a_culled_engine_whose_kill_never_lands_is_killed_again(started, sweep):
    back(started, last_activity=301)
    sweep()
    back(started, kill_requested_at=121)

    result, sent = sweep()

    assert (result["kills_resent"], kills(sent, started)) == (1, 1)


# --- Engines of a lost ECM ------------------------------------------------------------------------------


def test_engines_of_a_lost_ecm_get_no_kill_from_any_rule(ecm, sweep):
    stuck = make_engine(ecm, status=NodeStatus.STARTING)
    idle = make_engine(ecm, instance="host1:40002", pid=1, process_started_at=1.0, last_activity=db_now())
    stopping = make_engine(ecm, status=NodeStatus.SHUTTING_DOWN, instance="host1:40003", pid=2, process_started_at=1.0)
    back(stuck, modified=600)
    back(idle, last_activity=600)
    back(stopping, kill_requested_at=600)
    EngineConnManager.objects.filter(pk=ecm.pk).update(last_heartbeat=db_now() - timedelta(seconds=400))

    result, sent = sweep()

    assert sent == []
    assert result["engines_released"] == 3
    assert not EngineConn.objects.live().exists()


# --- The agent's side -----------------------------------------------------------------------------------


def make_agent(tmp_path: Path, ecm: EngineConnManager) -> Agent:
    agent = Agent(
        ecm.instance,
        owner="hadoop",
        capacity=LoadInstance(1, 1, 1),
        reserve=LoadInstance(0, 0, 0),
        log_root=tmp_path / "logs",
        kill_grace=2,
    )
    agent.ecm = ecm
    return agent


def spawn() -> tuple[subprocess.Popen, float]:
    """A process in a session of its own, as the agent starts engines."""
    popen = subprocess.Popen(["sleep", "120"], start_new_session=True)
    return popen, psutil.Process(popen.pid).create_time()


def gone(popen: subprocess.Popen, timeout: float = 20) -> bool:
    try:
        popen.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for popen in started:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=10)


def test_a_restarted_agent_stops_processes_of_engines_ended_while_it_was_away(tmp_path, ecm, processes):
    # given an engine ended while its agent was away, whose process survived, and a live one
    orphan, orphan_started = spawn()
    survivor, survivor_started = spawn()
    processes += [orphan, survivor]
    ended = make_engine(
        ecm, status=NodeStatus.FAILED, pid=orphan.pid, process_started_at=orphan_started, ended_at=db_now()
    )
    live = make_engine(ecm, instance="host1:40002", pid=survivor.pid, process_started_at=survivor_started)
    agent = make_agent(tmp_path, ecm)

    # when the agent reconciles, long after that end (an earlier restart may have missed it)
    agent.reconcile(since=db_now() + timedelta(days=1))

    # then the orphan is stopped and the live engine adopted
    assert gone(orphan)
    assert survivor.poll() is None
    assert list(agent._engines) == [live.pk]
    ended.refresh_from_db()
    assert ended.status == NodeStatus.FAILED


def test_an_agent_that_was_only_cut_off_stops_the_processes_of_its_ended_engines(tmp_path, ecm, processes):
    # given an agent holding two engines, one of which the sweep ended while the agent was silent
    cut, cut_started = spawn()
    kept, kept_started = spawn()
    processes += [cut, kept]
    ended = make_engine(ecm, status=NodeStatus.FAILED, pid=cut.pid, process_started_at=cut_started, ended_at=db_now())
    live = make_engine(ecm, instance="host1:40002", pid=kept.pid, process_started_at=kept_started)
    agent = make_agent(tmp_path, ecm)
    agent._engines = {
        ended.pk: ManagedEngine(ended.pk, cut.pid, cut_started, "", popen=cut),
        live.pk: ManagedEngine(live.pk, kept.pid, kept_started, "", popen=kept),
    }

    # when it heartbeats again
    assert agent.kill_processes_of_ended_engines() == 1

    # then that process is stopped, and the other engine is still its own
    assert gone(cut)
    assert kept.poll() is None
    assert list(agent._engines) == [live.pk]


def _folder(root: Path, user: str, day: str, ticket: str, *, age_days: float) -> Path:
    folder = root / user / day / "python" / ticket
    (folder / "logs").mkdir(parents=True)
    stamp = time.time() - age_days * 86400
    for path in (folder / "logs" / "stdout", folder / "logs" / "stderr"):
        path.write_text("log")
        os.utime(path, (stamp, stamp))
    for path in (folder / "logs", folder):
        os.utime(path, (stamp, stamp))
    return folder


def test_the_agent_prunes_log_folders_of_ended_engines_past_their_retention(tmp_path, ecm, settings):
    settings.ENGINE_LOG_RETENTION_DAYS = 14
    agent = make_agent(tmp_path, ecm)
    root = agent.log_root
    old_day = time.strftime("%Y%m%d", time.gmtime(time.time() - 30 * 86400))
    today = time.strftime("%Y%m%d", time.gmtime())
    ended = make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=db_now())
    live = make_engine(ecm, instance="host1:40002")
    recent_end = make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=db_now())
    new = make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=db_now())
    gone_folder = _folder(root, "bob", old_day, str(ended.ticket_id), age_days=30)
    live_folder = _folder(root, "alice", old_day, str(live.ticket_id), age_days=30)
    recent_folder = _folder(root, "alice", old_day, str(recent_end.ticket_id), age_days=30)
    (recent_folder / "logs" / "stdout").write_text("written at the end, a day ago")
    new_folder = _folder(root, "alice", today, str(new.ticket_id), age_days=0)
    stranger = _folder(root, "alice", old_day, "not-a-ticket", age_days=30)

    assert agent.prune_logs() == 1

    assert not gone_folder.exists()
    assert not (root / "bob").exists()  # emptied parents go too
    assert live_folder.exists() and recent_folder.exists() and new_folder.exists() and stranger.exists()


def test_the_agent_prunes_logs_at_the_housekeeping_cadence(tmp_path, ecm, settings):
    settings.HOUSEKEEPING_INTERVAL_SECONDS = 3600
    agent = make_agent(tmp_path, ecm)
    with mock.patch.object(Agent, "prune_logs", return_value=0) as prune:
        agent.after_heartbeat()
        agent._log_prune_thread.join(timeout=10)
        agent.after_heartbeat()
    assert prune.call_count == 1

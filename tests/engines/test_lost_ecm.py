"""Integration: an ECM agent that dies with engines running is declared lost by the sweep, its
engines are released, and the restarted agent kills the orphaned processes. A real agent, real
engine processes, test-scale thresholds for the sweep (which runs in the test process)."""

from __future__ import annotations

import signal

import psutil
import pytest

from engines.models import EngineConn
from engines.services import EngineRequest, admit_engine
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.models import EngineConnManager, Label
from linkismanager.resources import LoadInstance
from linkismanager.services import ecm_capacity
from linkismanager.sweeps import run_health_sweep
from tests.engines.conftest import wait_for
from tests.factories import GIB

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

LOST_SECONDS = 2.0


@pytest.fixture(autouse=True)
def _test_scale_thresholds(settings):
    settings.ECM_LATE_STOCK_AVAILABLE_SECONDS = 0.5
    settings.ECM_LATE_STOCK_UNAVAILABLE_SECONDS = 1.0
    settings.ECM_LATE_UNHEALTHY_SECONDS = 1.5
    settings.ECM_LOST_SECONDS = LOST_SECONDS


def running(engine: EngineConn) -> bool:
    """Whether the engine's own process (pid and start time) is still running."""
    try:
        process = psutil.Process(engine.pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - engine.process_started_at) < 0.05
        )
    except psutil.NoSuchProcess:
        return False


def processes_of(tickets: set[str]) -> list[int]:
    """Running processes started for these engines (the agent gives each its ticket id)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("LINKIS_ENGINE_TICKET_ID") in tickets:
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def up_engine() -> EngineConn:
    """An engine up on the tenant's ECM (a tenant ECM takes only its tenant's requests)."""
    engine = admit_engine(
        EngineRequest(
            "alice",
            "IDE",
            "python",
            "python3",
            LoadInstance(1 * GIB, 1, 1),
            labels={"userCreator": "alice-IDE", "engineType": "python-python3", "tenant": "tlost"},
        ),
        actor="alice",
    )

    def ready() -> bool:
        engine.refresh_from_db()
        assert engine.ended_at is None, engine.end_reason
        return engine.status == NodeStatus.UNLOCK

    wait_for(ready, what=f"engine {engine.pk} to be up")
    return engine


def test_a_crashed_agent_is_lost_its_engines_freed_and_its_restart_kills_the_orphans(start_agent):
    # given an agent running two engines
    agent = start_agent("lostcase:9102", "--tenant", "tlost")
    engines = [up_engine() for _ in range(2)]
    ecm = agent.ecm
    labels = dict(Label.objects.filter(ecm=ecm).values_list("key", "value"))
    assert labels["tenant"] == "tlost"
    tickets = {str(engine.ticket_id) for engine in engines}
    assert all(running(engine) for engine in engines)

    # when the agent dies without a word, and stays away past the lost threshold
    agent.stop(signal.SIGKILL)
    wait_for(
        lambda: (
            (db_now() - EngineConnManager.objects.get(pk=ecm.pk).last_heartbeat).total_seconds() > LOST_SECONDS + 0.1
        ),
        what="the lost threshold to pass",
    )
    result = run_health_sweep()

    # then one sweep declares the ECM lost, and its engines failed and ended, their resources free
    assert (result["ecms_lost"], result["engines_released"], result["errors"]) == (1, 2, 0)
    ecm.refresh_from_db()
    assert ecm.lost_at is not None
    assert ecm.health == NodeHealthy.UNHEALTHY
    for engine in engines:
        engine.refresh_from_db()
        assert (engine.status, engine.ended_at is not None) == (NodeStatus.FAILED, True)
        assert "the ECM lostcase:9102 was lost" in engine.end_reason
    capacity = ecm_capacity(ecm)
    assert capacity.used == capacity.locked == LoadInstance.ZERO
    # and the processes, which no one could reach, are still running
    assert all(running(engine) for engine in engines)

    # when the agent is started again
    start_agent("lostcase:9102", "--tenant", "tlost")

    # then it kills the two orphans, and no process of theirs is left
    wait_for(lambda: not any(running(engine) for engine in engines), what="the orphans to be killed")
    wait_for(lambda: not processes_of(tickets), what="no process of the engines to be left")
    # and the ECM is back, Healthy, with its labels
    wait_for(
        lambda: EngineConnManager.objects.get(pk=ecm.pk).health == NodeHealthy.HEALTHY,
        what="the ECM to report Healthy",
    )
    ecm.refresh_from_db()
    assert ecm.lost_at is None
    assert dict(Label.objects.filter(ecm=ecm).values_list("key", "value")) == labels
    # and the ended engines stay as they ended
    for engine in engines:
        engine.refresh_from_db()
        assert (engine.status, engine.ended_at is not None) == (NodeStatus.FAILED, True)
    assert not EngineConn.objects.live().filter(ecm=ecm).exists()

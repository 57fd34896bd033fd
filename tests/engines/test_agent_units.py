"""Agent logic that needs no process: overload detection and the refusal of foreign engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.agent import Agent, AgentError
from linkismanager.resources import LoadInstance
from tests.factories import make_ecm, make_engine


def make_agent(tmp_path: Path) -> Agent:
    return Agent(
        "unit:9102",
        owner="hadoop",
        capacity=LoadInstance(1, 1, 1),
        reserve=LoadInstance(0, 0, 0),
        log_root=tmp_path,
    )


def test_one_high_reading_is_a_spike_two_in_a_row_are_overload(tmp_path, settings):
    settings.ECM_OVERLOAD_CPU_PERCENT = 0  # every reading is "high"
    agent = make_agent(tmp_path)
    assert agent.host_health()[1] == "Healthy"
    assert agent.host_health()[1] == "StockAvailable"
    settings.ECM_OVERLOAD_CPU_PERCENT = 1000
    settings.ECM_OVERLOAD_MEMORY_PERCENT = 1000
    assert agent.host_health()[1] == "Healthy"


def test_host_metrics_use_linkis_names(tmp_path):
    metrics, _ = make_agent(tmp_path).host_health()
    assert set(metrics) == {"maxMemory", "usedMemory", "systemLeftMemory", "systemCPUUsed"}
    assert metrics["maxMemory"] > metrics["systemLeftMemory"] > 0


@pytest.mark.django_db
def test_an_agent_refuses_engines_of_another_ecm(tmp_path):
    agent = make_agent(tmp_path)
    agent.ecm = make_ecm("unit:9102")
    foreign = make_engine(make_ecm("other:9102"), pid=1, process_started_at=0.0)
    with pytest.raises(AgentError, match="does not belong"):
        agent.kill(foreign.pk)
    with pytest.raises(AgentError, match="does not belong"):
        agent.launch(foreign.pk)

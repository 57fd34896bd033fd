"""End to end with a real agent: a user's engine from creation to history, through the API only."""

from __future__ import annotations

from datetime import timedelta

import psutil
import pytest

from linkismanager.dbtime import db_now
from linkismanager.sweeps import run_housekeeping
from tests.conftest import API

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

M = f"{API}/linkisManager"


def pid_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_alice_creates_runs_lists_kills_and_reads_history(start_agent, make_user, login, settings):
    make_user("alice")
    make_user("hadoop")  # a Linkis admin by name
    agent = start_agent()
    alice = login("alice")

    created = alice.post(
        f"{M}/createEngineConn",
        {"labels": {"engineType": "python-python3", "userCreator": "alice-IDE"}, "timeout": 60000},
        format="json",
    ).json()
    assert created["status"] == 0, created
    engine = created["data"]["engine"]
    instance = engine["serviceInstance"]["instance"]
    ticket = engine["ticketId"]
    pid = int(engine["identifier"])
    assert engine["nodeStatus"] == "Unlock" and pid_running(pid)

    ran = alice.post(
        f"{M}/executeEngineConnOperation",
        {
            "applicationName": "linkis-cg-engineconn",
            "instance": instance,
            "parameters": {"__operator_name__": "execute", "code": "print(6*7)"},
        },
        format="json",
    ).json()
    assert ran["status"] == 0, ran
    assert ran["data"]["result"]["output"] == "42\n"

    mine = alice.get(f"{M}/listUserEngines").json()["data"]["engines"]
    assert [e["serviceInstance"]["instance"] for e in mine] == [instance]

    hadoop = login("hadoop")
    listed = hadoop.post(
        f"{M}/listEMEngines",
        {"em": {"serviceInstance": {"applicationName": "linkis-cg-engineconnmanager", "instance": agent.instance}}},
        format="json",
    ).json()
    assert listed["status"] == 0, listed
    assert [row["instance"] for row in listed["data"]["engines"]] == [instance]

    killed = alice.post(f"{M}/killEngineConn", {"applicationName": "x", "instance": instance}, format="json").json()
    assert killed["message"] == "Kill engineConn succeed."
    assert not pid_running(pid)

    # Once housekeeping has removed the ended row, the answer comes from the engine's history.
    settings.ENDED_ENGINE_RETENTION_DAYS = 0
    run_housekeeping(now=db_now() + timedelta(seconds=1))
    got = alice.post(
        f"{M}/getEngineConn", {"applicationName": "x", "instance": instance, "ticketId": ticket}, format="json"
    ).json()
    assert got["status"] == 0, got
    assert got["data"]["engine"]["ticketId"] == ticket
    assert got["data"]["engine"]["nodeStatus"] == "ShuttingDown"
    assert got["data"]["engine"]["labels"] == []  # a history record, not the row

    # The launch ran under the engine's ticket id on the agent.
    assert f"ticket={ticket}" in agent.log.read_text()

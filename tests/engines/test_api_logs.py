"""openEngineLog and the ECM log operators against a real agent and a real engine: paging through
the engine's stdout, owner and admin access, and reads that try to leave the ECM's log root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from engines.models import EngineConn
from engines.remote import call_engine
from engines.services import EngineRequest, admit_engine, request_engine_kill
from linkismanager.choices import NodeStatus
from linkismanager.models import Token
from linkismanager.resources import LoadInstance
from tests.conftest import API
from tests.engines.conftest import wait_for
from tests.factories import GIB

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

EM = f"{API}/linkisManager"
ENGINE_APP = "linkis-cg-engineconn"
ECM_APP = "linkis-cg-engineconnmanager"
INSTANCE = "logs-host:9102"
LINES = 2500
PRINT_LINES = f"for i in range(1, {LINES + 1}):\n    print(f'log-line {{i:04d}}')\n"


def expected(first: int, last: int) -> list[str]:
    return [f"log-line {i:04d}" for i in range(first, last + 1)]


@pytest.fixture
def engine(start_agent, alice, bob, hadoop) -> EngineConn:
    """A real python engine of alice that has printed LINES numbered lines to its stdout."""
    start_agent(INSTANCE)
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))
    engine = admit_engine(request, actor="alice")

    def ready() -> bool:
        engine.refresh_from_db()
        return engine.status == NodeStatus.UNLOCK

    wait_for(ready, what=f"engine {engine.pk} to be ready (now {engine.status}: {engine.end_reason})")
    answer = call_engine(engine, "POST", "/execute", {"code": PRINT_LINES})
    assert answer["ok"], answer
    return engine


@pytest.fixture
def log_root(tmp_path) -> Path:
    """The agent's log root, as the start_agent fixture sets it."""
    return (tmp_path / "engines").resolve()


def open_log(client: APIClient, engine: EngineConn, **parameters):
    body = {
        "applicationName": ENGINE_APP,
        "instance": engine.instance,
        "emInstance": INSTANCE,
        "parameters": parameters,
    }
    return client.post(f"{EM}/openEngineLog", body, format="json")


def result(response) -> dict:
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == 0, body
    assert body["data"]["isError"] is False, body
    assert body["data"]["errorMsg"] == ""
    return body["data"]["result"]


def refused(response) -> str:
    body = response.json()
    assert response.status_code == 400, body
    assert body["status"] == 1, body
    assert "root:" not in response.content.decode()
    return body["message"]


def test_an_owner_pages_through_a_real_engines_stdout(engine, login, log_root):
    client = login("alice")

    # From the start, as the operator reads with enableTail false: each page continues at endLine + 1.
    page = result(open_log(client, engine, logType="stdout", fromLine=1, pageSize=1000, enableTail=False))
    assert page["logs"] == expected(1, 1000)
    assert (page["rows"], page["endLine"]) == (1000, 1000)
    assert page["logPath"] == str(log_root / engine.log_dir / "stdout")
    page = result(
        open_log(client, engine, logType="stdout", fromLine=page["endLine"] + 1, pageSize=1000, enableTail=False)
    )
    assert page["logs"] == expected(1001, 2000)
    page = result(
        open_log(client, engine, logType="stdout", fromLine=page["endLine"] + 1, pageSize=1000, enableTail=False)
    )
    assert page["logs"] == expected(2001, LINES)
    assert (page["rows"], page["endLine"]) == (500, LINES)
    page = result(open_log(client, engine, logType="stdout", fromLine=LINES + 1, pageSize=1000, enableTail=False))
    assert page["logs"] == [] and page["rows"] == 0

    # As the console reads it (fromLine 0, pageSize 1000, tail by default): the newest lines first,
    # each page in file order.
    page = result(open_log(client, engine, logType="stdout", fromLine=0, pageSize=1000))
    assert page["logs"] == expected(1501, LINES)
    assert page["endLine"] == 1000
    page = result(open_log(client, engine, logType="stdout", fromLine=page["endLine"] + 1, pageSize=1000))
    assert page["logs"] == expected(501, 1500)

    # The last rows, and keyword filters.
    page = result(open_log(client, engine, logType="stdout", lastRows=3))
    assert page["logs"] == expected(2498, LINES) and page["rows"] == 3
    page = result(
        open_log(client, engine, logType="stdout", enableTail=False, pageSize=5000, onlyKeywords="line 0042,line 2042")
    )
    assert page["logs"] == ["log-line 0042", "log-line 2042"]
    page = result(
        open_log(client, engine, logType="stdout", enableTail=False, pageSize=5000, ignoreKeywords="log-line 0")
    )
    assert page["logs"] == expected(1000, LINES)

    # stderr holds the runtime's own log; a log the engine never wrote is an isError answer.
    assert any("listening on" in line for line in result(open_log(client, engine, logType="stderr"))["logs"])
    body = open_log(client, engine, logType="gc").json()
    assert body["status"] == 0 and body["data"]["isError"] is True
    assert "does not exist" in body["data"]["errorMsg"]
    assert body["data"]["result"] == {}


def test_the_ecm_operators_read_the_same_log(engine, login):
    client = login("alice")
    parameters = {"__operator_name__": "engineConnLog", "logType": "stdout", "fromLine": 2, "pageSize": 2}

    by_ecm = client.post(
        f"{EM}/executeECMOperation",
        {
            "applicationName": ECM_APP,
            "instance": INSTANCE,
            "parameters": {**parameters, "engineConnInstance": engine.instance},
        },
        format="json",
    )
    assert result(by_ecm)["logs"] == expected(2, 3)
    by_ec = client.post(
        f"{EM}/executeECMOperationByEC",
        {"applicationName": ENGINE_APP, "instance": engine.instance, "parameters": parameters},
        format="json",
    )
    assert result(by_ec)["logs"] == expected(2, 3)

    # The YARN log operator reads the yarnApp log, which a local engine never writes.
    body = client.post(
        f"{EM}/executeECMOperationByEC",
        {
            "applicationName": ENGINE_APP,
            "instance": engine.instance,
            "parameters": {"__operator_name__": "engineConnYarnLog"},
        },
        format="json",
    ).json()
    assert body["data"]["isError"] is True and "yarnApp" in body["data"]["errorMsg"]


def test_only_the_owner_or_an_admin_reads_an_engines_log(engine, login):
    message = refused(open_log(login("bob"), engine, logType="stdout"))
    assert (
        message
        == f"You have no permission to get the log of EngineConn ServiceInstance({ENGINE_APP}, {engine.instance}, 0)."
    )
    # Naming the owner's folder does not help.
    message = refused(open_log(login("bob"), engine, logType="stdout", logDirSuffix=engine.log_dir))
    assert "no permission" in message

    assert result(open_log(login("hadoop"), engine, logType="stdout", lastRows=1))["logs"] == expected(LINES, LINES)
    token = Token(name="ops", is_admin=True)
    token.set_code("ADMIN-OPS-TOKEN")
    token.save()
    client = APIClient()
    client.credentials(HTTP_TOKEN_CODE="ADMIN-OPS-TOKEN", HTTP_TOKEN_USER="carol")
    assert result(open_log(client, engine, logType="stdout", lastRows=1))["logs"] == expected(LINES, LINES)


def test_reads_that_leave_the_log_root_read_nothing(engine, login, log_root, tmp_path):
    admin = login("hadoop")
    # An admin may name another folder, but only one under the ECM's log root, without links.
    for suffix in ("../../../../../../etc", "/etc", f"{engine.log_dir}/../../../../../../../etc", "alice/../.."):
        message = refused(open_log(admin, engine, logType="stdout", logDirSuffix=suffix))
        assert "log root" in message, message

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stdout").write_text("root:x:0:0:secret\n")
    (log_root / "evil").mkdir()
    os.symlink(outside / "stdout", log_root / "evil" / "stdout")
    os.symlink(outside, log_root / "evil-dir")
    os.symlink(log_root / engine.log_dir, log_root / "inner-link")
    for suffix, reason in (
        ("evil", "leads outside the ECM's log root"),
        ("evil-dir", "leads outside the ECM's log root"),
        ("inner-link", "is a symbolic link"),
    ):
        message = refused(open_log(admin, engine, logType="stdout", logDirSuffix=suffix))
        assert reason in message, message

    # In the engine's own folder: a link out of the root, or to another file inside it, is refused.
    folder = log_root / engine.log_dir
    os.symlink(outside / "stdout", folder / "udfLog")
    os.symlink(folder / "stdout", folder / "gc")
    alice = login("alice")
    assert "leads outside the ECM's log root" in refused(open_log(alice, engine, logType="udfLog"))
    assert "is a symbolic link" in refused(open_log(alice, engine, logType="gc"))
    # A non-admin never gets to name a folder at all.
    message = refused(open_log(alice, engine, logType="stdout", logDirSuffix="evil"))
    assert message.startswith("You have no permission to get log with path:evil in ECM:")


def test_the_log_of_an_ended_engine_stays_readable(engine, login):
    assert request_engine_kill(engine, actor="alice") is True

    def ended() -> bool:
        engine.refresh_from_db()
        return engine.ended_at is not None

    wait_for(ended, what="the engine to end")
    assert result(open_log(login("alice"), engine, logType="stdout", lastRows=2))["logs"] == expected(LINES - 1, LINES)

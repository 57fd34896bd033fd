"""Races over HTTP with real concurrent clients against a live server and a real agent.

Run in both legs; on PostgreSQL the row locks and compare-and-set updates are what keep them right.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable

import psutil
import pytest

from engines.models import EngineConn, EngineHistory
from engines.services import EngineRequest, admit_engine
from linkismanager.choices import NodeStatus
from linkismanager.models import AuditEntry, HealthRecord, UserQuota
from linkismanager.resources import LoadInstance
from tests.conftest import PASSWORD
from tests.engines.conftest import wait_for
from tests.factories import GIB

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

PYTHON = {"engineType": "python-python3", "userCreator": "alice-IDE"}


class HttpClient:
    """A logged-in client speaking real HTTP to the live server (one cookie, many threads)."""

    def __init__(self, base: str, user: str) -> None:
        self.base = base
        self.cookie = ""
        answer, headers = self._send("POST", "/api/rest_j/v1/user/login", {"userName": user, "password": PASSWORD})
        assert answer["status"] == 0, answer
        cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or []]
        self.cookie = "; ".join(c for c in cookies if c.startswith("linkis_user_session_ticket_id_v1="))
        assert self.cookie, cookies

    def _send(self, method: str, path: str, body=None, timeout: float = 120):
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "Cookie": self.cookie},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read()), response.headers
        except urllib.error.HTTPError as error:
            assert error.code < 500, error.read()
            return json.loads(error.read()), error.headers

    def post(self, path: str, body) -> dict:
        return self._send("POST", f"/api/rest_j/v1/linkisManager/{path}", body)[0]


def in_parallel(count: int, action: Callable[[int], dict]) -> list[dict]:
    barrier = threading.Barrier(count)
    results: list[dict | BaseException] = [None] * count  # type: ignore[list-item]

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = action(index)
        except BaseException as exc:  # reported below, with the others
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results  # type: ignore[return-value]


def ready_engine(user: str = "alice") -> EngineConn:
    engine = admit_engine(EngineRequest(user, "IDE", "python", "python3", LoadInstance(GIB, 1, 1)), actor=user)

    def unlocked():
        engine.refresh_from_db()
        return engine.status == NodeStatus.UNLOCK

    wait_for(unlocked, what="the engine to be Unlock")
    return engine


def test_twenty_concurrent_kills_kill_once(live_server, start_agent, make_user):
    make_user("alice")
    start_agent()
    engine = ready_engine()
    client = HttpClient(live_server.url, "alice")

    answers = in_parallel(
        20, lambda _: client.post("killEngineConn", {"applicationName": "x", "instance": engine.instance})
    )

    messages = Counter("succeed" if a["message"] == "Kill engineConn succeed." else "already" for a in answers)
    assert messages == {"succeed": 1, "already": 19}, [a["message"] for a in answers]
    assert all(a["status"] == 0 for a in answers)
    engine.refresh_from_db()
    assert engine.ended_at is not None and engine.status == NodeStatus.SHUTTING_DOWN
    assert HealthRecord.objects.filter(engine=engine, new=NodeStatus.SHUTTING_DOWN).count() == 1
    assert AuditEntry.objects.filter(action="kill_engine", target=engine.instance).count() == 1
    assert EngineHistory.objects.get(ticket_id=engine.ticket_id).release_times == 1


def test_five_concurrent_creates_under_a_quota_of_two_make_two(live_server, start_agent, make_user):
    make_user("alice")
    start_agent()
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=2)
    client = HttpClient(live_server.url, "alice")

    answers = in_parallel(5, lambda _: client.post("createEngineConn", {"labels": PYTHON, "timeout": 90000}))

    assert sorted(a["status"] for a in answers) == [0, 0, 1, 1, 1], answers
    assert all("quota" in a["message"] for a in answers if a["status"] == 1)
    assert EngineConn.objects.count() == 2
    assert EngineConn.objects.live().filter(status=NodeStatus.UNLOCK).count() == 2


def _engine_processes(log_root) -> set[int]:
    """Runtime processes started under this test's log root."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "engines.runtime" in cmdline and any(str(log_root) in part for part in cmdline):
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.add(process.info["pid"])
            except psutil.Error:
                continue
    return found


def test_a_storm_of_creates_and_kills_leaves_registry_and_host_agreeing(live_server, start_agent, make_user, tmp_path):
    for name in ("alice", "bob"):
        make_user(name)
    start_agent()
    clients = {name: HttpClient(live_server.url, name) for name in ("alice", "bob")}
    rng = random.Random(7)
    plan = [(rng.choice(["alice", "bob"]), rng.random() < 0.6) for _ in range(50)]

    def act(index: int) -> dict:
        user, create = plan[index]
        client = clients[user]
        if create:
            return client.post(
                "createEngineConn",
                {"labels": {"engineType": "python-python3", "userCreator": f"{user}-IDE"}, "timeout": 120000},
            )
        live = list(
            EngineConn.objects.live().filter(owner=user).exclude(instance="").values_list("instance", flat=True)
        )
        if not live:
            return {"status": 0, "message": "nothing to kill"}
        return client.post("killEngineConn", {"applicationName": "x", "instance": rng.choice(live)})

    answers = in_parallel(50, act)
    assert all(a["status"] in (0, 1) for a in answers)

    def settled():
        return not EngineConn.objects.live().filter(status__in=[NodeStatus.STARTING, NodeStatus.SHUTTING_DOWN]).exists()

    wait_for(settled, timeout=180, what="every launch and kill to finish")
    live_rows = {engine.pid for engine in EngineConn.objects.live()}
    processes = _engine_processes(tmp_path)
    assert live_rows == processes
    for engine in EngineConn.objects.live():
        assert psutil.pid_exists(engine.pid)
    ecm_answer = clients["alice"]._send("GET", "/api/rest_j/v1/linkisManager/listAllNodeHealthyStatus")[0]
    assert ecm_answer["status"] == 0
    from linkismanager.models import EngineConnManager
    from linkismanager.services import ecm_capacity

    capacity = ecm_capacity(EngineConnManager.objects.get())
    assert capacity.used.instances == len(processes)
    assert not capacity.used.any_negative() and not capacity.left.any_negative()

"""createEngineConn, askEngineConn, getEngineConn, killEngineConn and rm/enginekill through the
real authentication. Tasks for agents are recorded at the broker's edge (the outside world here);
the end-to-end tests further down run a real agent."""

from __future__ import annotations

import psutil
import pytest
from rest_framework.test import APIClient

from engines.models import EngineConn, EngineHistory
from linkismanager.choices import NodeStatus
from linkismanager.models import Token, UserQuota
from tests.conftest import API
from tests.factories import make_ecm, make_engine

M = f"{API}/linkisManager"
PYTHON = {"engineType": "python-python3", "userCreator": "alice-IDE"}


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list, str]]:
    """Tasks sent to agents' queues once each request commits: (task name, args, queue).

    Tests that use it run with real transactions, so commit callbacks run as in production.
    """
    calls: list[tuple[str, list, str]] = []

    def record(name, args=None, queue=None, **kwargs):
        calls.append((name, list(args or []), queue))

    monkeypatch.setattr("config.celery.app.send_task", record)
    return calls


def body(response) -> dict:
    return response.json()


@pytest.mark.django_db(transaction=True)
class TestCreateValidation:
    def test_engine_type_and_user_creator_are_required(self, alice, login):
        response = login("alice").post(
            f"{M}/createEngineConn", {"labels": {"engineType": "python-python3"}}, format="json"
        )
        assert response.status_code == 400
        assert body(response)["message"] == (
            "error code(错误码): 30002, error message(错误信息): Need to specify engineType and userCreator label."
        )

    @pytest.mark.parametrize(
        ("payload", "named"),
        [
            ({}, "labels"),
            ({"labels": "python"}, "labels"),
            ({"labels": {"engineType": 3, "userCreator": "alice-IDE"}}, "engineType"),
            ({"labels": {**PYTHON, "userCreator": "alice"}}, "userCreator"),
            ({"labels": PYTHON, "timeout": "soon"}, "timeout"),
            ({"labels": PYTHON, "properties": {"engine.memory": "lots"}}, "engine.memory"),
            ({"labels": PYTHON, "properties": {"engine.cores": "-1"}}, "engine.cores"),
            ({"labels": PYTHON, "properties": ["x"]}, "properties"),
        ],
    )
    def test_bad_fields_are_named(self, alice, login, payload, named):
        response = login("alice").post(f"{M}/createEngineConn", payload, format="json")
        assert response.status_code == 400
        assert body(response)["status"] == 1
        assert named in body(response)["message"]
        assert not EngineConn.objects.exists()

    def test_a_user_cannot_create_engines_for_another_user(self, alice, login):
        response = login("alice").post(
            f"{M}/createEngineConn", {"labels": {**PYTHON, "userCreator": "bob-IDE"}}, format="json"
        )
        assert response.status_code == 400
        assert "210003" in body(response)["message"]
        assert not EngineConn.objects.exists()

    def test_anonymous_callers_are_not_logged_in(self):
        for path in ("createEngineConn", "askEngineConn", "getEngineConn", "killEngineConn", "rm/enginekill"):
            response = APIClient().post(f"{M}/{path}", {}, format="json")
            assert response.status_code == 401, path
            assert body(response)["status"] == -1

    def test_no_ecm_is_retryable_and_leaves_nothing(self, alice, login):
        response = login("alice").post(f"{M}/createEngineConn", {"labels": PYTHON}, format="json")
        assert body(response)["status"] == 1
        assert body(response)["message"].startswith("Create engineConn failed, caused by")
        assert body(response)["data"]["canRetry"] is True
        assert not EngineConn.objects.exists()

    def test_over_quota_is_not_retryable(self, alice, login):
        make_ecm()
        UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=0)
        response = login("alice").post(f"{M}/createEngineConn", {"labels": PYTHON}, format="json")
        assert "quota" in body(response)["message"]
        assert body(response)["data"]["canRetry"] is False

    def test_an_engine_that_does_not_start_in_time_is_killed_and_retryable(self, alice, login, sent):
        make_ecm()  # registered, but no agent consumes its queue
        response = login("alice").post(f"{M}/createEngineConn", {"labels": PYTHON, "timeout": 300}, format="json")
        assert body(response)["status"] == 1
        assert "initialization TimeoutException" in body(response)["message"]
        assert body(response)["data"]["canRetry"] is True
        engine = EngineConn.objects.get()
        assert engine.status == NodeStatus.SHUTTING_DOWN
        assert [name for name, _, _ in sent] == ["engines.tasks.launch_engine", "engines.tasks.kill_engine"]
        assert {queue for _, _, queue in sent} == {"ecm.host1_9102"}

    def test_ignore_timeout_answers_the_starting_engine(self, alice, login, sent):
        make_ecm()
        response = login("alice").post(
            f"{M}/createEngineConn", {"labels": PYTHON, "timeout": 200, "ignoreTimeout": True}, format="json"
        )
        assert body(response)["status"] == 0
        assert body(response)["data"]["engine"]["nodeStatus"] == "Starting"

    def test_an_admin_may_create_for_another_user(self, hadoop, login, sent):
        make_ecm()
        response = login("hadoop").post(
            f"{M}/createEngineConn", {"labels": PYTHON, "timeout": 200, "ignoreTimeout": True}, format="json"
        )
        assert body(response)["status"] == 0
        assert EngineConn.objects.get().owner == "alice"


@pytest.mark.django_db(transaction=True)
class TestGetAndKill:
    def test_the_owner_gets_the_engine_with_linkis_fields(self, alice, login):
        engine = make_engine(make_ecm(), instance="host1:40001", pid=4242)
        data = body(
            login("alice").post(
                f"{M}/getEngineConn",
                {"applicationName": "linkis-cg-engineconn", "instance": "host1:40001"},
                format="json",
            )
        )["data"]
        node = data["engine"]
        assert node["serviceInstance"]["instance"] == "host1:40001"
        assert node["serviceInstance"]["applicationName"] == "linkis-cg-engineconn"
        assert node["nodeStatus"] == "Unlock"
        assert node["owner"] == "alice"
        assert node["ticketId"] == str(engine.ticket_id)
        assert node["identifier"] == "4242"
        assert node["nodeHealthyInfo"]["nodeHealthy"] == "Healthy"
        assert isinstance(node["startTime"], int)

    def test_another_user_may_not_get_or_kill_it(self, alice, bob, login, sent):
        make_engine(make_ecm(), instance="host1:40001")
        client = login("bob")
        for path, verb in (("getEngineConn", "access"), ("killEngineConn", "kill")):
            response = client.post(f"{M}/{path}", {"applicationName": "x", "instance": "host1:40001"}, format="json")
            assert response.status_code == 400
            assert f"You have no permission to {verb} EngineConn" in body(response)["message"]
        assert EngineConn.objects.get().status == NodeStatus.UNLOCK
        assert sent == []

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            ({"instance": "host1:40001"}, "applicationName cannot be null"),
            ({"applicationName": "x", "instance": ""}, "instance cannot be null"),
            ({"applicationName": "x", "instance": 7}, "instance must be a string"),
            ({"applicationName": "x", "instance": "nowhere:1"}, "Instance does not exist"),
            ({"applicationName": "x", "instance": "host1:9102"}, "is an ECM instance"),
        ],
    )
    def test_bad_instances_are_clean_errors(self, alice, login, payload, message):
        make_ecm()
        for path in ("getEngineConn", "killEngineConn"):
            response = login("alice").post(f"{M}/{path}", payload, format="json")
            assert response.status_code == 400
            assert message in body(response)["message"], path

    def test_get_falls_back_to_history_when_the_row_is_gone(self, alice, login):
        record = EngineHistory.objects.create(
            ticket_id="8c5a5c4e-26b8-4bb6-9f87-5d0f1c0c7d10", label_value="alice-IDE,python-python3",
            create_user="alice", engine_type="python", service_instance="host1:40002",
            ecm_instance="host1:9102", status="ShuttingDown", metrics={"rss": 1},
        )  # fmt: skip
        data = body(
            login("alice").post(
                f"{M}/getEngineConn", {"applicationName": "x", "instance": "host1:40002"}, format="json"
            )
        )["data"]
        assert data["engine"]["nodeStatus"] == "ShuttingDown"
        assert data["engine"]["ticketId"] == str(record.ticket_id)
        assert data["ecMetrics"] == '{"rss": 1}'

    def test_a_kill_decides_once_and_a_repeat_says_already_stopping(self, alice, login, sent, settings):
        settings.ENGINE_KILL_WAIT = 0.2
        make_engine(make_ecm(), instance="host1:40001", pid=1)
        client = login("alice")
        first = body(
            client.post(f"{M}/killEngineConn", {"applicationName": "x", "instance": "host1:40001"}, format="json")
        )
        second = body(
            client.post(f"{M}/killEngineConn", {"applicationName": "x", "instance": "host1:40001"}, format="json")
        )
        assert first["message"] == "Kill engineConn succeed."
        assert second["status"] == 0 and "already stopping/stopped" in second["message"]
        assert [name for name, _, _ in sent] == ["engines.tasks.kill_engine"]

    def test_an_admin_token_may_kill_any_engine(self, alice, sent, settings):
        settings.ENGINE_KILL_WAIT = 0.1
        make_engine(make_ecm(), instance="host1:40001")
        token = Token(name="ops", is_admin=True)
        token.set_code("OPS-1")
        token.save()
        response = APIClient().post(
            f"{M}/killEngineConn", {"applicationName": "x", "instance": "host1:40001"}, format="json",
            HTTP_TOKEN_CODE="OPS-1", HTTP_TOKEN_USER="ops",
        )  # fmt: skip
        assert body(response)["status"] == 0
        assert EngineConn.objects.get().status == NodeStatus.SHUTTING_DOWN


@pytest.mark.django_db(transaction=True)
class TestEngineKillBatch:
    def test_the_console_form_with_engine_type_works(self, alice, login, sent, settings):
        settings.ENGINE_KILL_WAIT = 0.1
        ecm = make_ecm()
        make_engine(ecm, instance="host1:40001")
        make_engine(ecm, instance="host1:40002")
        response = login("alice").post(
            f"{M}/rm/enginekill",
            [
                {"engineType": "linkis-cg-engineconn", "engineInstance": "host1:40001"},
                {"applicationName": "EngineConn", "engineInstance": "host1:40002"},
            ],
            format="json",
        )
        assert body(response)["message"] == "Kill engineConn succeed."
        assert sorted(body(response)["data"]["killed"]) == ["host1:40001", "host1:40002"]
        assert set(EngineConn.objects.values_list("status", flat=True)) == {NodeStatus.SHUTTING_DOWN}

    def test_one_forbidden_element_stops_the_whole_batch(self, alice, bob, login, sent):
        ecm = make_ecm()
        make_engine(ecm, instance="host1:40001")
        make_engine(ecm, instance="host1:40002", owner="bob")
        response = login("alice").post(
            f"{M}/rm/enginekill",
            [{"engineInstance": "host1:40001"}, {"engineInstance": "host1:40002"}],
            format="json",
        )
        assert response.status_code == 400
        assert "no permission to kill" in body(response)["message"]
        assert set(EngineConn.objects.values_list("status", flat=True)) == {NodeStatus.UNLOCK}
        assert sent == []

    def test_an_unknown_element_stops_the_whole_batch(self, alice, login, sent):
        make_engine(make_ecm(), instance="host1:40001")
        response = login("alice").post(
            f"{M}/rm/enginekill", [{"engineInstance": "host1:40001"}, {"engineInstance": "gone:1"}], format="json"
        )
        assert "gone:1" in body(response)["message"]
        assert EngineConn.objects.get().status == NodeStatus.UNLOCK

    @pytest.mark.parametrize("payload", [{}, [], "x", [{"engineInstance": 5}], [{}], ["host1:40001"]])
    def test_bad_bodies_are_refused(self, alice, login, payload):
        response = login("alice").post(f"{M}/rm/enginekill", payload, format="json")
        assert response.status_code == 400
        assert body(response)["status"] == 1


# --- end to end, with a real agent ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_create_kill_and_read_history_with_a_real_agent(start_agent, make_user, login):
    make_user("alice")
    agent = start_agent()
    client = login("alice")
    response = client.post(
        f"{M}/createEngineConn", {"labels": PYTHON, "timeout": 60000}, format="json", HTTP_X_REQUEST_ID="req-e2e-1"
    )
    assert response["X-Request-ID"] == "req-e2e-1"
    created = body(response)
    assert created["status"] == 0, created
    assert created["message"] == "create engineConn succeed."
    engine_map = created["data"]["engine"]
    assert engine_map["nodeStatus"] == "Unlock"
    instance = engine_map["serviceInstance"]["instance"]
    engine = EngineConn.objects.get(instance=instance)
    assert psutil.pid_exists(engine.pid)

    killed = body(client.post(f"{M}/killEngineConn", {"applicationName": "x", "instance": instance}, format="json"))
    assert killed["message"] == "Kill engineConn succeed."
    assert killed["data"]["ended"] is True
    engine.refresh_from_db()
    assert not psutil.pid_exists(engine.pid) or psutil.Process(engine.pid).status() == psutil.STATUS_ZOMBIE

    got = body(client.post(f"{M}/getEngineConn", {"applicationName": "x", "instance": instance}, format="json"))
    assert got["data"]["engine"]["nodeStatus"] == "ShuttingDown"
    # The request id travelled with the launch task to the agent's log lines.
    assert "req=req-e2e-1" in agent.log.read_text()


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_ask_locks_a_new_engine_then_reuses_it_once_unlocked(start_agent, make_user, login):
    make_user("alice")
    start_agent()
    client = login("alice")
    first = body(client.post(f"{M}/askEngineConn", {"labels": PYTHON, "timeOut": 60000}, format="json"))
    assert first["message"] == "create engineConn ended.", first
    assert first["data"]["engine"]["nodeStatus"] == "Idle"
    engine = EngineConn.objects.get()

    # Locked: a second ask creates another engine rather than sharing it.
    second = body(client.post(f"{M}/askEngineConn", {"labels": PYTHON, "timeOut": 60000}, format="json"))
    assert second["message"] == "create engineConn ended."
    assert EngineConn.objects.live().count() == 2

    # Unlocked again: it is reused.
    from engines.remote import call_engine
    from engines.services import set_runtime_status

    call_engine(engine, "POST", "/unlock", {"lock": first["data"]["engine"]["lock"]})
    set_runtime_status(engine.pk, NodeStatus.UNLOCK)
    third = body(client.post(f"{M}/askEngineConn", {"labels": PYTHON, "timeOut": 60000}, format="json"))
    assert third["message"] == "reuse engineConn ended."
    assert third["data"]["engine"]["serviceInstance"]["instance"] == engine.instance
    assert EngineConn.objects.live().count() == 2

    # executeOnce never reuses.
    once = body(
        client.post(
            f"{M}/askEngineConn", {"labels": {**PYTHON, "executeOnce": "true"}, "timeOut": 60000}, format="json"
        )
    )
    assert once["message"] == "create engineConn ended."

"""The ECM endpoints (EMRestfulApi): listAllEMs, listAllECMHealthyStatus, modifyEMInfo, the ECM
operators, task-prediction and reset-resource, and the ECM lifecycle for operators (draining and
removal), all through the real login or token authentication."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from engines.exceptions import AdmissionError
from engines.models import EngineConn, EngineHistory
from engines.services import EngineRequest, admit_engine
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.exceptions import ManagerError
from linkismanager.labels import EM_INSTANCE, SERVER_ALIAS, TENANT, format_em_instance
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord, Label, Token, UserQuota
from linkismanager.resources import LoadInstance
from linkismanager.services import record_ecm_heartbeat, remove_ecm, set_pinned_health, stop_ecm
from tests.conftest import API, PASSWORD
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

EM = f"{API}/linkisManager"
ONLY_ADMIN = "error code(错误码): 210003, error message(错误信息): Only admin can modify ECMs(只有管理员才能修改ECM)."
ECM_APP = "linkis-cg-engineconnmanager"


def ecm_with_labels(instance: str, **fields) -> EngineConnManager:
    """An ECM as its agent registers it: serverAlias and emInstance labels (plus any given)."""
    labels = {SERVER_ALIAS: ECM_APP, EM_INSTANCE: format_em_instance(instance), **fields.pop("labels", {})}
    return make_ecm(instance, labels=labels, **fields)


def labels_of(ecm: EngineConnManager) -> dict[str, str]:
    return dict(Label.objects.filter(ecm=ecm).values_list("key", "value"))


def make_token(code: str, *, is_admin: bool) -> Token:
    token = Token(name=code, is_admin=is_admin)
    token.set_code(code)
    token.save()
    return token


def token_client(code: str, user: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_TOKEN_CODE=code, HTTP_TOKEN_USER=user)
    return client


@pytest.fixture
def admin(hadoop, login) -> APIClient:
    return login("hadoop")


@pytest.fixture
def user(alice, login) -> APIClient:
    return login("alice")


@pytest.fixture
def ecm() -> EngineConnManager:
    """host1:9102, 100 GiB / 100 cores / 50 instances, a running and a starting engine of alice."""
    ecm = ecm_with_labels("host1:9102")
    make_engine(ecm, instance="host1:40001", memory=2 * GIB, cores=2)
    make_engine(ecm, status=NodeStatus.STARTING, memory=1 * GIB, cores=1)
    return ecm


def ok(response) -> dict:
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == 0, body
    return body


def refused(response, http: int = 400) -> str:
    body = response.json()
    assert response.status_code == http, body
    assert body["status"] == (1 if http in (400, 404, 405) else body["status"]), body
    assert body["method"].startswith("/api/linkisManager/"), body
    return body["message"]


def modify(client: APIClient, **body):
    payload = {"applicationName": ECM_APP, "instance": "host1:9102", **body}
    return client.put(f"{EM}/modifyEMInfo", payload, format="json")


# --- Permissions ------------------------------------------------------------------------------------


ENDPOINTS = [
    ("get", "listAllEMs", None, True),
    ("get", "listAllECMHealthyStatus", None, False),
    ("put", "modifyEMInfo", {"applicationName": ECM_APP, "instance": "host1:9102"}, True),
    ("get", "reset-resource", None, True),
    ("get", "task-prediction?engineType=python-python3&creator=IDE", None, False),
]


@pytest.mark.parametrize(("verb", "path", "body", "admin_only"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_the_permission_matrix(ecm, alice, hadoop, login, verb, path, body, admin_only):
    def call(client: APIClient):
        return getattr(client, verb)(f"{EM}/{path}", body, format="json")

    # Anonymous: the Linkis not-logged-in envelope.
    response = call(APIClient())
    assert response.status_code == 401
    assert response.json()["status"] == -1
    assert response.json()["method"] == f"/api/linkisManager/{path.split('?')[0]}"

    # A logged-in user who is not an admin.
    response = call(login("alice"))
    if admin_only:
        message = refused(response)
        expected = (
            ONLY_ADMIN if path != "reset-resource" else "Only Admin Can Use Reset Resource (重置资源仅管理员使用)"
        )
        assert message == expected
    else:
        ok(response)

    # An admin, by session and by an admin token; a non-admin token is a plain user.
    ok(call(login("hadoop")))
    make_token("ADMIN-TOKEN-1", is_admin=True)
    ok(call(token_client("ADMIN-TOKEN-1", "carol")))
    make_token("USER-TOKEN-1", is_admin=False)
    response = call(token_client("USER-TOKEN-1", "carol"))
    if admin_only:
        refused(response)
    else:
        ok(response)


@pytest.mark.parametrize(
    "path", ["executeECMOperation", "executeECMOperationByEC", "openEngineLog"], ids=lambda path: path
)
def test_the_log_operations_need_a_login(path):
    response = APIClient().post(f"{EM}/{path}", {}, format="json")
    assert response.status_code == 401
    assert response.json()["status"] == -1


def test_a_bad_token_is_refused_as_not_logged_in(ecm):
    response = token_client("NO-SUCH-TOKEN", "hadoop").get(f"{EM}/listAllEMs")
    assert response.status_code == 401
    assert response.json()["status"] == -1


# --- listAllEMs -------------------------------------------------------------------------------------


def test_list_all_ems_shows_what_the_console_reads(admin, ecm):
    record_ecm_heartbeat(
        ecm.instance,
        host_metrics={
            "maxMemory": 64 * GIB,
            "usedMemory": 16 * GIB,
            "systemCPUUsed": 12.5,
            "systemLeftMemory": 48 * GIB,
        },
    )
    ecm.description = "rack A"
    ecm.save(update_fields=["description"])

    body = ok(admin.get(f"{EM}/listAllEMs"))

    assert body["message"] == "OK"
    [row] = body["data"]["EMs"]
    assert row["applicationName"] == ECM_APP
    assert row["instance"] == "host1:9102"
    assert row["nodeHealthy"] == "Healthy"
    assert row["nodeStatus"] == "Running"
    assert row["owner"] == "hadoop"
    assert row["description"] == "rack A"
    assert isinstance(row["startTime"], int) and row["startTime"] > 1_600_000_000_000
    assert {(label["labelKey"], label["stringValue"]) for label in row["labels"]} == {
        (SERVER_ALIAS, ECM_APP),
        (EM_INSTANCE, f"{ECM_APP}-host1:9102"),
    }
    assert row["maxResource"] == {"memory": 100 * GIB, "cores": 100, "instances": 50, "instance": 50}
    assert row["minResource"] == {"memory": 10 * GIB, "cores": 2, "instances": 2, "instance": 2}
    # Derived from the live engines: the running one uses, the starting one locks.
    assert row["usedResource"] == {"memory": 2 * GIB, "cores": 2, "instances": 1, "instance": 1}
    assert row["lockedResource"] == {"memory": 1 * GIB, "cores": 1, "instances": 1, "instance": 1}
    assert row["leftResource"] == {"memory": 97 * GIB, "cores": 97, "instances": 48, "instance": 48}
    assert row["nodeOverLoadInfo"] == {
        "maxMemory": 64 * GIB,
        "usedMemory": 16 * GIB,
        "systemCPUUsed": 12.5,
        "systemLeftMemory": 48 * GIB,
    }
    assert row["usedMemory"] == 16 * GIB
    assert (row["pinnedHealth"], row["pinnedBy"], row["pinnedAt"], row["lost"]) == (None, None, None, False)


def test_list_all_ems_shows_the_pin_who_and_when(admin, ecm):
    set_pinned_health(ecm, NodeHealthy.UNHEALTHY, actor="hadoop", reason="disk failing")

    [row] = ok(admin.get(f"{EM}/listAllEMs"))["data"]["EMs"]

    assert (row["nodeHealthy"], row["reportedHealth"], row["pinnedHealth"]) == ("UnHealthy", "Healthy", "UnHealthy")
    assert (row["pinnedBy"], row["pinnedReason"], row["msg"]) == ("hadoop", "disk failing", "disk failing")
    assert isinstance(row["pinnedAt"], int)


@pytest.fixture
def three_ecms() -> None:
    ecm_with_labels("b-host:9102", owner="Hadoop", labels={TENANT: "teamB"})
    ecm_with_labels("a-host:9102", owner="hadoop", labels={TENANT: "teamC"})
    lost = ecm_with_labels("c-host:9102", owner="root", labels={TENANT: "teamA"})
    EngineConnManager.objects.filter(pk=lost.pk).update(lost_at=datetime(2024, 1, 1, tzinfo=UTC))
    ecm_with_labels("d-host:9102", owner="root")


def instances(response) -> list[str]:
    return [row["instance"] for row in ok(response)["data"]["EMs"]]


def test_list_all_ems_is_sorted_by_instance(admin, three_ecms):
    assert instances(admin.get(f"{EM}/listAllEMs")) == ["a-host:9102", "b-host:9102", "c-host:9102", "d-host:9102"]


def test_tenant_label_filters_by_part_of_the_tenant_and_sorts_by_tenant(admin, three_ecms):
    # ECMs without a tenant are left out; the rest sorted by tenant, not instance.
    assert instances(admin.get(f"{EM}/listAllEMs", {"tenantLabel": "team"})) == [
        "c-host:9102",
        "b-host:9102",
        "a-host:9102",
    ]
    assert instances(admin.get(f"{EM}/listAllEMs", {"tenantLabel": "TEAMB"})) == ["b-host:9102"]
    assert instances(admin.get(f"{EM}/listAllEMs", {"tenantLabel": "nobody"})) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"instance": "host:91"}, ["a-host:9102", "b-host:9102", "c-host:9102", "d-host:9102"]),
        ({"instance": "b-ho"}, ["b-host:9102"]),
        ({"owner": "HADOOP"}, ["a-host:9102", "b-host:9102"]),
        ({"nodeHealthy": "UnHealthy"}, ["c-host:9102"]),
        ({"nodeHealthy": "Healthy"}, ["a-host:9102", "b-host:9102", "d-host:9102"]),
        ({"nodeHealthy": "Healthy", "owner": "root"}, ["d-host:9102"]),
        ({"nodeHealthy": ""}, ["a-host:9102", "b-host:9102", "c-host:9102", "d-host:9102"]),
    ],
)
def test_list_all_ems_filters(admin, three_ecms, query, expected):
    assert instances(admin.get(f"{EM}/listAllEMs", query)) == expected


def test_a_pinned_health_is_what_the_health_filter_sees(admin, three_ecms):
    set_pinned_health(EngineConnManager.objects.get(instance="a-host:9102"), "StockAvailable", actor="hadoop")
    assert instances(admin.get(f"{EM}/listAllEMs", {"nodeHealthy": "StockAvailable"})) == ["a-host:9102"]


def test_an_unknown_health_name_is_refused_naming_it(admin, three_ecms):
    message = refused(admin.get(f"{EM}/listAllEMs", {"nodeHealthy": "Sick"}))
    assert "nodeHealthy" in message and "Sick" in message and "StockAvailable" in message


def test_list_all_ems_costs_the_same_queries_for_two_or_ten_ecms(admin):
    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            ok(admin.get(f"{EM}/listAllEMs"))
        return len(queries)

    for index in range(2):
        make_engine(ecm_with_labels(f"n{index}:9102", labels={TENANT: f"t{index}"}), instance=f"n{index}:1")
    with_two = cost()
    for index in range(2, 10):
        make_engine(ecm_with_labels(f"n{index}:9102", labels={TENANT: f"t{index}"}), instance=f"n{index}:1")
    assert cost() == with_two
    assert len(ok(admin.get(f"{EM}/listAllEMs"))["data"]["EMs"]) == 10


# --- listAllECMHealthyStatus -----------------------------------------------------------------------

FIVE = ["Healthy", "UnHealthy", "WARN", "StockAvailable", "StockUnavailable"]


@pytest.mark.parametrize("query", [{}, {"onlyEditable": "true"}, {"onlyEditable": "false"}, {"onlyEditable": "TRUE"}])
def test_the_five_health_names_with_or_without_only_editable(user, query):
    assert ok(user.get(f"{EM}/listAllECMHealthyStatus", query))["data"] == {"nodeHealthy": FIVE}


def test_only_editable_must_be_a_boolean(user):
    assert "onlyEditable" in refused(user.get(f"{EM}/listAllECMHealthyStatus", {"onlyEditable": "maybe"}))


# --- modifyEMInfo ----------------------------------------------------------------------------------


def test_modify_em_info_as_the_console_sends_it(admin, ecm):
    response = modify(
        admin,
        emStatus="UnHealthy",
        description="rack B, disk failing",
        labels=[
            {"labelKey": EM_INSTANCE, "stringValue": f"{ECM_APP}-host1:9102"},
            {"labelKey": SERVER_ALIAS, "stringValue": "ignored"},
            {"labelKey": TENANT, "stringValue": "teamA"},
        ],
    )

    body = ok(response)
    assert body["message"] == "success"
    assert body["data"] == {"nodeHealthy": "UnHealthy"}
    ecm.refresh_from_db()
    assert (ecm.health, ecm.pinned_health, ecm.pinned_by, ecm.reported_health) == (
        "UnHealthy",
        "UnHealthy",
        "hadoop",
        "Healthy",
    )
    assert ecm.pinned_at is not None
    assert ecm.description == "rack B, disk failing"
    # Non-modifiable labels are ignored: the ECM's own are kept as they were.
    assert labels_of(ecm) == {SERVER_ALIAS: ECM_APP, EM_INSTANCE: f"{ECM_APP}-host1:9102", TENANT: "teamA"}
    entry = AuditEntry.objects.get(action="modify_ecm")
    assert (entry.actor, entry.via, entry.target) == ("hadoop", "api", "host1:9102")
    assert entry.after["labels"][TENANT] == "teamA"
    assert AuditEntry.objects.filter(action="set_health", actor="hadoop").exists()
    record = HealthRecord.objects.filter(ecm=ecm, field="health").first()
    assert (record.old, record.new, record.actor) == ("Healthy", "UnHealthy", "hadoop")


def test_em_status_is_optional_and_the_current_value_changes_nothing(admin, ecm):
    ok(modify(admin, description="only the remark"))
    ok(modify(admin, emStatus="Healthy", description="again"))
    ecm.refresh_from_db()
    assert ecm.pinned_health is None and ecm.pinned_at is None
    assert ecm.description == "again"
    assert not AuditEntry.objects.filter(action="set_health").exists()


def test_a_self_reported_overload_sent_back_unchanged_is_not_pinned(admin, ecm):
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.STOCK_AVAILABLE)
    ok(modify(admin, emStatus="StockAvailable", description="x"))
    ecm.refresh_from_db()
    assert ecm.pinned_health is None
    # So the ECM recovers by itself when its load drops.
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)
    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.HEALTHY


def test_nulls_are_no_change(admin, ecm):
    Label.objects.create(ecm=ecm, key=TENANT, value="teamA")
    ok(modify(admin, emStatus=None, description=None, labels=None))
    ecm.refresh_from_db()
    assert ecm.description == "" and ecm.pinned_health is None
    assert labels_of(ecm)[TENANT] == "teamA"
    assert not AuditEntry.objects.exists()


def test_an_empty_label_list_removes_the_modifiable_labels_only(admin, ecm):
    Label.objects.create(ecm=ecm, key=TENANT, value="teamA")
    ok(modify(admin, labels=[]))
    assert labels_of(ecm) == {SERVER_ALIAS: ECM_APP, EM_INSTANCE: f"{ECM_APP}-host1:9102"}


def test_an_empty_description_clears_the_remark(admin, ecm):
    ecm.description = "old"
    ecm.save(update_fields=["description"])
    ok(modify(admin, description=""))
    ecm.refresh_from_db()
    assert ecm.description == ""


@pytest.mark.parametrize(
    ("labels", "named"),
    [
        ([{"labelKey": TENANT, "stringValue": "team-A"}], "tenant"),
        ([{"labelKey": "userCreator", "stringValue": "alice"}], "userCreator"),
        ([{"labelKey": TENANT, "stringValue": "a"}, {"labelKey": TENANT, "stringValue": "b"}], "repeat label"),
        ([{"labelKey": TENANT}], "labels[0].stringValue"),
        ([{"labelKey": "bad key!", "stringValue": "x"}], "bad key!"),
        ("tenant=teamA", "labels"),
        ([42], "labels[0]"),
    ],
)
def test_a_bad_label_is_refused_naming_it_and_nothing_is_written(admin, ecm, labels, named):
    message = refused(modify(admin, emStatus="UnHealthy", description="changed", labels=labels))

    assert named in message
    ecm.refresh_from_db()
    assert (ecm.health, ecm.pinned_health, ecm.description) == ("Healthy", None, "")
    assert labels_of(ecm) == {SERVER_ALIAS: ECM_APP, EM_INSTANCE: f"{ECM_APP}-host1:9102"}
    assert not AuditEntry.objects.exists()


def test_a_duplicate_label_has_linkis_code_210003(admin, ecm):
    message = refused(
        modify(admin, labels=[{"labelKey": TENANT, "stringValue": "a"}, {"labelKey": TENANT, "stringValue": "b"}])
    )
    assert message.startswith("error code(错误码): 210003, error message(错误信息): Failed to update label")


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"applicationName": ECM_APP}, "instance cannot be null(请求参数instance不能为空)"),
        ({"applicationName": ECM_APP, "instance": ""}, "error code(错误码): 21001"),
        ({"instance": "host1:9102"}, "applicationName cannot be null"),
        ({"applicationName": ECM_APP, "instance": 9102}, "instance must be a string"),
        ({"applicationName": ECM_APP, "instance": "host1:9102", "emStatus": "Sick"}, "emStatus"),
        ({"applicationName": ECM_APP, "instance": "host1:9102", "emStatus": "healthy"}, "emStatus"),
        ({"applicationName": ECM_APP, "instance": "host1:9102", "emStatus": 1}, "emStatus"),
        ({"applicationName": ECM_APP, "instance": "host1:9102", "description": 5}, "description must be a string"),
        ({"applicationName": ECM_APP, "instance": "host1:9102", "description": "x" * 257}, "description is too long"),
        ({"applicationName": ECM_APP, "instance": "nohost:1"}, "ECM nohost:1 does not exist"),
        ({"applicationName": ECM_APP, "instance": "host1:40001"}, "host1:40001 is an engine"),
    ],
)
def test_modify_em_info_refuses_bad_requests_naming_the_problem(admin, ecm, body, named):
    message = refused(admin.put(f"{EM}/modifyEMInfo", body, format="json"))
    assert named in message
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '"text"'])
def test_modify_em_info_refuses_a_body_that_is_not_an_object(admin, ecm, body):
    response = admin.put(f"{EM}/modifyEMInfo", body, content_type="application/json")
    refused(response)


def test_a_pinned_unhealthy_ecm_stays_so_through_heartbeats_and_gets_no_engines(admin, ecm):
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))
    ok(modify(admin, emStatus="UnHealthy"))

    # Its agent keeps reporting Healthy: the admin's pin wins.
    for _ in range(3):
        record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)
    ecm.refresh_from_db()
    assert (ecm.reported_health, ecm.health) == ("Healthy", "UnHealthy")
    [row] = ok(admin.get(f"{EM}/listAllEMs"))["data"]["EMs"]
    assert row["nodeHealthy"] == "UnHealthy"
    with pytest.raises(AdmissionError):
        admit_engine(request, actor="alice")

    # An admin sets Healthy: the pin is gone and engines land again.
    ok(modify(admin, emStatus="Healthy"))
    ecm.refresh_from_db()
    assert (ecm.pinned_health, ecm.health) == (None, "Healthy")
    assert admit_engine(request, actor="alice").ecm_id == ecm.pk


# --- ECM operators --------------------------------------------------------------------------------


def operation(client: APIClient, path: str = "executeECMOperation", instance: str = "host1:9102", **parameters):
    body = {"applicationName": ECM_APP, "instance": instance, "parameters": parameters}
    return client.post(f"{EM}/{path}", body, format="json")


def test_an_ecm_operation_without_an_operator_has_linkis_code_20031(user, ecm):
    message = refused(operation(user, engineConnInstance="host1:40001", logType="stdout"))
    assert message == "error code(错误码): 20031, error message(错误信息): __operator_name__ does not exist."


@pytest.mark.parametrize("name", ["engineConnKill", "", 7])
def test_an_unknown_operator_is_a_clear_error(user, ecm, name):
    message = refused(operation(user, __operator_name__=name, engineConnInstance="host1:40001", logType="stdout"))
    if name == "":
        assert "20031" in message
    else:
        assert "Unknown ECM operator" in message and "engineConnLog" in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"applicationName": ECM_APP, "instance": "host1:9102"}, "parameters cannot be null"),
        ({"applicationName": ECM_APP, "instance": "host1:9102", "parameters": "x"}, "parameters must be a JSON object"),
        ({"applicationName": ECM_APP, "parameters": {}}, "instance cannot be null"),
        (
            {"applicationName": ECM_APP, "instance": "ghost:1", "parameters": {"__operator_name__": "engineConnLog"}},
            "ECM node :[ghost:1]  does not exist",
        ),
        (
            {
                "applicationName": ECM_APP,
                "instance": "host1:40001",
                "parameters": {"__operator_name__": "engineConnLog", "logType": "stdout"},
            },
            "host1:40001 is an engine",
        ),
        (
            {
                "applicationName": ECM_APP,
                "instance": "host1:9102",
                "parameters": {"__operator_name__": "engineConnLog", "logType": "secrets", "engineConnInstance": "x"},
            },
            "parameters.logType must be one of",
        ),
        (
            {
                "applicationName": ECM_APP,
                "instance": "host1:9102",
                "parameters": {"__operator_name__": "engineConnLog", "logType": "stdout", "engineConnInstance": 1},
            },
            "parameters.engineConnInstance must be a string",
        ),
        (
            {
                "applicationName": ECM_APP,
                "instance": "host1:9102",
                "parameters": {"__operator_name__": "engineConnLog", "logType": "stdout", "pageSize": "many"},
            },
            "parameters.pageSize must be a whole number",
        ),
    ],
)
def test_execute_ecm_operation_refuses_bad_requests(user, ecm, body, named):
    assert named in refused(user.post(f"{EM}/executeECMOperation", body, format="json"))


def test_another_users_engine_log_is_refused_through_the_ecm_operator(bob, login, ecm):
    bob_client = login("bob")
    message = refused(
        operation(bob_client, __operator_name__="engineConnLog", engineConnInstance="host1:40001", logType="stdout")
    )
    assert "no permission" in message and "host1:40001" in message


def test_a_log_folder_is_named_only_with_an_engine_unless_admin(user, ecm):
    message = refused(operation(user, __operator_name__="engineConnLog", logType="stdout", logDirSuffix="alice/x/logs"))
    assert "engineConnInstance is required" in message


def test_another_folder_than_the_engines_own_is_refused_to_its_owner(user, ecm):
    engine = EngineConn.objects.get(instance="host1:40001")
    EngineConn.objects.filter(pk=engine.pk).update(log_dir="alice/20240101/python/t/logs")
    message = refused(
        operation(
            user,
            __operator_name__="engineConnLog",
            engineConnInstance="host1:40001",
            logType="stdout",
            logDirSuffix="bob/20240101/python/t/logs",
        )
    )
    assert message.startswith("You have no permission to get log with path:bob/20240101/python/t/logs in ECM:")


def test_an_engine_on_another_ecm_is_refused(user, ecm):
    other = ecm_with_labels("host2:9102")
    make_engine(other, instance="host2:40001")
    message = refused(
        operation(user, __operator_name__="engineConnLog", engineConnInstance="host2:40001", logType="stdout")
    )
    assert "runs on ECM host2:9102, not host1:9102" in message


def test_an_ecm_whose_agent_is_stopped_cannot_read_logs(user, ecm):
    EngineConn.objects.filter(instance="host1:40001").update(log_dir="alice/20240101/python/t/logs")
    stop_ecm(ecm.instance)
    message = refused(
        operation(user, __operator_name__="engineConnLog", engineConnInstance="host1:40001", logType="stdout")
    )
    assert "ECM host1:9102 is ShuttingDown" in message


def test_an_ecm_that_does_not_answer_in_time_is_a_clear_error(user, settings):
    # An ECM that is registered and Running, but whose agent consumes nothing.
    silent = ecm_with_labels("silent-ecm-for-timeout:9102")
    make_engine(silent, instance="silent-ecm-for-timeout:40001", log_dir="alice/20240101/python/t/logs")
    settings.ECM_TASK_TIMEOUT = 0.5

    message = refused(
        operation(
            user,
            instance="silent-ecm-for-timeout:9102",
            __operator_name__="engineConnLog",
            engineConnInstance="silent-ecm-for-timeout:40001",
            logType="stdout",
        )
    )
    assert "ECM silent-ecm-for-timeout:9102 did not answer within 0.5 s" in message


@pytest.mark.parametrize(
    ("instance", "named"),
    [("host1:9102", "host1:9102 is an ECM"), ("ghost:1", "Engine ghost:1 does not exist")],
)
def test_execute_ecm_operation_by_ec_needs_an_engine(user, ecm, instance, named):
    response = operation(
        user, path="executeECMOperationByEC", instance=instance, __operator_name__="engineConnLog", logType="stdout"
    )
    assert named in refused(response)


def test_execute_ecm_operation_by_ec_is_for_the_owner_or_an_admin(bob, login, ecm):
    response = operation(
        login("bob"), path="executeECMOperationByEC", instance="host1:40001", __operator_name__="engineConnLog"
    )
    assert refused(response) == (
        "You have no permission to execute ECM Operation by this EngineConn "
        "ServiceInstance(linkis-cg-engineconn, host1:40001, 0)"
    )


# --- openEngineLog (request checks; reading real logs is in tests/engines/test_api_logs.py) ----------


def open_log(client: APIClient, instance: str = "host1:40001", **extra):
    body = {"applicationName": "linkis-cg-engineconn", "instance": instance, **extra}
    return client.post(f"{EM}/openEngineLog", body, format="json")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, "parameters cannot be null"),
        ({"parameters": {}}, "parameters.logType is required"),
        ({"parameters": {"logType": "../../etc/passwd"}}, "parameters.logType must be one of"),
        ({"parameters": {"logType": "stdout", "fromLine": -1}}, "parameters.fromLine must be between"),
        ({"parameters": {"logType": "stdout", "fromLine": True}}, "parameters.fromLine must be a whole number"),
        ({"parameters": {"logType": "stdout", "lastRows": 5001}}, "parameters.lastRows must be between 0 and 5000"),
        ({"parameters": {"logType": "stdout", "enableTail": "sometimes"}}, "parameters.enableTail"),
        ({"parameters": {"logType": "stdout", "onlyKeywords": 3}}, "parameters.onlyKeywords"),
        ({"parameters": {"logType": "stdout", "logDirSuffix": ["a"]}}, "parameters.logDirSuffix must be a string"),
        ({"parameters": {"logType": "stdout"}, "emInstance": 5}, "emInstance must be a string"),
        ({"parameters": {"logType": "stdout"}, "emInstance": "ghost:1"}, "ECM node :[ghost:1]"),
    ],
)
def test_open_engine_log_refuses_bad_requests(user, ecm, extra, named):
    assert named in refused(open_log(user, **extra))


@pytest.mark.parametrize(
    ("instance", "named"),
    [("ghost:1", "EC instance: ghost:1 not exist"), ("host1:9102", "host1:9102 is an ECM")],
)
def test_open_engine_log_needs_a_known_engine(user, ecm, instance, named):
    assert named in refused(open_log(user, instance=instance, parameters={"logType": "stdout"}))


def test_open_engine_log_of_another_user_is_refused_even_with_a_log_folder(bob, login, ecm):
    response = open_log(login("bob"), parameters={"logType": "stdout", "logDirSuffix": "alice/20240101/python/t/logs"})
    assert "no permission" in refused(response)


def test_open_engine_log_finds_an_engine_gone_from_the_registry_through_its_history(bob, login, ecm):
    EngineHistory.objects.create(
        ticket_id="00000000-0000-0000-0000-000000000001",
        label_value="alice-IDE,python-python3",
        create_user="alice",
        engine_type="python",
        service_instance="host1:45555",
        ecm_instance="host1:9102",
        status=NodeStatus.SUCCESS,
        log_dir_suffix="alice/20240101/python/00000000-0000-0000-0000-000000000001/logs",
    )
    # Its owner is known from the record: another user is refused.
    assert "no permission" in refused(open_log(login("bob"), instance="host1:45555", parameters={"logType": "stdout"}))


def test_open_engine_log_checks_the_ecm_it_is_told(user, ecm):
    ecm_with_labels("host2:9102")
    response = open_log(user, emInstance="host2:9102", parameters={"logType": "stdout"})
    assert "runs on ECM host1:9102, not host2:9102" in refused(response)


# --- task-prediction -------------------------------------------------------------------------------


def predict(client: APIClient, **query):
    return client.get(f"{EM}/task-prediction", {"engineType": "python-python3", "creator": "IDE", **query})


def test_task_prediction_says_true_when_quota_and_an_ecm_have_room(user, ecm):
    data = ok(predict(user))["data"]

    assert data["checkResult"] is True
    assert data["reason"] == ""
    assert data["tenant"] is None and data["yarnResource"] is None
    assert data["ecmInstance"] == "host1:9102"
    # Alice's default quota is 20 GiB / 10 cores / 10 engines; her engines hold 3 GiB, 3 cores, 2.
    assert json.loads(data["userResource"]) == {"memory": 17 * GIB, "cores": 7, "instances": 8, "instance": 8}
    assert json.loads(data["ecmResource"]) == {"memory": 97 * GIB, "cores": 97, "instances": 48, "instance": 48}
    assert data["requestResource"] == {"memory": 1 * GIB, "cores": 1, "instances": 1, "instance": 1}
    # A forecast writes nothing, not even a quota row.
    assert not UserQuota.objects.exists()


def test_task_prediction_says_false_when_the_quota_is_short(user, ecm):
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=2)

    data = ok(predict(user))["data"]

    assert data["checkResult"] is False
    assert json.loads(data["userResource"])["instances"] == 0
    assert "quota" in data["reason"]
    assert data["ecmInstance"] == "host1:9102"


def test_task_prediction_says_false_when_the_ecm_is_short(user):
    ecm_with_labels("small:9102", max_memory=2 * GIB, min_memory=GIB + GIB // 2, max_cores=4, min_cores=0)

    data = ok(predict(user))["data"]

    assert data["checkResult"] is False
    assert data["ecmInstance"] == "small:9102"
    assert json.loads(data["ecmResource"])["memory"] == 2 * GIB
    assert "no ECM has" in data["reason"]


def test_task_prediction_says_false_when_no_healthy_ecm_matches(user, ecm):
    set_pinned_health(ecm, NodeHealthy.STOCK_AVAILABLE, actor="hadoop")

    data = ok(predict(user))["data"]

    assert (data["checkResult"], data["ecmResource"], data["ecmInstance"]) == (False, None, None)
    assert "no healthy ECM" in data["reason"]


def test_task_prediction_keeps_tenants_apart(user, ecm):
    ecm_with_labels("tenant-host:9102", labels={TENANT: "teamA"})

    assert ok(predict(user, tenant="teamA"))["data"]["ecmInstance"] == "tenant-host:9102"
    assert ok(predict(user))["data"]["ecmInstance"] == "host1:9102"
    assert ok(predict(user, tenant="teamZ"))["data"]["checkResult"] is False


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"engineType": ""}, "parameters:engineType can't be null (请求参数【engineType】不能为空)"),
        ({"creator": ""}, "parameters:creator can't be null (请求参数【creator】不能为空)"),
        ({"engineType": "python"}, "engineType"),
        ({"creator": "ID-E"}, "userCreator"),
        ({"tenant": "team-A"}, "tenant"),
    ],
)
def test_task_prediction_refuses_bad_requests(user, ecm, query, named):
    assert named in refused(predict(user, **query))


def test_only_an_admin_forecasts_for_another_user(user, admin, ecm):
    assert "another user" in refused(predict(user, username="bob"))
    data = ok(predict(admin, username="alice"))["data"]
    assert json.loads(data["userResource"])["instances"] == 8


# --- reset-resource --------------------------------------------------------------------------------


def test_reset_resource_recomputes_and_invents_nothing(admin, ecm):
    UserQuota.objects.create(user="bob", creator="IDE", engine_type="shell-1", max_instances=3)

    data = ok(admin.get(f"{EM}/reset-resource"))["data"]

    [row] = data["ecms"]
    assert row["instance"] == "host1:9102"
    assert row["usedResource"]["memory"] == 2 * GIB and row["lockedResource"]["memory"] == 1 * GIB
    users = {(u["username"], u["creator"], u["engineTypeWithVersion"]): u for u in data["users"]}
    assert set(users) == {("alice", "IDE", "python-python3"), ("bob", "IDE", "shell-1")}
    assert users[("alice", "IDE", "python-python3")]["usedResource"]["instances"] == 1
    assert users[("alice", "IDE", "python-python3")]["lockedResource"]["instances"] == 1
    assert users[("bob", "IDE", "shell-1")]["maxResource"]["instances"] == 3
    # Nothing is rewritten or deleted; the request is in the audit trail.
    assert UserQuota.objects.count() == 1
    assert AuditEntry.objects.filter(action="reset_resource", actor="hadoop").count() == 1


def test_reset_resource_for_one_ecm_and_one_user(admin, ecm):
    ecm_with_labels("host2:9102")
    data = ok(admin.get(f"{EM}/reset-resource", {"serviceInstance": "host2:9102", "username": "bob"}))["data"]
    assert [row["instance"] for row in data["ecms"]] == ["host2:9102"]
    assert data["users"] == []
    data = ok(admin.get(f"{EM}/reset-resource", {"serviceInstance": "*", "username": "*"}))["data"]
    assert len(data["ecms"]) == 2


@pytest.mark.parametrize(
    ("instance", "named"), [("ghost:1", "ECM ghost:1 does not exist"), ("host1:40001", "is an engine")]
)
def test_reset_resource_names_an_unknown_ecm(admin, ecm, instance, named):
    assert named in refused(admin.get(f"{EM}/reset-resource", {"serviceInstance": instance}))


def test_reset_resource_from_another_site_is_refused(admin, ecm):
    response = admin.get(f"{EM}/reset-resource", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert response.json()["status"] == 3
    assert not AuditEntry.objects.exists()


# --- ECM lifecycle: draining and removal ------------------------------------------------------------


def test_draining_keeps_running_engines_and_takes_no_new_ones(admin, ecm):
    running = EngineConn.objects.get(instance="host1:40001")
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))

    ok(modify(admin, emStatus="StockAvailable"))
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)

    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.STOCK_AVAILABLE
    running.refresh_from_db()
    assert running.status == NodeStatus.UNLOCK and running.is_live
    with pytest.raises(AdmissionError):
        admit_engine(request, actor="alice")
    assert ok(predict(admin, username="alice"))["data"]["checkResult"] is False


def test_a_running_ecm_is_not_removed(ecm):
    EngineConn.objects.update(ended_at=datetime(2024, 1, 1, tzinfo=UTC), status=NodeStatus.SUCCESS)
    with pytest.raises(ManagerError, match="is running; stop its agent"):
        remove_ecm(ecm, actor="root")
    assert EngineConnManager.objects.filter(pk=ecm.pk).exists()


def test_an_ecm_with_live_engines_is_not_removed(ecm):
    stop_ecm(ecm.instance)
    with pytest.raises(ManagerError, match="still has 2 live engines"):
        remove_ecm(ecm, actor="root")
    assert EngineConnManager.objects.filter(pk=ecm.pk).exists()


def test_a_decommissioned_ecm_is_removed_with_its_ended_engines_and_its_history_kept(ecm):
    ended = EngineConn.objects.get(instance="host1:40001")
    EngineHistory.objects.create(
        ticket_id=ended.ticket_id,
        label_value="alice-IDE,python-python3",
        create_user="alice",
        engine_type="python",
        service_instance="host1:40001",
        ecm_instance=ecm.instance,
        status=NodeStatus.SUCCESS,
    )
    EngineConn.objects.update(ended_at=datetime(2024, 1, 1, tzinfo=UTC), status=NodeStatus.SUCCESS)
    stop_ecm(ecm.instance)

    assert remove_ecm(ecm, actor="root", via="admin") == 2

    assert not EngineConnManager.objects.filter(instance="host1:9102").exists()
    assert not EngineConn.objects.exists()
    assert not Label.objects.exists()
    assert EngineHistory.objects.filter(ecm_instance="host1:9102").count() == 1
    entry = AuditEntry.objects.get(action="remove_ecm")
    assert (entry.actor, entry.via, entry.target) == ("root", "admin", "host1:9102")
    assert entry.before["labels"][EM_INSTANCE] == f"{ECM_APP}-host1:9102"
    assert entry.after == {"endedEnginesRemoved": 2}


def test_a_lost_ecm_without_live_engines_is_removed():
    lost = ecm_with_labels("lost:9102", lost_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert remove_ecm(lost, actor="root") == 0
    assert not EngineConnManager.objects.filter(instance="lost:9102").exists()


@pytest.fixture
def staff_client(make_user) -> Client:
    make_user("root", superuser=True)
    client = Client()
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    return client


def test_staff_remove_decommissioned_ecms_from_the_admin_and_running_ones_are_kept(staff_client, ecm):
    gone = ecm_with_labels("gone:9102")
    stop_ecm(gone.instance)

    response = staff_client.post(
        "/admin/linkismanager/engineconnmanager/",
        {"action": "remove_decommissioned", "_selected_action": [ecm.pk, gone.pk], "index": 0},
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Removed 1 ECM(s): gone:9102." in page
    assert "Not removed: ECM host1:9102 is running" in page
    assert list(EngineConnManager.objects.values_list("instance", flat=True)) == ["host1:9102"]
    assert AuditEntry.objects.filter(action="remove_ecm", via="admin", actor="root", target="gone:9102").exists()

"""listUserEngines, listEMEngines, modifyEngineInfo, batchSetEngineToUnHealthy and
executeEngineConnOperation through the real authentication (session cookie, token headers)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from engines.models import EngineConn
from engines.services import EngineRequest, admit_engine, record_engine_end
from linkismanager.choices import NodeStatus
from linkismanager.models import AuditEntry, HealthRecord, Label, Token
from linkismanager.resources import LoadInstance
from tests.conftest import API
from tests.engines.conftest import wait_for
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

BASE = f"{API}/linkisManager"
ECM_APP = "linkis-cg-engineconnmanager"
ENGINE_APP = "linkis-cg-engineconn"


# --- Fixtures and helpers -------------------------------------------------------------------------


def labelled(engine: EngineConn, **labels: str) -> EngineConn:
    for key, value in labels.items():
        Label.objects.create(engine=engine, key=key, value=value)
    return engine


def engine_labels(engine: EngineConn) -> dict[str, str]:
    return {label.key: label.value for label in Label.objects.filter(engine=engine)}


def an_engine(ecm, instance: str, *, owner: str = "alice", **fields) -> EngineConn:
    engine = make_engine(ecm, owner=owner, instance=instance, **fields)
    return labelled(
        engine,
        userCreator=engine.user_creator,
        engineType=engine.engine_type_label,
        serverAlias=ENGINE_APP,
        engineInstance=f"{ENGINE_APP}-{instance}",
        emInstance=f"{ECM_APP}-{ecm.instance}",
    )


@pytest.fixture
def ecm():
    return make_ecm("host1:9102", labels={"serverAlias": ECM_APP, "emInstance": f"{ECM_APP}-host1:9102"})


@pytest.fixture
def engine(ecm):
    return an_engine(ecm, "host1:40001")


@pytest.fixture
def users(alice, bob, hadoop):
    return {"alice": alice, "bob": bob, "hadoop": hadoop}


def make_token(code: str, *, admin: bool, users: str = "*") -> Token:
    token = Token(name=f"token-{code[-5:]}", legal_users=users, is_admin=admin)
    token.set_code(code)
    token.save()
    return token


def token_client(code: str, user: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_TOKEN_CODE=code, HTTP_TOKEN_USER=user)
    return client


def call(client: APIClient, verb: str, path: str, body=None):
    return getattr(client, verb)(f"{BASE}/{path}", body, format="json")


def ok(response, message: str = "OK") -> dict:
    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["status"] == 0 and payload["message"] == message, payload
    return payload["data"]


def refused(response, message: str | None = None, *, contains: str | None = None) -> dict:
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["status"] == 1, payload
    if message is not None:
        assert payload["message"] == message
    if contains is not None:
        assert contains in payload["message"], payload["message"]
    return payload


def coded(code: int, text: str) -> str:
    return f"error code(错误码): {code}, error message(错误信息): {text}."


def not_logged_in(response) -> None:
    assert response.status_code == 401
    assert response.json()["status"] == -1


# --- listUserEngines ---------------------------------------------------------------------------------


def test_list_user_engines_answers_the_callers_live_engines_as_engine_nodes(users, login, ecm, engine):
    # given alice's live engine, one of hers that ended, and one of bob's
    ended = an_engine(ecm, "host1:40002")
    record_engine_end(ended.pk, exit_code=0)
    an_engine(ecm, "host1:40003", owner="bob")

    # when alice lists her engines
    data = ok(call(login("alice"), "get", "listUserEngines"))

    # then only the live one, in Linkis' EngineNode form
    assert [node["serviceInstance"]["instance"] for node in data["engines"]] == ["host1:40001"]
    node = data["engines"][0]
    assert node["serviceInstance"]["applicationName"] == ENGINE_APP
    assert node["nodeStatus"] == "Unlock"
    assert node["owner"] == "alice"
    assert node["ticketId"] == str(engine.ticket_id)
    assert isinstance(node["startTime"], int)
    assert node["nodeHealthyInfo"]["nodeHealthy"] == "Healthy"
    assert node["emnode"]["serviceInstance"]["instance"] == "host1:9102"
    assert any(label["labelKey"] == "userCreator" and label["stringValue"] == "alice-IDE" for label in node["labels"])
    assert node["nodeResource"]["usedResource"]["memory"] == GIB


def test_list_user_engines_keeps_an_engine_that_is_stopping_until_its_end_is_recorded(users, login, ecm):
    an_engine(ecm, "host1:40001", status=NodeStatus.SHUTTING_DOWN)
    data = ok(call(login("alice"), "get", "listUserEngines"))
    assert [node["nodeStatus"] for node in data["engines"]] == ["ShuttingDown"]


def test_list_user_engines_never_answers_ecm_rows(users, login, ecm, engine):
    # hadoop owns the ECM but no engine
    assert ecm.owner == "hadoop"
    assert ok(call(login("hadoop"), "get", "listUserEngines")) == {"engines": []}


def test_list_user_engines_owner_match_is_exact(users, login, ecm):
    an_engine(ecm, "host1:40001", owner="Alice")
    assert ok(call(login("alice"), "get", "listUserEngines")) == {"engines": []}


def test_list_user_engines_does_not_query_per_engine(users, login, ecm):
    client = login("alice")
    an_engine(ecm, "host1:40001")
    with CaptureQueriesContext(connection) as one:
        ok(call(client, "get", "listUserEngines"))
    for port in range(40002, 40008):
        an_engine(ecm, f"host1:{port}")
    with CaptureQueriesContext(connection) as seven:
        data = ok(call(client, "get", "listUserEngines"))
    assert len(data["engines"]) == 7
    assert len(seven.captured_queries) == len(one.captured_queries)


def test_list_user_engines_with_a_token_lists_the_token_users_engines(users, ecm, engine):
    make_token("LINKIS-AUTH-plain", admin=False)
    data = ok(call(token_client("LINKIS-AUTH-plain", "alice"), "get", "listUserEngines"))
    assert len(data["engines"]) == 1


def test_list_user_engines_refuses_anonymous_callers(ecm, engine):
    not_logged_in(call(APIClient(), "get", "listUserEngines"))


# --- listEMEngines -------------------------------------------------------------------------------------


def em_body(instance: str = "host1:9102", **filters) -> dict:
    # The documented request example, in its JSON form.
    return {"em": {"serviceInstance": {"applicationName": ECM_APP, "instance": instance}}, **filters}


@pytest.fixture
def fleet(ecm):
    """Engines on host1: alice python Unlock, alice shell Busy, bob python Idle pinned UnHealthy;
    on host2: alice python Unlock; and an ended one on host1."""
    other = make_ecm("host2:9102")
    engines = {
        "python": an_engine(ecm, "host1:40001"),
        "shell": an_engine(ecm, "host1:40002", engine_type="shell", engine_version="1", status=NodeStatus.BUSY),
        "bob": an_engine(ecm, "host1:40003", owner="bob", status=NodeStatus.IDLE, pinned_health="UnHealthy"),
        "other": an_engine(other, "host2:40001"),
        "ended": an_engine(ecm, "host1:40004"),
    }
    record_engine_end(engines["ended"].pk, exit_code=0)
    return engines


def instances_of(data: dict) -> list[str]:
    return sorted(row["instance"] for row in data["engines"])


def test_list_em_engines_answers_the_ecms_live_engines_with_its_real_capacity(users, login, fleet):
    data = ok(call(login("hadoop"), "post", "listEMEngines", em_body()))

    assert instances_of(data) == ["host1:40001", "host1:40002", "host1:40003"]
    row = next(row for row in data["engines"] if row["instance"] == "host1:40001")
    assert row["applicationName"] == ENGINE_APP
    assert row["emInstance"] == "host1:9102"
    assert row["engineType"] == "python"
    assert row["nodeStatus"] == "Unlock"
    assert row["owner"] == "alice"
    assert row["nodeHealthy"] == "Healthy"
    assert row["resourceType"] == "LoadInstance"
    assert row["usedResource"] == {"memory": GIB, "cores": 1, "instances": 1, "instance": 1}
    # the ECM's real capacity and reserve, not Linkis' constants
    assert row["maxResource"] == {"memory": 100 * GIB, "cores": 100, "instances": 50, "instance": 50}
    assert row["minResource"] == {"memory": 10 * GIB, "cores": 2, "instances": 2, "instance": 2}
    assert row["leftResource"] == {"memory": 97 * GIB, "cores": 97, "instances": 47, "instance": 47}
    assert any(label["labelKey"] == "engineType" for label in row["labels"])


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"emInstance": "40002"}, ["host1:40002"]),
        ({"emInstance": "host1:4000"}, ["host1:40001", "host1:40002", "host1:40003"]),
        ({"nodeStatus": "Busy"}, ["host1:40002"]),
        ({"nodeStatus": "Unlock"}, ["host1:40001"]),
        ({"nodeStatus": "UnHealthy"}, ["host1:40003"]),
        ({"nodeStatus": "Healthy"}, ["host1:40001", "host1:40002"]),
        ({"owner": "BOB"}, ["host1:40003"]),
        ({"engineType": "PYTHON"}, ["host1:40001", "host1:40003"]),
        ({"engineType": "shell-1"}, ["host1:40002"]),
        ({"engineType": "python-python2"}, []),
        ({"owner": "alice", "engineType": "python"}, ["host1:40001"]),
        (
            {"emInstance": "", "nodeStatus": "", "owner": "", "engineType": ""},
            ["host1:40001", "host1:40002", "host1:40003"],
        ),
        ({"nodeStatus": None, "owner": None}, ["host1:40001", "host1:40002", "host1:40003"]),
    ],
)
def test_list_em_engines_filters(users, login, fleet, filters, expected):
    assert instances_of(ok(call(login("hadoop"), "post", "listEMEngines", em_body(**filters)))) == expected


def test_list_em_engines_of_an_unknown_ecm_is_empty(users, login, fleet):
    assert ok(call(login("hadoop"), "post", "listEMEngines", em_body("nohost:9102"))) == {"engines": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "em cannot be null(请求参数em不能为空)"),
        ({"em": None}, "em cannot be null(请求参数em不能为空)"),
        ({"em": "host1:9102"}, "The field em must be a JSON object."),
        ({"em": {}}, "em.serviceInstance cannot be null(请求参数em.serviceInstance不能为空)"),
        ({"em": {"serviceInstance": []}}, "The field em.serviceInstance must be a JSON object."),
        (
            {"em": {"serviceInstance": {"applicationName": ECM_APP}}},
            coded(21001, "em.serviceInstance.instance cannot be null(请求参数em.serviceInstance.instance不能为空)"),
        ),
        (
            {"em": {"serviceInstance": {"applicationName": ECM_APP, "instance": "  "}}},
            coded(21001, "em.serviceInstance.instance cannot be null(请求参数em.serviceInstance.instance不能为空)"),
        ),
        ({"em": {"serviceInstance": {"instance": 9102}}}, "instance must be a string, got int."),
        (em_body(nodeStatus=5), "nodeStatus must be a string, got int."),
        (em_body(owner=["alice"]), "owner must be a string, got list."),
        ([em_body()], "The request body must be a JSON object."),
    ],
)
def test_list_em_engines_refuses_malformed_requests(users, login, fleet, body, message):
    refused(call(login("hadoop"), "post", "listEMEngines", body), message)


def test_list_em_engines_refuses_a_bad_status_name_naming_it(users, login, fleet):
    payload = refused(call(login("hadoop"), "post", "listEMEngines", em_body(nodeStatus="Sleeping")))
    assert payload["message"].startswith("nodeStatus: 'Sleeping' is neither a NodeStatus")
    assert "Unlock" in payload["message"] and "UnHealthy" in payload["message"]


def test_list_em_engines_refuses_an_engine_instance_as_the_ecm(users, login, fleet):
    refused(
        call(login("hadoop"), "post", "listEMEngines", em_body("host1:40001")),
        "host1:40001 is an engine instance, not an ECM instance.",
    )


def test_list_em_engines_does_not_query_per_engine(users, login, ecm):
    client = login("hadoop")
    an_engine(ecm, "host1:40001")
    with CaptureQueriesContext(connection) as one:
        ok(call(client, "post", "listEMEngines", em_body()))
    for port in range(40002, 40008):
        an_engine(ecm, f"host1:{port}", status=NodeStatus.STARTING)
    with CaptureQueriesContext(connection) as seven:
        data = ok(call(client, "post", "listEMEngines", em_body()))
    assert len(data["engines"]) == 7
    assert len(seven.captured_queries) == len(one.captured_queries)
    # Starting engines lock their resources rather than use them
    assert data["engines"][0]["leftResource"]["memory"] == 100 * GIB - 7 * GIB


ADMIN_SEARCH = coded(210003, "Only admin can search engine information(只有管理员才能查询所有引擎信息)")


def test_list_em_engines_permissions(users, login, make_user, fleet):
    not_logged_in(call(APIClient(), "post", "listEMEngines", em_body()))
    refused(call(login("alice"), "post", "listEMEngines", em_body()), ADMIN_SEARCH)
    make_user("root", superuser=True)
    assert len(ok(call(login("root"), "post", "listEMEngines", em_body()))["engines"]) == 3
    make_token("LINKIS-AUTH-admin", admin=True)
    assert len(ok(call(token_client("LINKIS-AUTH-admin", "bob"), "post", "listEMEngines", em_body()))["engines"]) == 3
    make_token("LINKIS-AUTH-plain", admin=False)
    refused(call(token_client("LINKIS-AUTH-plain", "bob"), "post", "listEMEngines", em_body()), ADMIN_SEARCH)


def test_list_em_engines_refusal_carries_the_coded_error_data(users, login, fleet):
    payload = refused(call(login("bob"), "post", "listEMEngines", em_body()))
    assert payload["data"]["errorMsg"]["errCode"] == 210003
    assert payload["method"] == "/api/linkisManager/listEMEngines"


# --- modifyEngineInfo ------------------------------------------------------------------------------------

MODIFY_DENIED = coded(210003, "Only admin can modify engineConn information(只有管理员才能修改引擎信息)")


def console_labels(engine: EngineConn, **changes: str) -> list[dict]:
    """The labels as the console sends them back: every label, with the feature it was shown."""
    labels = {**engine_labels(engine), **changes}
    return [{"labelKey": key, "stringValue": value, "feature": "CORE"} for key, value in labels.items()]


def test_modify_engine_info_as_the_console_sends_it(users, login, engine):
    # the console echoes every label, adds a tenant, picks UnHealthy and sends the NodeStatus as emStatus
    body = {
        "applicationName": ENGINE_APP,
        "instance": "host1:40001",
        "emStatus": "Unlock",
        "nodeHealthy": "UnHealthy",
        "labels": console_labels(engine, tenant="teamA"),
    }
    data = ok(
        call(login("hadoop"), "put", "modifyEngineInfo", body), "success to update engine information(更新引擎信息成功)"
    )

    assert data == {}
    engine.refresh_from_db()
    assert engine_labels(engine)["tenant"] == "teamA"
    assert engine.health == "UnHealthy" and engine.pinned_by == "hadoop"
    assert engine.status == NodeStatus.UNLOCK
    assert HealthRecord.objects.filter(engine=engine, field="health", new="UnHealthy", actor="hadoop").exists()
    assert AuditEntry.objects.filter(action="set_labels", actor="hadoop", target="host1:40001").exists()


def test_modify_engine_info_replaces_the_modifiable_labels_as_a_set(users, login, engine):
    labelled(engine, tenant="teamA", route="r1")
    body = {
        "applicationName": ENGINE_APP,
        "instance": "host1:40001",
        "labels": [{"labelKey": "tenant", "stringValue": "teamB"}],
    }
    ok(call(login("hadoop"), "put", "modifyEngineInfo", body), "success to update engine information(更新引擎信息成功)")

    labels = engine_labels(engine)
    assert labels["tenant"] == "teamB"
    assert "route" not in labels
    # non-modifiable labels and the engine's own userCreator stay
    assert labels["engineType"] == "python-python3" and labels["userCreator"] == "alice-IDE"


def test_modify_engine_info_with_an_empty_label_list_strips_the_modifiable_labels(users, login, engine):
    labelled(engine, tenant="teamA", fixedEngineConn="x")
    before = engine_labels(engine)
    ok(
        call(
            login("hadoop"),
            "put",
            "modifyEngineInfo",
            {"applicationName": ENGINE_APP, "instance": "host1:40001", "labels": []},
        ),
        "success to update engine information(更新引擎信息成功)",
    )
    after = engine_labels(engine)
    assert after == {key: value for key, value in before.items() if key not in ("tenant", "fixedEngineConn")}


def test_modify_engine_info_without_labels_leaves_them_and_empty_health_changes_nothing(users, login, engine):
    labelled(engine, tenant="teamA")
    before = engine_labels(engine)
    body = {"applicationName": ENGINE_APP, "instance": "host1:40001", "nodeHealthy": ""}
    ok(call(login("hadoop"), "put", "modifyEngineInfo", body), "success to update engine information(更新引擎信息成功)")
    engine.refresh_from_db()
    assert engine_labels(engine) == before
    assert engine.pinned_health is None
    assert not HealthRecord.objects.filter(engine=engine).exists()


def test_modify_engine_info_healthy_removes_the_pin(users, login, ecm):
    engine = an_engine(ecm, "host1:40001", pinned_health="UnHealthy")
    ok(
        call(
            login("hadoop"),
            "put",
            "modifyEngineInfo",
            {"applicationName": ENGINE_APP, "instance": "host1:40001", "nodeHealthy": "Healthy"},
        ),
        "success to update engine information(更新引擎信息成功)",
    )
    engine.refresh_from_db()
    assert engine.pinned_health is None and engine.health == "Healthy"


def test_a_pinned_health_stays_whatever_the_engine_reports(users, login, engine):
    ok(
        call(
            login("hadoop"),
            "put",
            "modifyEngineInfo",
            {"applicationName": ENGINE_APP, "instance": "host1:40001", "nodeHealthy": "WARN"},
        ),
        "success to update engine information(更新引擎信息成功)",
    )
    EngineConn.objects.filter(pk=engine.pk).update(reported_health="Healthy")
    engine.refresh_from_db()
    assert engine.health == "WARN"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"nodeHealthy": "Sick"},
            "nodeHealthy 'Sick' is not a NodeHealthy name; expected one of Healthy, UnHealthy, WARN, StockAvailable, "
            "StockUnavailable.",
        ),
        ({"nodeHealthy": 1}, "nodeHealthy must be a string, got int."),
        (
            {"labels": "tenant=teamB"},
            "labels must be a list of {labelKey, stringValue} objects or a map of label keys to values",
        ),
        ({"labels": [{"labelKey": "tenant"}]}, "labels[0].stringValue is required"),
        ({"labels": [{"labelKey": "tenant", "stringValue": "team-B"}]}, None),
        (
            {"labels": [{"labelKey": "tenant", "stringValue": "a"}, {"labelKey": "tenant", "stringValue": "b"}]},
            coded(210003, "Failed to update label, include repeat label(更新label失败，包含重复label): tenant"),
        ),
        (
            {"labels": [{"labelKey": "userCreator", "stringValue": "bob-IDE"}]},
            "The userCreator of engine host1:40001 is its owner and creator (alice-IDE); it cannot be changed.",
        ),
    ],
)
def test_modify_engine_info_refuses_bad_values_and_writes_nothing(users, login, engine, changes, message):
    labelled(engine, tenant="teamA")
    before = engine_labels(engine)
    body = {"applicationName": ENGINE_APP, "instance": "host1:40001", "nodeHealthy": "UnHealthy", **changes}
    payload = refused(call(login("hadoop"), "put", "modifyEngineInfo", body), message)
    assert payload["message"]
    engine.refresh_from_db()
    assert engine_labels(engine) == before
    assert engine.pinned_health is None
    assert not AuditEntry.objects.exists()


def test_modify_engine_info_bad_label_value_carries_linkis_label_code(users, login, engine):
    body = {
        "applicationName": ENGINE_APP,
        "instance": "host1:40001",
        "labels": [{"labelKey": "tenant", "stringValue": "team-B"}],
    }
    payload = refused(call(login("hadoop"), "put", "modifyEngineInfo", body))
    assert payload["message"].startswith("error code(错误码): 25002")
    assert "tenant" in payload["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"applicationName": ENGINE_APP}, coded(21001, "instance cannot be null(请求参数instance不能为空)")),
        (
            {"applicationName": ENGINE_APP, "instance": ""},
            coded(21001, "instance cannot be null(请求参数instance不能为空)"),
        ),
        ({"instance": "host1:40001"}, coded(21001, "applicationName cannot be null(请求参数applicationName不能为空)")),
        (
            {"applicationName": "", "instance": "host1:40001"},
            coded(21001, "applicationName cannot be null(请求参数applicationName不能为空)"),
        ),
        ({"applicationName": ENGINE_APP, "instance": 40001}, "instance must be a string, got int."),
        (
            {"applicationName": ENGINE_APP, "instance": "nohost:1"},
            "Instance does not exist ServiceInstance(linkis-cg-engineconn, nohost:1, 0)",
        ),
        (
            {"applicationName": ENGINE_APP, "instance": "host1:9102"},
            "host1:9102 is an ECM instance, not an engine instance.",
        ),
        ("not an object", "The request body must be a JSON object."),
    ],
)
def test_modify_engine_info_refuses_missing_or_unknown_instances(users, login, engine, body, message):
    refused(call(login("hadoop"), "put", "modifyEngineInfo", body), message)


def test_modify_engine_info_accepts_any_application_name_spelling(users, login, engine):
    body = {"applicationName": "EngineConn", "instance": "host1:40001", "nodeHealthy": "UnHealthy"}
    ok(call(login("hadoop"), "put", "modifyEngineInfo", body), "success to update engine information(更新引擎信息成功)")


def test_modify_engine_info_refuses_an_ended_engine(users, login, engine):
    record_engine_end(engine.pk, exit_code=0)
    body = {"applicationName": ENGINE_APP, "instance": "host1:40001", "nodeHealthy": "UnHealthy"}
    refused(
        call(login("hadoop"), "put", "modifyEngineInfo", body),
        "Engine host1:40001 has already ended (Success); it cannot be modified.",
    )


def test_modify_engine_info_refuses_malformed_json(users, login, engine):
    response = login("hadoop").put(f"{BASE}/modifyEngineInfo", "{not json", content_type="application/json")
    refused(response, contains="Malformed request body")


def test_modify_engine_info_permissions(users, login, engine):
    body = {"applicationName": ENGINE_APP, "instance": "host1:40001", "nodeHealthy": "UnHealthy"}
    not_logged_in(call(APIClient(), "put", "modifyEngineInfo", body))
    refused(call(login("alice"), "put", "modifyEngineInfo", body), MODIFY_DENIED)  # even the owner
    refused(call(login("bob"), "put", "modifyEngineInfo", body), MODIFY_DENIED)
    engine.refresh_from_db()
    assert engine.pinned_health is None
    make_token("LINKIS-AUTH-admin", admin=True)
    ok(
        call(token_client("LINKIS-AUTH-admin", "bob"), "put", "modifyEngineInfo", body),
        "success to update engine information(更新引擎信息成功)",
    )
    engine.refresh_from_db()
    assert engine.pinned_health == "UnHealthy" and engine.pinned_by == "bob"


def test_modify_engine_info_takes_put_only(users, login, engine):
    response = call(
        login("hadoop"), "post", "modifyEngineInfo", {"applicationName": ENGINE_APP, "instance": "host1:40001"}
    )
    assert response.status_code == 405 and response.json()["status"] == 1


# --- batchSetEngineToUnHealthy -------------------------------------------------------------------------------

BATCH_MESSAGE = "success to update engine information(批量更新引擎健康信息成功)"
BATCH_DENIED = coded(210003, "Only admin can modify engineConn healthy info(只有管理员才能修改引擎健康信息)")


def element(instance: str) -> dict:
    return {"applicationName": ENGINE_APP, "instance": instance, "engineType": "python"}


def test_batch_set_engine_to_unhealthy_pins_every_engine(users, login, ecm, engine):
    second = an_engine(ecm, "host1:40002", status=NodeStatus.BUSY)
    body = {"instances": [element("host1:40001"), element("host1:40002")]}
    assert ok(call(login("hadoop"), "post", "batchSetEngineToUnHealthy", body), BATCH_MESSAGE) == {}
    for each in (engine, second):
        each.refresh_from_db()
        assert each.health == "UnHealthy" and each.pinned_by == "hadoop"
    # health only: the statuses are what they were
    assert (engine.status, second.status) == (NodeStatus.UNLOCK, NodeStatus.BUSY)


def test_batch_set_engine_to_unhealthy_checks_every_element_first(users, login, ecm, engine):
    for bad, message in [
        (element("nohost:1"), "Instance does not exist ServiceInstance(linkis-cg-engineconn, nohost:1, 0)"),
        (element("host1:9102"), "host1:9102 is an ECM instance, not an engine instance."),
        ({"applicationName": ENGINE_APP}, coded(21001, "instance cannot be null(请求参数instance不能为空)")),
        ("host1:40002", "The element instances[1] must be a JSON object."),
    ]:
        body = {"instances": [element("host1:40001"), bad]}
        refused(call(login("hadoop"), "post", "batchSetEngineToUnHealthy", body), message)
    engine.refresh_from_db()
    assert engine.pinned_health is None


@pytest.mark.parametrize("body", [{}, {"instances": None}, {"instances": "host1:40001"}, {"instances": {"a": 1}}])
def test_batch_set_engine_to_unhealthy_needs_a_list(users, login, engine, body):
    refused(call(login("hadoop"), "post", "batchSetEngineToUnHealthy", body), contains="请求参数中【instances】为空")


def test_batch_set_engine_to_unhealthy_with_an_empty_list_does_nothing(users, login, engine):
    ok(call(login("hadoop"), "post", "batchSetEngineToUnHealthy", {"instances": []}), BATCH_MESSAGE)
    assert not HealthRecord.objects.exists()


def test_batch_set_engine_to_unhealthy_permissions(users, login, engine):
    body = {"instances": [element("host1:40001")]}
    not_logged_in(call(APIClient(), "post", "batchSetEngineToUnHealthy", body))
    refused(call(login("alice"), "post", "batchSetEngineToUnHealthy", body), BATCH_DENIED)
    make_token("LINKIS-AUTH-plain", admin=False)
    refused(call(token_client("LINKIS-AUTH-plain", "alice"), "post", "batchSetEngineToUnHealthy", body), BATCH_DENIED)
    engine.refresh_from_db()
    assert engine.pinned_health is None
    make_token("LINKIS-AUTH-admin", admin=True)
    ok(call(token_client("LINKIS-AUTH-admin", "alice"), "post", "batchSetEngineToUnHealthy", body), BATCH_MESSAGE)


# --- executeEngineConnOperation -----------------------------------------------------------------------------------


def operation(instance: str = "host1:40001", **parameters) -> dict:
    return {"applicationName": ENGINE_APP, "instance": instance, "parameters": parameters}


YARN = {"__operator_name__": "engineConnYarnApplication"}


def test_the_yarn_operator_answers_is_error_for_engines_off_yarn(users, login, engine):
    data = ok(call(login("alice"), "post", "executeEngineConnOperation", operation(**YARN)))
    assert data["isError"] is True
    assert "does not run on YARN" in data["errorMsg"] and "python-python3" in data["errorMsg"]


def test_execute_engine_conn_operation_permissions(users, login, engine):
    not_logged_in(call(APIClient(), "post", "executeEngineConnOperation", operation(**YARN)))
    refused(
        call(login("bob"), "post", "executeEngineConnOperation", operation(**YARN)),
        "You have no permission to execute Engine Operation ServiceInstance(linkis-cg-engineconn, host1:40001, 0)",
    )
    assert ok(call(login("hadoop"), "post", "executeEngineConnOperation", operation(**YARN)))["isError"] is True
    make_token("LINKIS-AUTH-admin", admin=True)
    client = token_client("LINKIS-AUTH-admin", "bob")
    assert ok(call(client, "post", "executeEngineConnOperation", operation(**YARN)))["isError"] is True
    make_token("LINKIS-AUTH-plain", admin=False)
    client = token_client("LINKIS-AUTH-plain", "bob")
    refused(call(client, "post", "executeEngineConnOperation", operation(**YARN)), contains="no permission")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"applicationName": ENGINE_APP, "instance": "host1:40001"},
            "parameters cannot be null(请求参数parameters不能为空)",
        ),
        ({**operation(), "parameters": ["execute"]}, "The field parameters must be a JSON object."),
        (operation(), "__operator_name__ cannot be null(请求参数__operator_name__不能为空)"),
        (operation(__operator_name__=""), "__operator_name__ cannot be null(请求参数__operator_name__不能为空)"),
        (operation(__operator_name__=3), "__operator_name__ must be a string, got int."),
        (
            operation(__operator_name__="doSavepoint"),
            "Unknown operator 'doSavepoint'; the engines here support execute, engineConnStatus, "
            "engineConnYarnApplication.",
        ),
        (operation(__operator_name__="execute"), "code cannot be null(请求参数code不能为空)"),
        (operation(__operator_name__="execute", code=42), "code must be a string, got int."),
        (
            {"applicationName": ENGINE_APP, "parameters": YARN},
            coded(21001, "instance cannot be null(请求参数instance不能为空)"),
        ),
        (operation("nohost:1", **YARN), "Instance does not exist ServiceInstance(linkis-cg-engineconn, nohost:1, 0)"),
        (operation("host1:9102", **YARN), "host1:9102 is an ECM instance, not an engine instance."),
    ],
)
def test_execute_engine_conn_operation_refuses_bad_requests(users, login, engine, body, message):
    refused(call(login("alice"), "post", "executeEngineConnOperation", body), message)


def test_execute_engine_conn_operation_refuses_a_stopping_or_ended_engine(users, login, ecm):
    an_engine(ecm, "host1:40001", status=NodeStatus.SHUTTING_DOWN)
    ended = an_engine(ecm, "host1:40002")
    record_engine_end(ended.pk, exit_code=1)
    client = login("alice")
    body = operation(__operator_name__="execute", code="print(1)")
    refused(
        call(client, "post", "executeEngineConnOperation", body),
        "Engine host1:40001 is ShuttingDown; it can no longer run operations.",
    )
    refused(
        call(client, "post", "executeEngineConnOperation", operation("host1:40002", **YARN)),
        "Engine host1:40002 is Failed; it can no longer run operations.",
    )


def test_an_engine_whose_agent_does_not_answer_is_a_clean_error(users, login, engine, settings):
    # No agent consumes host1's queue: the call times out for real.
    settings.ECM_TASK_TIMEOUT = 0.2
    response = call(
        login("alice"), "post", "executeEngineConnOperation", operation(__operator_name__="engineConnStatus")
    )
    message = refused(response)["message"]
    assert message.startswith("Engine host1:40001 ") and "host1:9102" in message


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_operations_run_on_a_real_engine(start_agent, users, login):
    # given a real agent and alice's python engine on it
    start_agent()
    engine = admit_engine(EngineRequest("alice", "IDE", "python", "python3", LoadInstance(GIB, 1, 1)), actor="alice")
    wait_for(lambda: EngineConn.objects.get(pk=engine.pk).status == NodeStatus.UNLOCK, what="the engine to be up")
    engine.refresh_from_db()
    activity_before = engine.last_activity
    client = login("alice")

    # when alice runs code on it, the output comes back
    data = ok(
        call(
            client,
            "post",
            "executeEngineConnOperation",
            operation(engine.instance, __operator_name__="execute", code="print(6*7)"),
        )
    )
    assert data["isError"] is False and data["errorMsg"] == ""
    assert data["result"]["output"] == "42\n"

    # and failing code is the operator's error, answered as isError
    data = ok(
        call(
            client,
            "post",
            "executeEngineConnOperation",
            operation(engine.instance, __operator_name__="execute", code="1/0"),
        )
    )
    assert data["isError"] is True and "ZeroDivisionError" in data["errorMsg"]

    # and the runtime reports its own status
    data = ok(
        call(
            client,
            "post",
            "executeEngineConnOperation",
            operation(engine.instance, __operator_name__="engineConnStatus"),
        )
    )
    assert data["result"]["status"] == "Unlock" and data["result"]["pid"] == engine.pid

    # and the runs moved the idle clock, as the runtime reported it
    def moved():
        engine.refresh_from_db()
        return engine.last_activity and engine.last_activity > activity_before

    wait_for(moved, what="the engine's idle clock to move")

    # and an admin's async kill of the (again Unlock) engine ends its process
    wait_for(lambda: EngineConn.objects.get(pk=engine.pk).status == NodeStatus.UNLOCK, what="Unlock again")
    data = ok(
        call(login("hadoop"), "post", "rm/enginekillAsyn", {"instances": [engine.instance]}), "Kill engineConn succeed."
    )
    assert data["killEngineNum"] == 1
    wait_for(lambda: EngineConn.objects.get(pk=engine.pk).ended_at is not None, what="the engine to end")
    assert EngineConn.objects.get(pk=engine.pk).status == NodeStatus.SHUTTING_DOWN


# --- Schema -------------------------------------------------------------------------------------------------------


def test_every_endpoint_here_documents_its_request_body():
    from django.test import Client

    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, verb in [
        ("listEMEngines", "post"),
        ("modifyEngineInfo", "put"),
        ("batchSetEngineToUnHealthy", "post"),
        ("executeEngineConnOperation", "post"),
        ("rm/enginekillAsyn", "post"),
        ("rm/killUnlockEngineByEM", "post"),
        ("rm/killEngineByCreatorEngineType", "post"),
    ]:
        operation_ = schema["paths"][f"{BASE}/{path}"][verb]
        assert "application/json" in operation_["requestBody"]["content"], path
    assert "get" in schema["paths"][f"{BASE}/listUserEngines"]

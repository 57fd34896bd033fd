"""Batch kills: rm/enginekillAsyn, rm/killUnlockEngineByEM and rm/killEngineByCreatorEngineType,
through the real authentication. Kill tasks are recorded at the broker's edge, after commit."""

from __future__ import annotations

import getpass

import pytest
from rest_framework.test import APIClient

from config.celery import app, ecm_queue
from engines import services
from engines.api import list_views
from engines.models import EngineConn
from engines.services import KILL_TASK, kill_if_unlock, record_engine_end
from linkismanager.choices import NodeStatus
from linkismanager.models import AuditEntry, HealthRecord, Label, Token
from tests.conftest import API
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

BASE = f"{API}/linkisManager"
KILLED = "Kill engineConn succeed."


# --- Fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def users(alice, bob, hadoop):
    return {"alice": alice, "bob": bob, "hadoop": hadoop}


@pytest.fixture
def sent(monkeypatch) -> list:
    """Tasks sent to the broker, recorded instead: no agent runs here."""
    recorded: list = []
    monkeypatch.setattr(app, "send_task", lambda name, args, queue: recorded.append((name, args, queue)))
    return recorded


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """POST through a client, running what the request left for after commit."""

    def do_post(client: APIClient, path: str, body):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"{BASE}/{path}", body, format="json")

    return do_post


def engine(ecm, instance: str, *, owner: str = "alice", **fields) -> EngineConn:
    made = make_engine(ecm, owner=owner, instance=instance, **fields)
    Label.objects.create(engine=made, key="userCreator", value=made.user_creator)
    Label.objects.create(engine=made, key="engineType", value=made.engine_type_label)
    return made


def status_of(made: EngineConn) -> str:
    return EngineConn.objects.get(pk=made.pk).status


def health_of(made: EngineConn) -> str:
    return EngineConn.objects.get(pk=made.pk).health


def kills(sent: list) -> list[tuple[int, str]]:
    return [(args[0], queue) for name, args, queue in sent if name == KILL_TASK]


def make_token(code: str, *, admin: bool) -> Token:
    token = Token(name="admin-token" if admin else "plain-token", legal_users="*", is_admin=admin)
    token.set_code(code)
    token.save()
    return token


def token_client(code: str, user: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_TOKEN_CODE=code, HTTP_TOKEN_USER=user)
    return client


def ok(response, message: str = KILLED) -> dict:
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


@pytest.fixture
def ecm():
    return make_ecm("host1:9102")


# --- The service ------------------------------------------------------------------------------------------


def test_kill_if_unlock_moves_an_unlock_engine_and_enqueues_its_kill_after_commit(
    ecm, sent, django_capture_on_commit_callbacks
):
    target = engine(ecm, "host1:40001")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert kill_if_unlock(target, actor="hadoop", reason="test") is True
        assert sent == []  # nothing before commit
    assert len(callbacks) == 1
    assert kills(sent) == [(target.pk, ecm_queue("host1:9102"))]
    stopped = EngineConn.objects.get(pk=target.pk)
    assert stopped.status == NodeStatus.SHUTTING_DOWN and stopped.kill_requested_by == "hadoop"
    assert AuditEntry.objects.filter(action="kill_engine", actor="hadoop").count() == 1


def test_kill_if_unlock_leaves_an_engine_that_got_busy_meanwhile(ecm, sent, django_capture_on_commit_callbacks):
    # given an engine read while Unlock, which became Busy before the kill
    target = engine(ecm, "host1:40001")
    EngineConn.objects.filter(pk=target.pk).update(status=NodeStatus.BUSY)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert kill_if_unlock(target, actor="hadoop") is False
    assert callbacks == [] and sent == []
    assert status_of(target) == NodeStatus.BUSY
    assert not AuditEntry.objects.exists()


# --- rm/enginekillAsyn --------------------------------------------------------------------------------------


def test_enginekill_asyn_kills_only_engines_that_are_unlock_and_says_what_it_skipped(users, login, ecm, sent, post):
    # given an Unlock engine, a Busy one, an ended one and an instance nobody has
    idle = engine(ecm, "host1:40001")
    busy = engine(ecm, "host1:40002", status=NodeStatus.BUSY)
    ended = engine(ecm, "host1:40003")
    record_engine_end(ended.pk, exit_code=0)
    instances = ["host1:40001", "host1:40002", "host1:40003", "nohost:1", "host1:40001"]

    data = ok(post(login("hadoop"), "rm/enginekillAsyn", {"instances": instances}))

    assert data["killEngineNum"] == 1 and data["killed"] == ["host1:40001"]
    assert data["skippedEngineNum"] == 3
    assert data["skipped"] == [
        {"instance": "host1:40002", "reason": "notUnlock", "nodeStatus": "Busy"},
        {"instance": "host1:40003", "reason": "ended", "nodeStatus": "Success"},
        {"instance": "nohost:1", "reason": "notFound", "nodeStatus": None},
    ]
    assert status_of(idle) == NodeStatus.SHUTTING_DOWN
    assert status_of(busy) == NodeStatus.BUSY
    assert kills(sent) == [(idle.pk, ecm_queue("host1:9102"))]


def test_enginekill_asyn_reports_an_engine_lost_to_another_change(users, login, ecm, sent, post, monkeypatch):
    # given an engine that becomes Busy between the read and the compare-and-set
    target = engine(ecm, "host1:40001")

    def busy_first(found, **kwargs):
        EngineConn.objects.filter(pk=found.pk).update(status=NodeStatus.BUSY)
        return kill_if_unlock(found, **kwargs)

    monkeypatch.setattr(list_views, "kill_if_unlock", busy_first)
    data = ok(post(login("hadoop"), "rm/enginekillAsyn", {"instances": ["host1:40001"]}))

    assert data["killEngineNum"] == 0
    assert data["skipped"] == [{"instance": "host1:40001", "reason": "changedMeanwhile", "nodeStatus": "Busy"}]
    assert status_of(target) == NodeStatus.BUSY and sent == []


def test_enginekill_asyn_refuses_an_ecm_instance_before_killing_anything(users, login, ecm, sent, post):
    idle = engine(ecm, "host1:40001")
    refused(
        post(login("hadoop"), "rm/enginekillAsyn", {"instances": ["host1:40001", "host1:9102"]}),
        "host1:9102: ECM instances, not engine instances; nothing was killed.",
    )
    assert status_of(idle) == NodeStatus.UNLOCK and sent == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "instances is null in the parameters of the request(请求参数中【instances】为空)"),
        ({"instances": []}, "instances is null in the parameters of the request(请求参数中【instances】为空)"),
        (
            {"instances": "host1:40001"},
            "instances is null in the parameters of the request(请求参数中【instances】为空)",
        ),
        (
            {"instances": ["host1:40001", 40002]},
            "instances parameters parsing failed(请求参数【instances】解析失败): instances[1] must be an engine "
            "instance (host:port), got 40002.",
        ),
        (
            {"instances": [" "]},
            "instances parameters parsing failed(请求参数【instances】解析失败): instances[0] must be an engine "
            "instance (host:port), got ' '.",
        ),
        (
            {"instances": [{"instance": "host1:40001"}]},
            "instances parameters parsing failed(请求参数【instances】解析失败): instances[0] must be an engine "
            "instance (host:port), got {'instance': 'host1:40001'}.",
        ),
        (["host1:40001"], "The request body must be a JSON object."),
    ],
)
def test_enginekill_asyn_refuses_malformed_instances(users, login, ecm, sent, post, body, message):
    idle = engine(ecm, "host1:40001")
    refused(post(login("hadoop"), "rm/enginekillAsyn", body), message)
    assert status_of(idle) == NodeStatus.UNLOCK and sent == []


def test_enginekill_asyn_permissions(users, login, ecm, sent, post):
    idle = engine(ecm, "host1:40001")
    body = {"instances": ["host1:40001"]}
    not_logged_in(post(APIClient(), "rm/enginekillAsyn", body))
    # even the engine's owner is not enough
    refused(post(login("alice"), "rm/enginekillAsyn", body), "User:alice has no permission to asyn kill engines.")
    make_token("LINKIS-AUTH-plain", admin=False)
    refused(
        post(token_client("LINKIS-AUTH-plain", "alice"), "rm/enginekillAsyn", body),
        "Token:plain-token has no permission to asyn kill engines.",
    )
    assert status_of(idle) == NodeStatus.UNLOCK and sent == []

    # an admin token acting as a plain user may
    make_token("LINKIS-AUTH-admin", admin=True)
    data = ok(post(token_client("LINKIS-AUTH-admin", "bob"), "rm/enginekillAsyn", body))
    assert data["killEngineNum"] == 1
    assert EngineConn.objects.get(pk=idle.pk).kill_requested_by == "bob"


def test_enginekill_asyn_refusal_does_not_echo_the_token_code(users, ecm, post):
    make_token("LINKIS-AUTH-secret-code", admin=False)
    payload = refused(
        post(token_client("LINKIS-AUTH-secret-code", "alice"), "rm/enginekillAsyn", {"instances": ["a:1"]})
    )
    assert "secret-code" not in payload["message"]


# --- rm/killUnlockEngineByEM ------------------------------------------------------------------------------

EM_DENIED = coded(
    210003, "Only admin can kill unlock engine of the specified ecm(只有管理员才能 kill 指定 ecm 下的所有空闲引擎)"
)


@pytest.fixture
def host1_engines(ecm):
    other = make_ecm("host2:9102")
    made = {
        "python": engine(ecm, "host1:40001", memory=2 * GIB, cores=2),
        "shell": engine(ecm, "host1:40002", engine_type="shell", engine_version="1", memory=GIB, cores=1),
        "spark_busy": engine(ecm, "host1:40003", engine_type="spark", engine_version="2.4.3", status=NodeStatus.BUSY),
        "jdbc": engine(ecm, "host1:40004", engine_type="jdbc", engine_version="4"),
        "starting": engine(ecm, "host1:40005", status=NodeStatus.STARTING),
        "ended": engine(ecm, "host1:40006"),
        "elsewhere": engine(other, "host2:40001"),
    }
    record_engine_end(made["ended"].pk, exit_code=0)
    return made


def test_kill_unlock_engine_by_em_kills_the_unlock_engines_of_allowed_types(users, login, host1_engines, sent, post):
    data = ok(post(login("hadoop"), "rm/killUnlockEngineByEM", {"instance": "host1:9102"}))

    result = data["result"]
    assert result["killEngineNum"] == 2
    assert result["memory"] == 3 * GIB and result["cores"] == 3
    assert result["batchKillEngineType"] == "spark,hive,python,shell"
    assert sorted(result["killedEngines"]) == ["host1:40001", "host1:40002"]
    assert result["skippedEngineNum"] == 3
    assert result["skipped"] == {"notUnlock": 2, "engineTypeNotAllowed": 1}
    states = {name: status_of(made) for name, made in host1_engines.items()}
    assert states == {
        "python": NodeStatus.SHUTTING_DOWN,
        "shell": NodeStatus.SHUTTING_DOWN,
        "spark_busy": NodeStatus.BUSY,
        "jdbc": NodeStatus.UNLOCK,
        "starting": NodeStatus.STARTING,
        "ended": NodeStatus.SUCCESS,
        "elsewhere": NodeStatus.UNLOCK,
    }
    assert sorted(kills(sent)) == sorted(
        (host1_engines[name].pk, ecm_queue("host1:9102")) for name in ("python", "shell")
    )


def test_kill_unlock_engine_by_em_follows_the_setting_in_any_case(users, login, host1_engines, sent, post, settings):
    settings.BATCH_KILL_ENGINE_TYPES = ["SHELL"]
    result = ok(post(login("hadoop"), "rm/killUnlockEngineByEM", {"instance": "host1:9102"}))["result"]
    assert result["killedEngines"] == ["host1:40002"]
    assert result["batchKillEngineType"] == "SHELL"
    assert status_of(host1_engines["python"]) == NodeStatus.UNLOCK


def test_kill_unlock_engine_by_em_counts_only_what_it_moved(users, login, host1_engines, sent, post, monkeypatch):
    # given the python engine gets busy just before its compare-and-set
    def busy_first(found, **kwargs):
        if found.pk == host1_engines["python"].pk:
            EngineConn.objects.filter(pk=found.pk).update(status=NodeStatus.BUSY)
        return kill_if_unlock(found, **kwargs)

    monkeypatch.setattr(list_views, "kill_if_unlock", busy_first)
    result = ok(post(login("hadoop"), "rm/killUnlockEngineByEM", {"instance": "host1:9102"}))["result"]
    assert result["killEngineNum"] == 1 and result["memory"] == GIB and result["cores"] == 1
    assert result["skipped"] == {"notUnlock": 2, "engineTypeNotAllowed": 1, "changedMeanwhile": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, coded(210003, "instance is null in the parameters of the request(请求参数中【instance】为空)")),
        (
            {"instance": ""},
            coded(210003, "instance is null in the parameters of the request(请求参数中【instance】为空)"),
        ),
        (
            {"instance": None},
            coded(210003, "instance is null in the parameters of the request(请求参数中【instance】为空)"),
        ),
        ({"instance": ["host1:9102"]}, "instance must be a string, got list."),
        ({"instance": "nohost:9102"}, "ECM nohost:9102 does not exist; nothing was killed."),
        ({"instance": "host1:40001"}, "host1:40001 is an engine instance, not an ECM instance."),
        ("host1:9102", "The request body must be a JSON object."),
    ],
)
def test_kill_unlock_engine_by_em_refuses_bad_requests(users, login, host1_engines, sent, post, body, message):
    refused(post(login("hadoop"), "rm/killUnlockEngineByEM", body), message)
    assert status_of(host1_engines["python"]) == NodeStatus.UNLOCK and sent == []


def test_kill_unlock_engine_by_em_permissions(users, login, host1_engines, sent, post):
    body = {"instance": "host1:9102"}
    not_logged_in(post(APIClient(), "rm/killUnlockEngineByEM", body))
    refused(post(login("alice"), "rm/killUnlockEngineByEM", body), EM_DENIED)
    make_token("LINKIS-AUTH-plain", admin=False)
    refused(post(token_client("LINKIS-AUTH-plain", "alice"), "rm/killUnlockEngineByEM", body), EM_DENIED)
    assert sent == []
    make_token("LINKIS-AUTH-admin", admin=True)
    assert (
        ok(post(token_client("LINKIS-AUTH-admin", "alice"), "rm/killUnlockEngineByEM", body))["result"]["killEngineNum"]
        == 2
    )


# --- rm/killEngineByCreatorEngineType ------------------------------------------------------------------------

BY_CREATOR = "Kill engineConn succeed"


@pytest.fixture
def mine(ecm):
    """alice's engines (IDE python Unlock, IDE python Busy, IDE shell Unlock, Scripts python Unlock,
    IDE flink Unlock, IDE python ShuttingDown) and bob's IDE python Unlock."""
    return {
        "ide_python": engine(ecm, "host1:40001"),
        "ide_python_busy": engine(ecm, "host1:40002", status=NodeStatus.BUSY),
        "ide_shell": engine(ecm, "host1:40003", engine_type="shell", engine_version="1"),
        "scripts_python": engine(ecm, "host1:40004", creator="Scripts"),
        "ide_flink": engine(ecm, "host1:40005", engine_type="flink", engine_version="1.12"),
        "ide_stopping": engine(ecm, "host1:40006", status=NodeStatus.SHUTTING_DOWN),
        "bob": engine(ecm, "host1:40007", owner="bob"),
    }


def outcome(made: dict) -> dict[str, str]:
    """Per engine: killed, unhealthy or untouched."""
    result = {}
    for name, each in made.items():
        fresh = EngineConn.objects.get(pk=each.pk)
        if fresh.kill_requested_at is not None:
            result[name] = "killed"
        elif fresh.pinned_health == "UnHealthy":
            result[name] = "unhealthy"
        else:
            result[name] = "untouched"
    return result


def test_kill_by_creator_and_engine_type_with_version(users, login, mine, sent, post):
    data = ok(
        post(login("alice"), "rm/killEngineByCreatorEngineType", {"creator": "IDE", "engineType": "python-python3"}),
        BY_CREATOR,
    )

    assert data["killEngineNum"] == 1 and data["killed"] == ["host1:40001"]
    assert data["unHealthyEngineNum"] == 1 and data["markedUnHealthy"] == ["host1:40002"]
    assert data["skipped"] == [{"instance": "host1:40006", "reason": "alreadyStopping", "nodeStatus": "ShuttingDown"}]
    assert outcome(mine) == {
        "ide_python": "killed",
        "ide_python_busy": "unhealthy",
        "ide_shell": "untouched",
        "scripts_python": "untouched",
        "ide_flink": "untouched",
        "ide_stopping": "untouched",
        "bob": "untouched",
    }
    assert kills(sent) == [(mine["ide_python"].pk, ecm_queue("host1:9102"))]
    assert HealthRecord.objects.filter(engine=mine["ide_python_busy"], new="UnHealthy", actor="alice").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # * (or the console's global-settings names) means any creator; a type alone matches any version
        ({"creator": "*", "engineType": "python"}, {"ide_python", "ide_python_busy", "scripts_python"}),
        ({"creator": "*", "engineType": "PYTHON"}, {"ide_python", "ide_python_busy", "scripts_python"}),
        ({"creator": "全局设置", "engineType": "shell-1"}, {"ide_shell"}),
        # * or no engineType means any engine type, whatever the creator
        ({"creator": "IDE", "engineType": "*"}, {"ide_python", "ide_python_busy", "ide_shell", "ide_flink"}),
        ({"creator": "IDE"}, {"ide_python", "ide_python_busy", "ide_shell", "ide_flink"}),
        ({"creator": "IDE", "engineType": ""}, {"ide_python", "ide_python_busy", "ide_shell", "ide_flink"}),
        (
            {"creator": "GlobalSettings"},
            {"ide_python", "ide_python_busy", "ide_shell", "scripts_python", "ide_flink"},
        ),
        (
            {"creator": "通用设置", "engineType": "*"},
            {"ide_python", "ide_python_busy", "ide_shell", "scripts_python", "ide_flink"},
        ),
        ({"creator": "Scripts", "engineType": "python-python2"}, set()),
        ({"creator": "ide", "engineType": "python"}, set()),
    ],
)
def test_kill_by_creator_and_engine_type_star_means_any(users, login, mine, sent, post, body, expected):
    ok(post(login("alice"), "rm/killEngineByCreatorEngineType", body), BY_CREATOR)
    touched = {name for name, what in outcome(mine).items() if what != "untouched"}
    assert touched == expected


def test_kill_by_creator_marks_unhealthy_the_unlock_engines_of_types_not_open_to_batch_kills(
    users, login, mine, sent, post
):
    data = ok(
        post(login("alice"), "rm/killEngineByCreatorEngineType", {"creator": "IDE", "engineType": "flink"}), BY_CREATOR
    )
    assert data["killEngineNum"] == 0 and data["markedUnHealthy"] == ["host1:40005"]
    assert status_of(mine["ide_flink"]) == NodeStatus.UNLOCK
    assert health_of(mine["ide_flink"]) == "UnHealthy"
    assert sent == []


def test_kill_by_creator_acts_on_the_callers_engines_only_even_for_an_admin(users, login, mine, sent, post):
    data = ok(
        post(login("hadoop"), "rm/killEngineByCreatorEngineType", {"creator": "*", "engineType": "*"}), BY_CREATOR
    )
    assert data["killEngineNum"] == 0 and data["unHealthyEngineNum"] == 0
    assert set(outcome(mine).values()) == {"untouched"}


def test_kill_by_creator_with_a_token_acts_as_the_token_user(users, mine, sent, post):
    make_token("LINKIS-AUTH-plain", admin=False)
    data = ok(
        post(token_client("LINKIS-AUTH-plain", "bob"), "rm/killEngineByCreatorEngineType", {"creator": "IDE"}),
        BY_CREATOR,
    )
    assert data["killed"] == ["host1:40007"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "creator is null in the parameters of the request(请求参数中【creator】为空)"),
        ({"creator": " "}, "creator is null in the parameters of the request(请求参数中【creator】为空)"),
        ({"creator": 1}, "creator must be a string, got int."),
        ({"creator": "IDE", "engineType": ["spark"]}, "engineType must be a string, got list."),
        (
            {"creator": "IDE", "engineType": "jdbc-4"},
            "multi user engine does not support this feature(多用户引擎不支持此功能)",
        ),
        (
            {"creator": "*", "engineType": "Trino"},
            "multi user engine does not support this feature(多用户引擎不支持此功能)",
        ),
        (
            {"creator": "*", "engineType": "io_file-1.0"},
            "multi user engine does not support this feature(多用户引擎不支持此功能)",
        ),
        (["IDE"], "The request body must be a JSON object."),
    ],
)
def test_kill_by_creator_refuses_bad_requests(users, login, mine, sent, post, body, message):
    refused(post(login("alice"), "rm/killEngineByCreatorEngineType", body), message)
    assert set(outcome(mine).values()) == {"untouched"} and sent == []


def test_kill_by_creator_is_refused_to_the_managers_own_os_user(make_user, login, ecm, sent, post):
    os_user = getpass.getuser()
    make_user(os_user)
    engine(ecm, "host1:40001", owner=os_user)
    refused(
        post(login(os_user), "rm/killEngineByCreatorEngineType", {"creator": "*"}),
        f"{os_user} users do not support this feature ({os_user} 用户不支持此功能)",
    )
    assert sent == []


def test_kill_by_creator_refuses_anonymous_callers(mine, post):
    not_logged_in(post(APIClient(), "rm/killEngineByCreatorEngineType", {"creator": "IDE"}))


def test_the_kill_service_is_exported():
    assert "kill_if_unlock" in services.__all__

"""The resource monitor (rm/*) through the real authentication: figures derived from live engines
and quota rows, the admin endpoints, the reset, and the YARN endpoints answering that there is no
YARN cluster."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from linkismanager.choices import NodeStatus
from linkismanager.models import AuditEntry, Token, UserQuota
from tests.conftest import API
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

RM = f"{API}/linkisManager/rm"
DEFAULT_MAX = {"memory": 20 * GIB, "cores": 10, "instances": 10, "instance": 10}


def load(memory: int, cores: int, instances: int) -> dict[str, int]:
    return {"memory": memory, "cores": cores, "instances": instances, "instance": instances}


def body(response) -> dict:
    return response.json()


def assert_refused(response, *needles: str) -> None:
    """A clean status-1 envelope whose message names each needle."""
    assert response.status_code == 400, response.content
    data = body(response)
    assert data["status"] == 1
    for needle in needles:
        assert needle in data["message"], data["message"]


def admin_token_client(user: str = "hadoop", *, admin: bool = True) -> APIClient:
    token = Token(name=f"ops-{user}-{admin}", is_admin=admin)
    token.set_code(f"LINKIS-AUTH-{user}-{admin}")
    token.save()
    client = APIClient()
    client.credentials(HTTP_TOKEN_CODE=f"LINKIS-AUTH-{user}-{admin}", HTTP_TOKEN_USER=user)
    return client


@pytest.fixture
def ecm():
    return make_ecm()


@pytest.fixture
def alice_engines(alice, ecm):
    """alice: two python engines (one Starting) and a shell engine on IDE, an ended engine, and a
    python engine on another creator. bob has one engine."""
    return {
        "python": make_engine(ecm, owner="alice", instance="host1:2001", memory=2 * GIB, cores=1),
        "starting": make_engine(ecm, owner="alice", status=NodeStatus.STARTING, memory=1 * GIB, cores=1),
        "shell": make_engine(
            ecm, owner="alice", instance="host1:2002", engine_type="shell", engine_version="1", memory=GIB, cores=1
        ),
        "ended": make_engine(
            ecm,
            owner="alice",
            instance="host1:2003",
            status=NodeStatus.SUCCESS,
            ended_at=timezone.now(),
            memory=8 * GIB,
            cores=8,
        ),
        "nodeexecution": make_engine(ecm, owner="alice", instance="host1:2004", creator="nodeexecution"),
        "bob": make_engine(ecm, owner="bob", instance="host1:2005"),
    }


class TestAnonymous:
    @pytest.mark.parametrize(
        ("verb", "path"),
        [
            ("post", "userresources"),
            ("post", "engines"),
            ("post", "applicationlist"),
            ("get", "engineType"),
            ("get", "allUserResource"),
            ("get", "get-user-resource"),
            ("delete", "resetResource"),
            ("post", "queues"),
            ("post", "queueresources"),
            ("post", "batchqueueresources"),
        ],
    )
    def test_anonymous_callers_are_told_to_log_in(self, verb, path):
        response = getattr(APIClient(), verb)(f"{RM}/{path}")
        assert response.status_code == 401
        assert body(response)["status"] == -1
        assert body(response)["method"] == f"/api/linkisManager/rm/{path}"


class TestUserResources:
    def test_it_reports_the_callers_shares_per_creator_and_engine_type(self, alice_engines, login):
        # Given a quota row that limits alice's shell engines to one instance
        UserQuota.objects.create(user="alice", creator="IDE", engine_type="shell-1", max_instances=1)

        response = login("alice").post(f"{RM}/userresources")

        assert response.status_code == 200
        assert body(response)["message"] == "OK"
        tree = body(response)["data"]["userResources"]
        assert [group["userCreator"] for group in tree] == ["(alice,IDE)", "(alice,nodeexecution)"]
        ide = tree[0]
        # python: 3 GiB of 20, 2 cores of 10, 2 engines of 10 → 0.20; shell: 1 engine of 1 → 1.00
        assert ide["engineTypes"] == [
            {"engineType": "(python,python3)", "percent": "0.20"},
            {"engineType": "(shell,1)", "percent": "1.00"},
        ]
        # together: 3 engines of 11 instances, 3 cores of 20, 4 GiB of 40 → 0.27
        assert ide["percent"] == "0.27"
        assert tree[1] == {
            "userCreator": "(alice,nodeexecution)",
            "percent": "0.10",
            "engineTypes": [{"engineType": "(python,python3)", "percent": "0.10"}],
        }

    def test_a_user_without_engines_gets_an_empty_tree(self, bob, login):
        UserQuota.objects.create(user="bob", creator="IDE", engine_type="python-python3")
        response = login("bob").post(f"{RM}/userresources", {}, format="json")
        assert body(response)["data"] == {"userResources": []}

    def test_a_malformed_body_is_refused_cleanly(self, alice, login):
        response = login("alice").post(f"{RM}/userresources", "{nope", content_type="application/json")
        assert_refused(response, "Malformed request body")


class TestEngines:
    def test_it_lists_the_callers_live_engines_with_used_and_locked(self, alice_engines, login):
        response = login("alice").post(f"{RM}/engines")

        engines = body(response)["data"]["engines"]
        by_ticket = {engine["ticketId"]: engine for engine in engines}
        assert len(engines) == 4  # not the ended one, not bob's
        running = by_ticket[str(alice_engines["python"].ticket_id)]
        assert running == {
            "applicationName": "linkis-cg-engineconn",
            "engineInstance": "host1:2001",
            "moduleName": "linkis-cg-engineconnmanager",
            "engineManagerInstance": "host1:9102",
            "creator": "IDE",
            "engineType": "python",
            "preUsedResource": load(0, 0, 0),
            "usedResource": load(2 * GIB, 1, 1),
            "engineStatus": "Unlock",
            "ticketId": str(alice_engines["python"].ticket_id),
        }
        starting = by_ticket[str(alice_engines["starting"].ticket_id)]
        assert starting["engineStatus"] == "Starting"
        assert starting["preUsedResource"] == load(GIB, 1, 1)
        assert starting["usedResource"] == load(0, 0, 0)
        # Before its port is known, an engine is known by its ticket id.
        assert starting["engineInstance"] == str(alice_engines["starting"].ticket_id)

    def test_a_user_without_engines_gets_an_empty_list(self, bob, login):
        response = login("bob").post(f"{RM}/engines")
        assert body(response)["data"] == {"engines": []}


class TestApplicationList:
    def test_it_groups_the_callers_engines_of_one_user_creator(self, alice_engines, login):
        response = login("alice").post(f"{RM}/applicationlist", {"userCreator": "(alice,IDE)"}, format="json")

        assert response.status_code == 200
        [application] = body(response)["data"]["applications"]
        assert application["creator"] == "IDE"
        listing = application["applicationList"]
        assert {engine["instance"] for engine in listing["engineInstances"]} == {
            "host1:2001",
            "host1:2002",
            str(alice_engines["starting"].ticket_id),
        }
        assert listing["usedResource"] == load(3 * GIB, 2, 2)
        assert listing["lockedResource"] == load(GIB, 1, 1)
        assert listing["minResource"] == load(0, 0, 0)
        # python and shell on the default limits, each counted once
        assert listing["maxResource"] == load(40 * GIB, 20, 20)
        python = next(e for e in listing["engineInstances"] if e["instance"] == "host1:2001")
        assert python["label"] == "python-python3"
        assert python["engineType"] == "python"
        assert python["status"] == "Unlock"
        assert python["owner"] == "alice"
        assert python["startTime"].endswith(f"GMT {alice_engines['python'].created.year}")
        assert python["resource"]["usedResource"] == load(2 * GIB, 1, 1)
        assert python["resource"]["resourceType"] == "LoadInstance"

    def test_it_filters_by_engine_type_in_either_form(self, alice_engines, login):
        client = login("alice")
        for engine_type in ("(shell,1)", "shell-1"):
            response = client.post(
                f"{RM}/applicationlist", {"userCreator": "alice-IDE", "engineType": engine_type}, format="json"
            )
            [application] = body(response)["data"]["applications"]
            assert [e["instance"] for e in application["applicationList"]["engineInstances"]] == ["host1:2002"]

    def test_another_users_engines_are_not_listed(self, alice_engines, login):
        response = login("alice").post(f"{RM}/applicationlist", {"userCreator": "(bob,IDE)"}, format="json")
        assert body(response)["data"] == {"applications": []}

    @pytest.mark.parametrize(
        ("payload", "named"),
        [
            ({}, "userCreator"),
            ({"userCreator": ""}, "userCreator"),
            ({"userCreator": 7}, "userCreator"),
            ({"userCreator": "alice"}, "(user,creator)"),
            ({"userCreator": "(alice,)"}, "(user,creator)"),
            ({"userCreator": "(alice,IDE)", "engineType": "python"}, "(engineType,version)"),
        ],
    )
    def test_bad_fields_are_named(self, alice, login, payload, named):
        response = login("alice").post(f"{RM}/applicationlist", payload, format="json")
        assert_refused(response, named)

    def test_a_body_that_is_not_an_object_is_refused(self, alice, login):
        response = login("alice").post(f"{RM}/applicationlist", ["(alice,IDE)"], format="json")
        assert_refused(response, "JSON object")


def test_engine_type_lists_the_launchable_engine_types(alice, login, settings):
    settings.ENGINE_LAUNCH_TEMPLATES = {"shell": ["sh"], "hive": ["/opt/hive/engine"], "python": ["python"]}
    response = login("alice").get(f"{RM}/engineType")
    assert body(response)["data"]["engineType"] == ["hive", "python", "shell"]


class TestAllUserResource:
    def test_it_lists_users_on_default_quotas_and_users_with_only_a_quota_row(self, alice_engines, hadoop, login):
        # Given bob's override row for a type he has no engine of, and no quota row for alice at all
        quota = UserQuota.objects.create(user="bob", creator="IDE", engine_type="shell-1", max_memory=4 * GIB)

        response = login("hadoop").get(f"{RM}/allUserResource", {"page": 1, "size": 20})

        assert response.status_code == 200
        data = body(response)["data"]
        keys = [(r["username"], r["creator"], r["engineTypeWithVersion"]) for r in data["resources"]]
        assert keys == [
            ("alice", "IDE", "python-python3"),
            ("alice", "IDE", "shell-1"),
            ("alice", "nodeexecution", "python-python3"),
            ("bob", "IDE", "python-python3"),
            ("bob", "IDE", "shell-1"),
        ]
        assert data["total"] == 5
        alice_python = data["resources"][0]
        assert alice_python == {
            "id": None,
            "username": "alice",
            "creator": "IDE",
            "engineTypeWithVersion": "python-python3",
            "resourceType": "LoadInstance",
            "maxResource": DEFAULT_MAX,
            "minResource": load(0, 0, 0),
            "usedResource": load(2 * GIB, 1, 1),
            "lockedResource": load(GIB, 1, 1),
            "leftResource": load(17 * GIB, 8, 8),
            "expectedResource": None,
            "createTime": None,
            "updateTime": None,
            "loadResourceStatus": "normal",
            "queueResourceStatus": None,
        }
        bob_shell = data["resources"][4]
        assert bob_shell["id"] == quota.pk
        assert bob_shell["maxResource"] == load(4 * GIB, 10, 10)
        assert bob_shell["usedResource"] == load(0, 0, 0)
        assert bob_shell["createTime"] == int(quota.created.timestamp() * 1000)

    def test_status_follows_the_tightest_limit(self, alice, ecm, hadoop, login):
        UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=2)
        make_engine(ecm, owner="alice", instance="host1:2001")
        client = login("hadoop")
        assert body(client.get(f"{RM}/allUserResource"))["data"]["resources"][0]["loadResourceStatus"] == "normal"
        make_engine(ecm, owner="alice", instance="host1:2002")
        [row] = body(client.get(f"{RM}/allUserResource"))["data"]["resources"]
        assert row["loadResourceStatus"] == "critical"
        assert row["leftResource"]["instances"] == 0

    def test_it_filters_by_substrings_in_any_case(self, alice_engines, hadoop, login):
        response = login("hadoop").get(f"{RM}/allUserResource", {"username": "ALI", "engineType": "shell"})
        data = body(response)["data"]
        assert [(r["username"], r["engineTypeWithVersion"]) for r in data["resources"]] == [("alice", "shell-1")]
        assert data["total"] == 1
        response = login("hadoop").get(f"{RM}/allUserResource", {"creator": "node", "username": "", "engineType": ""})
        assert [r["creator"] for r in body(response)["data"]["resources"]] == ["nodeexecution"]

    def test_it_pages(self, alice_engines, hadoop, login):
        client = login("hadoop")
        second = body(client.get(f"{RM}/allUserResource", {"page": 2, "size": 2}))["data"]
        assert [(r["username"], r["creator"]) for r in second["resources"]] == [
            ("alice", "nodeexecution"),
            ("bob", "IDE"),
        ]
        assert second["total"] == 4
        beyond = body(client.get(f"{RM}/allUserResource", {"page": 9, "size": 2}))["data"]
        assert beyond == {"resources": [], "total": 4}

    def test_a_page_costs_the_same_queries_however_many_rows_exist(
        self, alice, hadoop, ecm, login, django_assert_max_num_queries
    ):
        client = login("hadoop")
        for index in range(40):
            UserQuota.objects.create(user=f"user{index:02d}", creator="IDE", engine_type="python-python3")
            make_engine(ecm, owner=f"user{index:02d}", instance=f"host1:{3000 + index}")
        # session and user, count, page, quotas, engines
        with django_assert_max_num_queries(6):
            response = client.get(f"{RM}/allUserResource", {"page": 3, "size": 5})
        data = body(response)["data"]
        assert data["total"] == 40
        assert [r["username"] for r in data["resources"]] == [f"user{i:02d}" for i in range(10, 15)]
        assert all(r["usedResource"] == load(GIB, 1, 1) for r in data["resources"])

    def test_non_admins_are_refused(self, alice, login):
        response = login("alice").get(f"{RM}/allUserResource")
        assert_refused(response, "120010", "Only admin can read all user's resource")
        assert body(response)["data"]["errorMsg"]["errCode"] == 120010

    def test_an_admin_token_may_read(self, alice_engines):
        response = admin_token_client("alice").get(f"{RM}/allUserResource")
        assert response.status_code == 200
        assert body(response)["data"]["total"] == 4

    def test_a_token_without_the_admin_flag_is_refused(self, alice_engines):
        response = admin_token_client("alice", admin=False).get(f"{RM}/allUserResource")
        assert_refused(response, "120010")

    @pytest.mark.parametrize(
        ("query", "named"),
        [
            ({"page": 0}, "page"),
            ({"page": "first"}, "page"),
            ({"size": 0}, "size"),
            ({"size": 1001}, "size"),
            ({"size": "-3"}, "size"),
        ],
    )
    def test_bad_paging_is_named(self, hadoop, login, query, named):
        response = login("hadoop").get(f"{RM}/allUserResource", query)
        assert_refused(response, named)


class TestGetUserResource:
    def test_a_user_reads_their_own_resources(self, alice_engines, login):
        response = login("alice").get(
            f"{RM}/get-user-resource", {"username": "alice", "creator": "IDE", "engineType": "python-python3"}
        )
        [row] = body(response)["data"]["resources"]
        assert row["engineTypeWithVersion"] == "python-python3"
        assert row["usedResource"] == load(2 * GIB, 1, 1)
        assert row["lockedResource"] == load(GIB, 1, 1)
        assert row["maxResource"] == DEFAULT_MAX

    def test_an_engine_type_without_version_names_every_version(self, alice_engines, ecm, login):
        make_engine(ecm, owner="alice", instance="host1:2009", engine_version="python2")
        response = login("alice").get(
            f"{RM}/get-user-resource", {"username": "alice", "creator": "IDE", "engineType": "python"}
        )
        rows = body(response)["data"]["resources"]
        assert [row["engineTypeWithVersion"] for row in rows] == ["python-python2", "python-python3"]

    def test_a_key_without_engines_or_row_shows_the_defaults(self, alice, login):
        response = login("alice").get(
            f"{RM}/get-user-resource", {"username": "alice", "creator": "IDE", "engineType": "shell-1"}
        )
        [row] = body(response)["data"]["resources"]
        assert row["id"] is None
        assert row["maxResource"] == DEFAULT_MAX
        assert row["usedResource"] == load(0, 0, 0)

    def test_another_user_is_refused_and_an_admin_is_not(self, alice_engines, bob, hadoop, login):
        query = {"username": "alice", "creator": "IDE", "engineType": "python-python3"}
        assert_refused(login("bob").get(f"{RM}/get-user-resource", query), "210003", "bob")
        assert body(login("hadoop").get(f"{RM}/get-user-resource", query))["status"] == 0
        assert body(admin_token_client().get(f"{RM}/get-user-resource", query))["status"] == 0

    @pytest.mark.parametrize("missing", ["username", "creator", "engineType"])
    def test_every_field_is_required(self, alice, login, missing):
        query = {"username": "alice", "creator": "IDE", "engineType": "python-python3"}
        query[missing] = ""
        assert_refused(login("alice").get(f"{RM}/get-user-resource", query), missing)


class TestResetResource:
    @pytest.fixture
    def quotas(self, alice_engines):
        return {
            "override": UserQuota.objects.create(
                user="hadoop", creator="IDE", engine_type="python-python3", max_cores=3
            ),
            "in_use": UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3"),
            "idle": UserQuota.objects.create(user="bob", creator="IDE", engine_type="shell-1"),
        }

    def test_it_removes_only_lock_rows_without_live_engines(self, quotas, hadoop, login):
        response = login("hadoop").delete(f"{RM}/resetResource")

        assert response.status_code == 200
        assert body(response)["message"] == "success"
        assert body(response)["data"] == {"removed": ["bob-IDE,shell-1"], "kept": 2}
        assert set(UserQuota.objects.values_list("pk", flat=True)) == {quotas["override"].pk, quotas["in_use"].pk}
        entry = AuditEntry.objects.get(action="reset_resource")
        assert (entry.actor, entry.target) == ("hadoop", "*")

    def test_an_admins_quota_row_is_never_deleted(self, quotas, hadoop, login):
        # Given the override's user has no engine at all
        client = login("hadoop")
        for query in ({"resourceId": quotas["override"].pk}, {}, {"resourceId": 0}, {"resourceId": -1}):
            response = client.delete(f"{RM}/resetResource?" + "&".join(f"{k}={v}" for k, v in query.items()))
            assert body(response)["status"] == 0
            assert UserQuota.objects.filter(pk=quotas["override"].pk, max_cores=3).exists()

    def test_by_id_it_touches_only_that_row(self, quotas, hadoop, login):
        client = login("hadoop")
        response = client.delete(f"{RM}/resetResource?resourceId={quotas['in_use'].pk}")
        assert body(response)["data"] == {"removed": [], "kept": 1}
        response = client.delete(f"{RM}/resetResource?resourceId={quotas['idle'].pk}")
        assert body(response)["data"] == {"removed": ["bob-IDE,shell-1"], "kept": 0}
        assert UserQuota.objects.count() == 2

    def test_figures_stay_derived_after_a_reset(self, quotas, hadoop, login):
        client = login("hadoop")
        before = body(client.get(f"{RM}/allUserResource"))["data"]["resources"]
        client.delete(f"{RM}/resetResource")
        after = body(client.get(f"{RM}/allUserResource"))["data"]["resources"]
        # bob's idle row went back to the defaults, which were what it showed anyway
        assert [r for r in before if r["username"] != "bob" or r["engineTypeWithVersion"] != "shell-1"] == after

    def test_an_unknown_id_is_named(self, hadoop, login):
        assert_refused(login("hadoop").delete(f"{RM}/resetResource?resourceId=999"), "999")

    def test_a_mistyped_id_is_named(self, hadoop, login):
        assert_refused(login("hadoop").delete(f"{RM}/resetResource?resourceId=undefined"), "resourceId")

    def test_non_admins_are_refused_and_nothing_changes(self, quotas, login):
        response = login("alice").delete(f"{RM}/resetResource")
        assert_refused(response, "120011", "Only admin can reset user's resource")
        assert UserQuota.objects.count() == 3

    def test_an_admin_token_may_reset(self, quotas):
        response = admin_token_client("alice").delete(f"{RM}/resetResource")
        assert body(response)["data"]["removed"] == ["bob-IDE,shell-1"]

    def test_a_cross_site_reset_is_refused(self, quotas, hadoop, login):
        response = login("hadoop").delete(f"{RM}/resetResource", HTTP_ORIGIN="https://evil.example")
        assert response.status_code == 403
        assert body(response)["status"] == 3
        assert UserQuota.objects.count() == 3


class TestYarn:
    def test_queues_is_an_empty_list(self, alice, login):
        response = login("alice").post(f"{RM}/queues")
        assert response.status_code == 200
        assert body(response)["data"] == {"queues": []}

    def test_queue_resources_say_there_is_no_yarn_cluster(self, alice, login):
        response = login("alice").post(
            f"{RM}/queueresources",
            {"queuename": "default", "clustername": "bdp", "clustertype": "Yarn", "crossCluster": "false"},
            format="json",
        )
        assert_refused(response, "No YARN cluster is configured")

    def test_queue_resources_name_a_missing_queue(self, alice, login):
        assert_refused(login("alice").post(f"{RM}/queueresources", {}, format="json"), "queuename")

    def test_batch_queue_resources_say_there_is_no_yarn_cluster(self, alice, login):
        response = login("alice").post(f"{RM}/batchqueueresources", {"queueNames": ["a", "b"]}, format="json")
        assert_refused(response, "No YARN cluster is configured")

    @pytest.mark.parametrize("names", [None, [], "default", [3, {}]])
    def test_batch_queue_resources_need_a_list_of_names(self, alice, login, names):
        payload = {} if names is None else {"queueNames": names}
        assert_refused(login("alice").post(f"{RM}/batchqueueresources", payload, format="json"), "queueNames")


def test_a_wrong_verb_is_an_envelope(alice, login):
    response = login("alice").get(f"{RM}/userresources")
    assert response.status_code == 405
    assert body(response)["status"] == 1

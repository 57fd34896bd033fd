"""Engine history (ecinfo/*) through the real authentication: one record for its user or an admin,
deletion at both spellings of Linkis' path, the history list's filters and paging, and the admin
engine list with Linkis' ``statuss``."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.models import EngineHistory
from linkismanager.choices import NodeStatus
from linkismanager.models import AuditEntry, Label, Token
from tests.conftest import API
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

EC = f"{API}/linkisManager/ecinfo"
USED = {"instance": 1, "memory": "2.0 GB", "cpu": 1}


def body(response) -> dict:
    return response.json()


def assert_refused(response, *needles: str) -> None:
    assert response.status_code == 400, response.content
    data = body(response)
    assert data["status"] == 1
    for needle in needles:
        assert needle in data["message"], data["message"]


def token_client(user: str, *, admin: bool) -> APIClient:
    token = Token(name=f"ops-{user}-{admin}", is_admin=admin)
    token.set_code(f"LINKIS-AUTH-{user}-{admin}")
    token.save()
    client = APIClient()
    client.credentials(HTTP_TOKEN_CODE=f"LINKIS-AUTH-{user}-{admin}", HTTP_TOKEN_USER=user)
    return client


def make_record(
    user: str = "alice",
    *,
    engine_type: str = "python",
    version: str = "python3",
    instance: str = "host1:2001",
    status: str = NodeStatus.RUNNING,
    created: datetime | None = None,
    ticket_id: uuid.UUID | None = None,
    **fields,
) -> EngineHistory:
    record = EngineHistory.objects.create(
        ticket_id=ticket_id or uuid.uuid4(),
        label_value=f"{user}-IDE,{engine_type}-{version}",
        create_user=user,
        engine_type=engine_type,
        service_instance=instance,
        ecm_instance="host1:9102",
        status=status,
        log_dir_suffix=f"{user}/20260101/{engine_type}/x/logs",
        request_resource=USED,
        request_times=1,
        **fields,
    )
    if created is not None:
        EngineHistory.objects.filter(pk=record.pk).update(created=created)
        record.refresh_from_db()
    return record


class TestAnonymous:
    @pytest.mark.parametrize(
        ("verb", "path"),
        [
            ("get", "get"),
            ("delete", f"delete/{uuid.uuid4()}"),
            ("delete", f"delete/{uuid.uuid4()}}}"),
            ("get", "ecrHistoryList"),
            ("post", "ecList"),
        ],
    )
    def test_anonymous_callers_are_told_to_log_in(self, verb, path):
        response = getattr(APIClient(), verb)(f"{EC}/{path}")
        assert response.status_code == 401
        assert body(response)["status"] == -1


class TestGet:
    def test_the_creator_reads_the_raw_record(self, alice, login):
        record = make_record(used_resource=USED, used_times=1, metrics={"rss": 10})

        response = login("alice").get(f"{EC}/get", {"ticketid": str(record.ticket_id)})

        assert response.status_code == 200
        assert body(response)["method"] == "/api/linkisManager/ecinfo/get"
        data = body(response)["data"]["ecResourceInfoRecord"]
        assert data["ticketId"] == str(record.ticket_id)
        assert data["labelValue"] == "alice-IDE,python-python3"
        assert data["createUser"] == "alice"
        assert data["serviceInstance"] == "host1:2001"
        assert data["ecmInstance"] == "host1:9102"
        assert data["engineType"] == "python"
        assert data["status"] == "Running"
        # Raw, as Linkis sends the record: resources and metrics are JSON text (key order is the
        # database's: PostgreSQL's jsonb keeps its own).
        assert json.loads(data["requestResource"]) == {"instance": 1, "memory": "2.0 GB", "cpu": 1}
        assert json.loads(data["usedResource"]) == {"instance": 1, "memory": "2.0 GB", "cpu": 1}
        assert data["releasedResource"] is None
        assert json.loads(data["metrics"]) == {"rss": 10}
        assert data["createTime"] == int(record.created.timestamp() * 1000)
        assert data["requestTimes"] == 1

    def test_the_creator_is_matched_in_any_case(self, alice, login):
        record = make_record("ALICE")
        response = login("alice").get(f"{EC}/get", {"ticketid": str(record.ticket_id)})
        assert body(response)["data"]["ecResourceInfoRecord"]["createUser"] == "ALICE"

    def test_another_user_is_told_it_does_not_exist(self, alice, bob, login):
        record = make_record("alice")
        response = login("bob").get(f"{EC}/get", {"ticketid": str(record.ticket_id)})
        assert_refused(response, f"tickedId not exist:{record.ticket_id}")

    def test_admins_and_admin_tokens_read_anyones_record(self, alice, hadoop, login):
        record = make_record("alice")
        assert body(login("hadoop").get(f"{EC}/get", {"ticketid": str(record.ticket_id)}))["status"] == 0
        response = token_client("bob", admin=True).get(f"{EC}/get", {"ticketid": str(record.ticket_id)})
        assert body(response)["status"] == 0
        response = token_client("carol", admin=False).get(f"{EC}/get", {"ticketid": str(record.ticket_id)})
        assert_refused(response, "tickedId not exist")

    def test_an_unknown_ticket_is_named(self, alice, login):
        ticket = uuid.uuid4()
        assert_refused(login("alice").get(f"{EC}/get", {"ticketid": str(ticket)}), str(ticket))

    @pytest.mark.parametrize(
        ("query", "named"), [({}, "ticketid"), ({"ticketid": ""}, "ticketid"), ({"ticketid": "abc"}, "abc")]
    )
    def test_a_missing_or_malformed_ticket_is_named(self, alice, login, query, named):
        assert_refused(login("alice").get(f"{EC}/get", query), named)


class TestDelete:
    @pytest.mark.parametrize("suffix", ["", "}"])
    def test_the_creator_deletes_at_either_spelling(self, alice, login, suffix):
        record = make_record("alice")

        response = login("alice").delete(f"{EC}/delete/{record.ticket_id}{suffix}")

        assert response.status_code == 200
        assert body(response)["data"]["ecResourceInfoRecord"]["ticketId"] == str(record.ticket_id)
        assert not EngineHistory.objects.filter(pk=record.pk).exists()
        entry = AuditEntry.objects.get(action="delete_history")
        assert (entry.actor, entry.target) == ("alice", str(record.ticket_id))

    def test_the_stray_brace_is_not_part_of_the_ticket(self, alice, login):
        record = make_record("alice")
        # URL-encoded, as an HTTP client sends the brace
        response = login("alice").delete(f"{EC}/delete/{record.ticket_id}%7D")
        assert body(response)["status"] == 0
        assert not EngineHistory.objects.exists()

    def test_another_user_cannot_delete(self, alice, bob, login):
        record = make_record("alice")
        for suffix in ("", "}"):
            response = login("bob").delete(f"{EC}/delete/{record.ticket_id}{suffix}")
            assert_refused(response, "tickedId not exist")
        assert EngineHistory.objects.filter(pk=record.pk).exists()

    def test_an_admin_deletes_anyones_record(self, alice, hadoop, login):
        record = make_record("alice")
        assert body(login("hadoop").delete(f"{EC}/delete/{record.ticket_id}"))["status"] == 0
        assert not EngineHistory.objects.exists()

    def test_unknown_and_malformed_tickets_are_named(self, alice, login):
        client = login("alice")
        ticket = uuid.uuid4()
        assert_refused(client.delete(f"{EC}/delete/{ticket}"), str(ticket))
        assert_refused(client.delete(f"{EC}/delete/not-a-ticket}}"), "not-a-ticket")

    def test_delete_answers_only_delete(self, alice, login):
        record = make_record("alice")
        response = login("alice").get(f"{EC}/delete/{record.ticket_id}")
        assert response.status_code == 405
        assert body(response)["status"] == 1
        assert EngineHistory.objects.exists()

    def test_a_cross_site_delete_is_refused(self, alice, login):
        record = make_record("alice")
        response = login("alice").delete(f"{EC}/delete/{record.ticket_id}", HTTP_ORIGIN="https://evil.example")
        assert response.status_code == 403
        assert EngineHistory.objects.exists()


class TestHistoryList:
    @pytest.fixture
    def records(self, alice, bob, hadoop):
        now = timezone.now()
        return {
            "alice_python": make_record("alice", created=now - timedelta(minutes=3), used_resource=USED),
            "alice_shell": make_record(
                "alice",
                engine_type="shell",
                version="1",
                instance="host1:2002",
                status=NodeStatus.FAILED,
                created=now - timedelta(minutes=2),
            ),
            "bob_python": make_record(
                "bob", instance="host1:2003", status=NodeStatus.SUCCESS, created=now - timedelta(minutes=1)
            ),
            "alice_old": make_record("alice", instance="host1:2004", created=now - timedelta(days=3)),
        }

    @staticmethod
    def tickets(response) -> list[str]:
        return [row["ticketId"] for row in body(response)["data"]["engineList"]]

    def wide(self, **query) -> dict:
        start = timezone.localtime(timezone.now() - timedelta(days=10))
        return {"startDate": start.strftime("%Y-%m-%d %H:%M:%S"), **query}

    def test_a_user_sees_their_own_records_newest_first(self, records, login):
        response = login("alice").get(f"{EC}/ecrHistoryList", self.wide())

        assert response.status_code == 200
        assert self.tickets(response) == [
            str(records["alice_shell"].ticket_id),
            str(records["alice_python"].ticket_id),
            str(records["alice_old"].ticket_id),
        ]
        assert body(response)["data"]["totalPage"] == 3
        row = body(response)["data"]["engineList"][1]
        assert row["engineType"] == "python"
        # Linkis' ResourceVo, as the console's history table reads it: memory in bytes.
        assert row["requestResource"] == {"instance": 1, "cores": 1, "memory": 2 * GIB}
        assert row["usedResource"] == {"instance": 1, "cores": 1, "memory": 2 * GIB}
        assert row["releasedResource"] is None
        assert row["createUser"] == "alice"
        assert row["serviceInstance"] == "host1:2001"

    def test_a_user_cannot_see_another_users_records_through_creator(self, records, login):
        response = login("alice").get(f"{EC}/ecrHistoryList", self.wide(creator="bob"))
        assert str(records["bob_python"].ticket_id) not in self.tickets(response)

    def test_an_admin_sees_everyone_or_one_creator(self, records, login):
        client = login("hadoop")
        assert body(client.get(f"{EC}/ecrHistoryList", self.wide()))["data"]["totalPage"] == 4
        response = client.get(f"{EC}/ecrHistoryList", self.wide(creator="bob"))
        assert self.tickets(response) == [str(records["bob_python"].ticket_id)]
        response = token_client("alice", admin=True).get(f"{EC}/ecrHistoryList", self.wide())
        assert body(response)["data"]["totalPage"] == 4

    def test_a_job_history_admin_sees_everyone(self, records, make_user, login, settings):
        settings.LINKIS_HISTORY_ADMIN_USERS = ["auditor"]
        make_user("Auditor")
        response = login("Auditor").get(f"{EC}/ecrHistoryList", self.wide(creator="bob"))
        assert self.tickets(response) == [str(records["bob_python"].ticket_id)]
        settings.LINKIS_HISTORY_ADMIN_USERS = []
        response = login("Auditor").get(f"{EC}/ecrHistoryList", self.wide())
        assert self.tickets(response) == []

    def test_start_date_defaults_to_the_start_of_today(self, records, login):
        # Records made "a few minutes ago" may fall on yesterday just after midnight.
        midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        expected = {
            str(record.ticket_id)
            for record in records.values()
            if record.create_user == "alice" and record.created >= midnight
        }
        response = login("alice").get(f"{EC}/ecrHistoryList")
        assert set(self.tickets(response)) == expected
        assert str(records["alice_old"].ticket_id) not in expected

    def test_dates_bound_the_records(self, records, login):
        old = timezone.localtime(records["alice_old"].created)
        query = {
            "startDate": (old - timedelta(seconds=5)).strftime("%Y-%m-%d %H:%M:%S"),
            "endDate": (old + timedelta(seconds=5)).strftime("%Y-%m-%d %H:%M:%S"),
        }
        response = login("alice").get(f"{EC}/ecrHistoryList", query)
        assert self.tickets(response) == [str(records["alice_old"].ticket_id)]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"instance": "host1:2002"}, ["alice_shell"]),
            ({"engineType": "shell"}, ["alice_shell"]),
            ({"engineType": "python-python3"}, ["alice_python", "alice_old"]),
            ({"status": "Failed"}, ["alice_shell"]),
            ({"status": "", "instance": "", "engineType": ""}, ["alice_shell", "alice_python", "alice_old"]),
        ],
    )
    def test_filters(self, records, login, query, expected):
        response = login("alice").get(f"{EC}/ecrHistoryList", self.wide(**query))
        assert self.tickets(response) == [str(records[name].ticket_id) for name in expected]

    def test_paging(self, records, login):
        response = login("hadoop").get(f"{EC}/ecrHistoryList", self.wide(pageNow=2, pageSize=3))
        assert self.tickets(response) == [str(records["alice_old"].ticket_id)]
        assert body(response)["data"]["totalPage"] == 4

    @pytest.mark.parametrize(
        ("query", "named"),
        [
            ({"status": "Sleeping"}, "Sleeping is not a NodeStatus name"),
            ({"pageNow": 0}, "pageNow"),
            ({"pageSize": "many"}, "pageSize"),
            ({"pageSize": 1001}, "pageSize"),
            ({"startDate": "2026-01-01"}, "startDate"),
            ({"endDate": "yesterday"}, "endDate"),
            ({"startDate": "2026-02-01 00:00:00", "endDate": "2026-01-01 00:00:00"}, "startDate"),
            ({"creator": "bob smith"}, "Invalid creator : bob smith"),
        ],
    )
    def test_bad_values_are_named(self, alice, hadoop, login, query, named):
        assert_refused(login("hadoop").get(f"{EC}/ecrHistoryList", query), named)


class TestEcList:
    @pytest.fixture
    def engines(self, alice, bob, hadoop):
        plain = make_ecm()
        clustered = make_ecm("host2:9102", labels={"yarnCluster": "yarn-bdp"})
        python = make_engine(
            plain, owner="alice", instance="host1:2001", memory=2 * GIB, pid=4321, properties={"a": "b"}
        )
        make_record("alice", ticket_id=python.ticket_id, used_resource=USED)
        return {
            "python": python,
            "busy": make_engine(plain, owner="alice", instance="host1:2002", status=NodeStatus.BUSY),
            "shell": make_engine(
                clustered, owner="bob", instance="host2:2001", engine_type="shell", engine_version="1"
            ),
            "ended": make_engine(
                plain, owner="alice", instance="host1:2003", status=NodeStatus.SUCCESS, ended_at=timezone.now()
            ),
        }

    @staticmethod
    def instances(response) -> list[str]:
        return [row["instance"] for row in body(response)["data"]["ecList"]]

    def test_an_admin_lists_live_engines_with_their_status_and_used_resource(self, engines, login):
        response = login("hadoop").post(f"{EC}/ecList", {"creators": ["alice", "bob"]}, format="json")

        assert response.status_code == 200
        assert self.instances(response) == ["host1:2001", "host1:2002", "host2:2001"]
        row = body(response)["data"]["ecList"][0]
        assert row["instanceStatus"] == "Unlock"
        assert row["owner"] == "alice"
        assert row["name"] == "linkis-cg-engineconn"
        assert row["identifier"] == "4321"
        assert row["engineType"] == "python"
        assert row["ecmInstance"] == "host1:9102"
        assert row["useResource"] == {"driver": USED}
        assert row["params"] == '{"a": "b"}'
        assert row["ticketId"] == str(engines["python"].ticket_id)
        created = timezone.localtime(engines["python"].created).strftime("%Y-%m-%d %H:%M:%S")
        assert row["createTime"] == created
        # an engine without a history record has no used resource to show
        assert body(response)["data"]["ecList"][1]["useResource"] is None

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ({"creators": ["alice"], "statuss": ["Busy"]}, ["host1:2002"]),
            ({"creators": ["alice"], "statuss": ["Unlock", "Busy"]}, ["host1:2001", "host1:2002"]),
            ({"creators": ["alice", "bob"], "engineTypes": ["shell"]}, ["host2:2001"]),
            ({"creators": ["alice", "bob"], "engineTypes": ["python-python3"]}, ["host1:2001", "host1:2002"]),
            ({"ecInstances": ["host1:2002", "host2:2001"]}, ["host1:2002", "host2:2001"]),
            ({"creators": ["alice", "bob"], "crossCluster": True}, ["host2:2001"]),
            ({"creators": ["alice", "bob"], "crossCluster": False}, ["host1:2001", "host1:2002"]),
            ({"creators": ["alice"], "queueName": "default"}, []),
            ({"creators": ["alice"], "statuss": None, "engineTypes": None}, ["host1:2001", "host1:2002"]),
            ({"creators": ["carol"]}, []),
        ],
    )
    def test_filters(self, engines, login, payload, expected):
        response = login("hadoop").post(f"{EC}/ecList", payload, format="json")
        assert self.instances(response) == expected

    def test_an_admin_token_may_list(self, engines):
        response = token_client("alice", admin=True).post(f"{EC}/ecList", {"creators": ["bob"]}, format="json")
        assert self.instances(response) == ["host2:2001"]

    def test_a_non_admin_user_is_refused(self, engines, login):
        response = login("alice").post(f"{EC}/ecList", {"creators": ["alice"]}, format="json")
        assert_refused(response, "User:alice has no permission to query ecList.")

    def test_a_token_without_the_admin_flag_is_refused_without_showing_its_code(self, engines):
        response = token_client("alice", admin=False).post(f"{EC}/ecList", {"creators": ["alice"]}, format="json")
        assert_refused(response, "Token ops-alice-False has no permission to query ecList.")
        assert "LINKIS-AUTH" not in body(response)["message"]

    @pytest.mark.parametrize(
        ("payload", "named"),
        [
            ({}, "creators is null in the parameters of the request"),
            ({"creators": []}, "creators is null in the parameters of the request"),
            ({"creators": None, "ecInstances": []}, "creators is null"),
            ({"creators": "alice"}, "creators"),
            ({"creators": ["alice"], "statuss": ["Sleeping"]}, "Sleeping is not a NodeStatus name"),
            ({"creators": ["alice"], "statuss": "Busy"}, "statuss"),
            ({"creators": ["alice smith"]}, "Invalid creator: alice smith"),
            ({"creators": ["alice"], "engineTypes": [{"type": "python"}]}, "engineTypes"),
            ({"creators": ["alice"], "crossCluster": "sometimes"}, "crossCluster"),
        ],
    )
    def test_bad_fields_are_named(self, hadoop, login, payload, named):
        assert_refused(login("hadoop").post(f"{EC}/ecList", payload, format="json"), named)

    def test_a_body_that_is_not_an_object_is_refused(self, hadoop, login):
        assert_refused(login("hadoop").post(f"{EC}/ecList", ["alice"], format="json"), "JSON object")

    def test_a_lost_ecm_label_does_not_matter_for_plain_listing(self, engines, login):
        Label.objects.filter(key="yarnCluster").delete()
        response = login("hadoop").post(f"{EC}/ecList", {"creators": ["bob"], "crossCluster": True}, format="json")
        assert self.instances(response) == []

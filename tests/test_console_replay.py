"""The Linkis web console (linkis-web), replayed against real data.

Each test walks one page of the console's manager section as a browser does: it logs in through
the real login endpoint, sends the very requests the page's code builds (same paths, verbs, query
parameters and JSON bodies, empty search fields included), and asserts the fields the page reads
to draw its tables, dialogs and toasts. The engine pages run on a real ECM agent and real engine
processes: their logs are read, their health edited, and they are stopped from the console.

The console treats any ``status`` other than 0 as a failure and shows ``message``; ``Console.fetch``
does the same by asserting it, and answers ``data`` as the console's ``api.fetch`` does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.models import EngineConn, EngineHistory
from engines.remote import call_engine
from engines.services import EngineRequest, admit_engine, set_runtime_status
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.labels import format_em_instance, format_engine_instance
from linkismanager.models import EngineConnManager, NodeKind, UserQuota
from linkismanager.resources import LoadInstance, log_json
from tests.conftest import API
from tests.engines import conftest as engines_conftest
from tests.engines.conftest import wait_for
from tests.factories import GIB, make_ecm, make_engine

ECM_APP = NodeKind.ECM.value
ENGINE_APP = NodeKind.ENGINE.value
# The console's page sizes: its tables page by 15, its log viewer by 1000 lines.
PAGE_SIZE = 15
LOG_PAGE = 1000

# A real ECM agent (``manage.py run_ecm``), from the engine tests' fixtures.
start_agent = engines_conftest.start_agent


class Console:
    """The console's ``api.fetch`` in a logged-in browser on this host.

    As there, ``fetch(url, "get")`` names the verb, and the verb defaults to POST. GET and DELETE
    send ``data`` as query parameters, which axios writes without the null or undefined ones (None
    here) and with booleans as ``true``/``false``; POST and PUT send it as a JSON body. Unsafe
    requests carry the page's own ``Origin``, as browsers send it.
    """

    ORIGIN = "http://testserver"

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def send(self, path: str, data: Any = None, method: str = "post"):
        if isinstance(data, str):  # api.fetch(url, "get"): a text second argument is the verb
            data, method = None, data
        url = f"{API}{path}"
        headers = {"HTTP_CONTENT_LANGUAGE": "zh-CN"}
        if method in ("get", "delete"):
            params = {
                key: (str(value).lower() if isinstance(value, bool) else value)
                for key, value in (data or {}).items()
                if value is not None
            }
            if params:
                url = f"{url}?{urlencode(params)}"
            if method == "delete":
                headers["HTTP_ORIGIN"] = self.ORIGIN
            return self.client.generic(method.upper(), url, **headers)
        headers["HTTP_ORIGIN"] = self.ORIGIN
        body = "" if data is None else json.dumps(data)
        return self.client.generic(method.upper(), url, body, content_type="application/json;charset=UTF-8", **headers)

    def fetch(self, path: str, data: Any = None, method: str = "post") -> dict[str, Any]:
        response = self.send(path, data, method)
        answer = response.json()
        assert answer["status"] == 0, (path, answer)
        assert response.status_code == 200, (path, answer)
        return answer["data"]

    def message(self, path: str, data: Any = None, method: str = "post") -> str:
        """The success message the console toasts."""
        response = self.send(path, data, method)
        answer = response.json()
        assert answer["status"] == 0, (path, answer)
        return answer["message"]


@pytest.fixture
def console(login, hadoop, alice, bob):
    """Log in as one of the demo users: ``hadoop`` (a Linkis admin by name, not a superuser),
    ``alice`` or ``bob``."""

    def open_as(name: str) -> Console:
        return Console(login(name))

    return open_as


def shown(resource: dict[str, Any]) -> tuple[int, int, int]:
    """What the console's resource cell reads: cores, memory (bytes, shown divided by 1024³) and
    instance (shown as apps)."""
    return resource["cores"], resource["memory"], resource["instance"]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def string_values(row: dict[str, Any]) -> set[str]:
    """The label tags the console draws: each label's ``stringValue``."""
    return {label["stringValue"] for label in row["labels"]}


def ecm_labels(instance: str, **more: str) -> dict[str, str]:
    """The labels an agent registers with, plus ``more``."""
    return {"serverAlias": ECM_APP, "emInstance": format_em_instance(instance), **more}


def edit_dialog(row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The tag-edit dialog's form, opened on ``row``: every label of the row, modifiable or not."""
    return {
        "instance": row["instance"],
        "labels": [
            {"key": label["labelKey"], "value": label["stringValue"], "modifiable": label.get("modifiable", False)}
            for label in row["labels"]
        ],
        "applicationName": row["applicationName"],
        **fields,
    }


def submitted(form: dict[str, Any]) -> dict[str, Any]:
    """What the dialog's submit sends: the form, its labels mapped back to ``labelKey``/``stringValue``."""
    return {**form, "labels": [{"labelKey": tag["key"], "stringValue": tag["value"]} for tag in form["labels"]]}


def local_text(moment: datetime) -> str:
    """A date as the console's pickers format it (``YYYY-MM-DD HH:mm:ss``, the browser's local time)."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


# --- The ECM page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_ecm_page_lists_and_searches_ecms_as_the_console_asks(console):
    registered = datetime(2026, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
    first = make_ecm(
        "10.0.0.1:9102",
        labels=ecm_labels("10.0.0.1:9102", tenant="teamA"),
        registered_at=registered,
        description="rack 1",
    )
    second = make_ecm(
        "10.0.0.2:9102", labels=ecm_labels("10.0.0.2:9102"), owner="linkis", reported_health=NodeHealthy.WARN
    )
    make_engine(first, instance="10.0.0.1:40001", memory=2 * GIB, cores=2)  # running: used
    make_engine(first, owner="bob", status=NodeStatus.STARTING, engine_type="shell", engine_version="1")  # locked
    make_engine(first, instance="10.0.0.1:40002", status=NodeStatus.SUCCESS, ended_at=timezone.now())  # gone
    page = console("hadoop")

    # Page load: the ECMs, the status lists and the editable label keys.
    ecms = page.fetch("/linkisManager/listAllEMs", "get")["EMs"]
    healthy_status_list = page.fetch("/linkisManager/listAllECMHealthyStatus", {"onlyEditable": True}, "get")
    assert healthy_status_list["nodeHealthy"] == ["Healthy", "UnHealthy", "WARN", "StockAvailable", "StockUnavailable"]
    assert "Unlock" in page.fetch("/linkisManager/listAllNodeHealthyStatus", "get")["nodeStatus"]
    assert "tenant" in page.fetch("/microservice/modifiableLabelKey", "get")["keyList"]

    assert [row["instance"] for row in ecms] == ["10.0.0.1:9102", "10.0.0.2:9102"]
    row = ecms[0]
    assert row["applicationName"] == ECM_APP  # the link to the ECM's engines carries it
    assert row["nodeHealthy"] == "Healthy"
    assert string_values(row) == {ECM_APP, format_em_instance(first.instance), "teamA"}
    assert shown(row["usedResource"]) == (2, 2 * GIB, 1)
    assert shown(row["lockedResource"]) == (1, 1 * GIB, 1)
    assert shown(row["maxResource"]) == (100, 100 * GIB, 50)
    assert (row["owner"], row["description"]) == ("hadoop", "rack 1")
    assert row["startTime"] == epoch_ms(registered)
    other = ecms[1]
    assert (other["nodeHealthy"], other["owner"], other["description"]) == ("WARN", "linkis", "")
    assert shown(other["usedResource"]) == shown(other["lockedResource"]) == (0, 0, 0)
    assert other["startTime"] == epoch_ms(second.created)

    # The search form sends its four fields, empty ones as "" (an older form has no tenant field).
    owner_list = list(dict.fromkeys(row["owner"] for row in ecms))

    def search(instance: str = "", node_healthy: str = "", owner: str = "", tenant: str | None = "") -> list[str]:
        params = {"instance": instance, "nodeHealthy": node_healthy, "owner": owner, "tenantLabel": tenant}
        return [row["instance"] for row in page.fetch("/linkisManager/listAllEMs", params, "get")["EMs"]]

    assert search() == search(tenant=None) == ["10.0.0.1:9102", "10.0.0.2:9102"]
    assert search(instance="10.0.0.2") == ["10.0.0.2:9102"]
    assert search(node_healthy="WARN") == ["10.0.0.2:9102"]
    assert search(owner=owner_list[1]) == ["10.0.0.2:9102"]
    assert search(tenant="team") == ["10.0.0.1:9102"]
    assert search(node_healthy="Healthy", owner="hadoop", tenant="teamA") == ["10.0.0.1:9102"]
    assert search(node_healthy="StockAvailable") == []


@pytest.mark.django_db
def test_the_ecm_tag_edit_dialog_sends_every_label_back_and_the_change_sticks(console):
    ecm = make_ecm("10.0.0.1:9102", labels=ecm_labels("10.0.0.1:9102", tenant="teamA"))
    page = console("hadoop")
    key_list = page.fetch("/microservice/modifiableLabelKey", "get")["keyList"]
    statuses = page.fetch("/linkisManager/listAllECMHealthyStatus", {"onlyEditable": True}, "get")["nodeHealthy"]

    def current_row() -> dict[str, Any]:
        (row,) = page.fetch("/linkisManager/listAllEMs", "get")["EMs"]
        return row

    # Open the dialog, retag teamA as teamB, add a route, drain the ECM and leave a remark.
    row = current_row()
    form = edit_dialog(row, emStatus=row["nodeHealthy"], description=row["description"])
    tenant = next(tag for tag in form["labels"] if tag["key"] == "tenant")
    tenant.update(value="teamB", modifiable=True)
    assert "route" in key_list and "StockAvailable" in statuses
    form["labels"].append({"key": "route", "value": "batch"})
    form.update(emStatus="StockAvailable", description="draining for a kernel upgrade")
    body = submitted(form)
    # The non-modifiable labels go back too: the manager keeps them whatever is sent.
    assert {label["labelKey"] for label in body["labels"]} == {"serverAlias", "emInstance", "tenant", "route"}
    answer = page.send("/linkisManager/modifyEMInfo", body, "put").json()
    assert (answer["status"], answer["message"], answer["data"]["nodeHealthy"]) == (0, "success", "StockAvailable")

    row = current_row()
    assert string_values(row) == {ECM_APP, format_em_instance(ecm.instance), "teamB", "batch"}
    assert (row["nodeHealthy"], row["description"]) == ("StockAvailable", "draining for a kernel upgrade")
    assert (row["pinnedHealth"], row["pinnedBy"]) == ("StockAvailable", "hadoop")

    # Reopened, the dialog shows the current status; closing the route tag and saving keeps the pin.
    form = edit_dialog(row, emStatus=row["nodeHealthy"], description=row["description"])
    form["labels"] = [tag for tag in form["labels"] if tag["key"] != "route"]
    page.fetch("/linkisManager/modifyEMInfo", submitted(form), "put")
    row = current_row()
    assert string_values(row) == {ECM_APP, format_em_instance(ecm.instance), "teamB"}
    assert row["nodeHealthy"] == "StockAvailable"

    # Healthy releases the ECM; the search by status follows.
    page.fetch("/linkisManager/modifyEMInfo", submitted(edit_dialog(row, emStatus="Healthy", description="")), "put")
    row = current_row()
    assert (row["nodeHealthy"], row["pinnedHealth"], row["description"]) == ("Healthy", None, "")
    healthy = page.fetch("/linkisManager/listAllEMs", {"nodeHealthy": "Healthy", "instance": ""}, "get")["EMs"]
    assert [item["instance"] for item in healthy] == [ecm.instance]


# --- The resource page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_resource_page_shows_a_user_her_own_resources(console):
    ecm = make_ecm()
    started = make_engine(ecm, instance="host1:40001", memory=2 * GIB)
    make_engine(ecm, status=NodeStatus.STARTING)
    make_engine(ecm, instance="host1:40003", engine_type="shell", engine_version="1")
    make_engine(ecm, instance="host1:40004", creator="Schedulis")
    make_engine(ecm, instance="host1:40005", owner="bob")
    page = console("alice")

    assert page.fetch("/jobhistory/governanceStationAdmin", "get")["admin"] is False  # so: her own view
    assert {"python", "shell"} <= set(page.fetch("/linkisManager/rm/engineType", "get")["engineType"])

    # The progress bars: per user + creator, then per engine type, as shares of the limits.
    tree = page.fetch("/linkisManager/rm/userresources", None, "post")["userResources"]
    assert [item["userCreator"] for item in tree] == ["(alice,IDE)", "(alice,Schedulis)"]
    ide = tree[0]
    # python: 3 GiB, 2 cores and 2 of the default 20 GiB, 10 cores, 10 instances; shell: 1 of 10.
    assert {item["engineType"]: float(item["percent"]) for item in ide["engineTypes"]} == {
        "(python,python3)": 0.2,
        "(shell,1)": 0.1,
    }
    assert float(ide["percent"]) == 0.15  # 3 cores of 20

    # The first bar is expanded: its engines, then one engine type's.
    body = {"userCreator": ide["userCreator"]}  # engineType is undefined, so not sent
    (application,) = page.fetch("/linkisManager/rm/applicationlist", body, "post")["applications"]
    listing = application["applicationList"]
    assert shown(listing["usedResource"]) == (2, 3 * GIB, 2)
    assert shown(listing["lockedResource"]) == (1, 1 * GIB, 1)
    assert listing["maxResource"]["instance"] == 20  # instances used / max: 2 / 20
    rows = {row["instance"]: row for row in listing["engineInstances"]}
    assert len(rows) == 3
    row = rows["host1:40001"]
    assert (row["engineType"], row["status"], row["label"], row["owner"]) == (
        "python",
        "Unlock",
        "python-python3",
        "alice",
    )
    assert shown(row["resource"]["usedResource"]) == (1, 2 * GIB, 1)
    assert shown(row["resource"]["lockedResource"]) == (0, 0, 0)
    # The page formats startTime from its text (and checks it for "CST").
    assert datetime.strptime(row["startTime"], "%a %b %d %H:%M:%S GMT %Y").replace(tzinfo=UTC) == (
        started.created.replace(microsecond=0)
    )

    body = {"userCreator": ide["userCreator"], "engineType": ide["engineTypes"][0]["engineType"]}
    (application,) = page.fetch("/linkisManager/rm/applicationlist", body, "post")["applications"]
    assert {row["engineType"] for row in application["applicationList"]["engineInstances"]} == {"python"}
    assert len(application["applicationList"]["engineInstances"]) == 2


@pytest.mark.django_db
def test_the_resource_page_admin_view_pages_and_searches_every_users_resources(console):
    ecm = make_ecm()
    make_engine(ecm, instance="host1:40001", memory=2 * GIB, cores=2)
    for number in range(1, 17):
        UserQuota.objects.create(user=f"u{number:02d}", creator="IDE", engine_type="python-python3")
    page = console("hadoop")
    assert page.fetch("/jobhistory/governanceStationAdmin", "get")["admin"] is True  # so: the admin view
    engines = ["all", *page.fetch("/linkisManager/rm/engineType", "get")["engineType"]]

    def search(user_name: str | None = None, app_type: str | None = None, engine_type: str | None = None, page_now=1):
        params = {
            "username": user_name,
            "creator": app_type,
            "engineType": "" if engine_type == "all" else engine_type,
            "page": page_now,
            "size": PAGE_SIZE,
        }
        return page.fetch("/linkisManager/rm/allUserResource", params, "get")

    # The first load: an empty search bar, so only the page and its size are sent.
    first = search()
    assert first["total"] == 17
    assert [row["username"] for row in first["resources"]] == ["alice"] + [f"u{n:02d}" for n in range(1, 15)]
    assert [row["username"] for row in search(page_now=2)["resources"]] == ["u15", "u16"]

    assert "python" in engines  # the engine type select: "all", then rm/engineType's list
    (alice,) = search("ali", "IDE", "python")["resources"]
    assert (alice["creator"], alice["engineTypeWithVersion"], alice["resourceType"]) == (
        "IDE",
        "python-python3",
        "LoadInstance",
    )
    # The admin table reads cores, memory and instances of each map.
    names = ("usedResource", "lockedResource", "maxResource", "leftResource")
    assert {name: (alice[name]["cores"], alice[name]["memory"], alice[name]["instances"]) for name in names} == {
        "usedResource": (2, 2 * GIB, 1),
        "lockedResource": (0, 0, 0),
        "maxResource": (10, 20 * GIB, 10),
        "leftResource": (8, 18 * GIB, 9),
    }
    assert alice["loadResourceStatus"] == "normal"
    assert alice["id"] is None  # no quota row: she is on the default limits

    # "all" engine types is sent as ""; the clear button sends every field empty.
    assert search(engine_type="all")["total"] == search("", "", "")["total"] == 17
    assert search(engine_type="shell")["total"] == 0

    # Reset one row from the operations column, then the table is searched again.
    row = first["resources"][1]
    assert row["username"] == "u01"
    assert page.message("/linkisManager/rm/resetResource", {"resourceId": row["id"]}, "delete") == "success"
    assert search()["total"] == 16


# --- The engine history page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_engine_history_page_pages_through_records(console):
    now = timezone.now()
    records = []
    for number in range(17):
        user = "alice" if number % 3 else "bob"
        record = EngineHistory.objects.create(
            ticket_id=f"00000000-0000-4000-8000-{number:012d}",
            label_value=f"{user}-IDE,python-python3",
            create_user=user,
            engine_type="python",
            service_instance=f"host1:{41000 + number}",
            ecm_instance="host1:9102",
            status=NodeStatus.SUCCESS,
            log_dir_suffix=f"{user}/20260301/python/{number}/logs",
            request_resource=log_json(LoadInstance(2 * GIB, 1, 1)),
            used_resource=log_json(LoadInstance(2 * GIB, 1, 1)),
            used_time=now - timedelta(seconds=number),
        )
        EngineHistory.objects.filter(pk=record.pk).update(created=now - timedelta(seconds=number))
        record.refresh_from_db()
        records.append(record)  # newest first
    # The first load asks from today 00:00 (the default), so records made just before midnight
    # are not in it.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = [record for record in records if record.created >= midnight]

    admin = console("hadoop")
    first = admin.fetch("/linkisManager/ecinfo/ecrHistoryList", {"pageNow": 1, "pageSize": PAGE_SIZE}, "get")
    assert first["totalPage"] == len(today)  # the pager's total
    assert [row["ticketId"] for row in first["engineList"]] == [str(r.ticket_id) for r in today[:PAGE_SIZE]]
    row = first["engineList"][0]
    assert (row["serviceInstance"], row["engineType"], row["createUser"]) == ("host1:41000", "python", "bob")
    assert row["labelValue"].split(",") == ["bob-IDE", "python-python3"]
    assert shown(row["usedResource"]) == (1, 2 * GIB, 1)
    assert row["usedTime"] == epoch_ms(records[0].used_time)
    # What its "view log" button sends on.
    assert (row["ecmInstance"], row["logDirSuffix"]) == ("host1:9102", "bob/20260301/python/0/logs")

    # The search form: instance, user, a date range, an engine type, and the page.
    window = {"startDate": local_text(now - timedelta(hours=1)), "endDate": local_text(now + timedelta(minutes=1))}
    second = admin.fetch("/linkisManager/ecinfo/ecrHistoryList", {**window, "pageNow": 2, "pageSize": PAGE_SIZE}, "get")
    assert second["totalPage"] == 17
    assert [row["ticketId"] for row in second["engineList"]] == [str(r.ticket_id) for r in records[PAGE_SIZE:]]
    params = {"creator": "bob", **window, "engineType": "python", "pageNow": 1, "pageSize": PAGE_SIZE}
    bobs = admin.fetch("/linkisManager/ecinfo/ecrHistoryList", params, "get")
    assert bobs["totalPage"] == 6 and {row["createUser"] for row in bobs["engineList"]} == {"bob"}
    params = {"instance": "host1:41004", **window, "pageNow": 1, "pageSize": PAGE_SIZE}
    (one,) = admin.fetch("/linkisManager/ecinfo/ecrHistoryList", params, "get")["engineList"]
    assert one["ticketId"] == str(records[4].ticket_id)

    # A user sees her own records only.
    mine = console("alice").fetch(
        "/linkisManager/ecinfo/ecrHistoryList", {**window, "pageNow": 1, "pageSize": PAGE_SIZE}, "get"
    )
    assert mine["totalPage"] == 11 and {row["createUser"] for row in mine["engineList"]} == {"alice"}


# --- An ECM's engines, on a real agent ------------------------------------------------------------

AGENT = "console-host:9102"
LOG_LINES = 1200
PRINT_LINES = f"for i in range(1, {LOG_LINES + 1}):\n    print(f'console-line {{i:04d}}')\n"


def launch(user: str, engine_type: str = "python", version: str = "python3") -> EngineConn:
    """Admit one engine of 1 GiB and 1 core, with the labels a createEngineConn gives it."""
    labels = {"engineType": f"{engine_type}-{version}", "userCreator": f"{user}-IDE"}
    request = EngineRequest(user, "IDE", engine_type, version, LoadInstance(1 * GIB, 1, 1), labels=labels)
    return admit_engine(request, actor=user)


def wait_until(engine: EngineConn, status: str) -> None:
    def reached() -> bool:
        engine.refresh_from_db()
        return engine.status == status

    wait_for(reached, what=f"engine {engine.pk} to be {status} (now {engine.status}: {engine.end_reason})")


def lines(first: int, last: int) -> list[str]:
    return [f"console-line {i:04d}" for i in range(first, last + 1)]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_ecms_engines_page_on_a_real_agent(console, start_agent):
    start_agent(AGENT)
    before = timezone.now()
    printer, other, bobs = launch("alice"), launch("alice"), launch("bob", "shell", "1")
    for engine in (printer, other, bobs):
        wait_until(engine, NodeStatus.UNLOCK)
    assert call_engine(printer, "POST", "/execute", {"code": PRINT_LINES})["ok"]
    page = console("hadoop")

    # On the ECM page, the agent's row counts the three engines; its instance links to them.
    (ecm_row,) = page.fetch("/linkisManager/listAllEMs", "get")["EMs"]
    assert shown(ecm_row["usedResource"]) == (3, 3 * GIB, 3)
    route = {"applicationName": ecm_row["applicationName"], "instance": ecm_row["instance"]}
    assert route == {"applicationName": ECM_APP, "instance": AGENT}

    def listed(**search: str) -> dict[str, dict[str, Any]]:
        body = {"em": {"serviceInstance": route}, **search}
        return {row["instance"]: row for row in page.fetch("/linkisManager/listEMEngines", body, "post")["engines"]}

    rows = listed()
    assert set(rows) == {printer.instance, other.instance, bobs.instance}
    row = rows[printer.instance]
    assert (row["engineType"], row["nodeHealthy"], row["nodeStatus"], row["owner"]) == (
        "python",
        "Healthy",
        "Unlock",
        "alice",
    )
    assert string_values(row) == {
        "python-python3",
        "alice-IDE",
        ENGINE_APP,
        format_em_instance(AGENT),
        format_engine_instance(printer.instance),
    }
    assert shown(row["usedResource"]) == (1, 1 * GIB, 1)
    assert epoch_ms(before) - 1000 <= row["startTime"] <= epoch_ms(timezone.now())
    assert (row["applicationName"], row["emInstance"]) == (ENGINE_APP, AGENT)  # what its buttons send on
    assert rows[bobs.instance]["engineType"] == "shell"

    # The search form: typed instance (spaces removed), a NodeStatus, an owner, an engine type.
    # Its engine type select only appears once there are engines, so an untouched form omits it.
    empty = {"emInstance": "", "nodeStatus": "", "owner": ""}
    assert set(listed(**empty)) == set(rows)
    assert set(listed(**{**empty, "owner": "bob"})) == {bobs.instance}
    assert set(listed(**{**empty, "engineType": "python"})) == {printer.instance, other.instance}
    assert set(listed(**{**empty, "nodeStatus": "Unlock"})) == set(rows)
    assert listed(**{**empty, "nodeStatus": "Busy"}) == {}
    typed = printer.instance.replace(":", " : ")  # stray spaces, which the page strips
    expected = {instance for instance in rows if printer.instance in instance}
    assert set(listed(**{**empty, "emInstance": typed.replace(" ", "")})) == expected

    # Tag edit of one engine: every label goes back, a route is added, UnHealthy is chosen; the
    # form's emStatus carries the engine's NodeStatus, which is not editable and is ignored.
    form = edit_dialog(rows[other.instance], emStatus=rows[other.instance]["nodeStatus"], nodeHealthy="UnHealthy")
    form["labels"].append({"key": "route", "value": "nightly"})
    message = page.message("/linkisManager/modifyEngineInfo", submitted(form), "put")
    assert message == "success to update engine information(更新引擎信息成功)"
    row = listed()[other.instance]
    assert (row["nodeHealthy"], row["nodeStatus"]) == ("UnHealthy", "Unlock")
    assert "nightly" in string_values(row)
    assert string_values(row) - {"nightly"} == string_values(rows[other.instance])  # the others kept
    # Reopened and saved untouched (health not chosen: ""), nothing changes.
    form = edit_dialog(row, emStatus=row["nodeStatus"], nodeHealthy="")
    page.fetch("/linkisManager/modifyEngineInfo", submitted(form), "put")
    assert listed()[other.instance]["nodeHealthy"] == "UnHealthy"
    assert "nightly" in string_values(listed()[other.instance])

    # Select two engines and set them unhealthy.
    selection = [rows[printer.instance], rows[bobs.instance]]
    instances = [
        {"applicationName": r["applicationName"], "instance": r["instance"], "engineType": r["engineType"]}
        for r in selection
    ]
    page.fetch("/linkisManager/batchSetEngineToUnHealthy", {"instances": instances}, "post")
    assert {instance: r["nodeHealthy"] for instance, r in listed().items()} == dict.fromkeys(rows, "UnHealthy")

    # View log: stdout from the newest lines back, 1000 a page; the next page asks from line 1000.
    def open_log(row: dict[str, Any], from_line: int, log_type: str = "stdout") -> dict[str, Any]:
        body = {
            "applicationName": row["applicationName"],
            "emInstance": row["emInstance"],
            "instance": row["instance"],
            "parameters": {"pageSize": LOG_PAGE, "fromLine": from_line, "logType": log_type},
        }
        data = page.fetch("/linkisManager/openEngineLog", body, "post")
        assert data["isError"] is False, data
        return data["result"]

    log = open_log(rows[printer.instance], 0)
    assert (log["rows"], log["logs"]) == (LOG_PAGE, lines(LOG_LINES - LOG_PAGE + 1, LOG_LINES))  # a full page: more
    log = open_log(rows[printer.instance], (2 - 1) * LOG_PAGE)
    # The last page (fewer rows); the console's arithmetic shows line 201 on both pages, as on Linkis.
    assert (log["rows"], log["logs"]) == (LOG_LINES - LOG_PAGE + 1, lines(1, LOG_LINES - LOG_PAGE + 1))
    assert any("listening on" in line for line in open_log(rows[printer.instance], 0, "stderr")["logs"])

    # Stop one engine from its row, then the other two selected.
    stop = [{"engineType": rows[printer.instance]["applicationName"], "engineInstance": printer.instance}]
    assert page.fetch("/linkisManager/rm/enginekill", stop, "post")["ended"] is True
    assert set(listed()) == {other.instance, bobs.instance}
    stop = [{"engineType": r["applicationName"], "engineInstance": r["instance"]} for r in listed().values()]
    assert page.fetch("/linkisManager/rm/enginekill", stop, "post")["ended"] is True
    assert listed() == {}

    # The history page has them; a row's "view log" still reads the ended engine's log.
    window = {
        "startDate": local_text(before - timedelta(minutes=5)),
        "endDate": local_text(timezone.now() + timedelta(minutes=1)),
    }
    history = page.fetch("/linkisManager/ecinfo/ecrHistoryList", {**window, "pageNow": 1, "pageSize": PAGE_SIZE}, "get")
    assert history["totalPage"] == 3
    record = next(row for row in history["engineList"] if row["serviceInstance"] == printer.instance)
    assert (record["engineType"], record["createUser"], record["ecmInstance"]) == ("python", "alice", AGENT)
    assert record["labelValue"].split(",") == ["alice-IDE", "python-python3"]
    assert shown(record["usedResource"]) == (1, 1 * GIB, 1)
    assert epoch_ms(before) - 1000 <= record["usedTime"] <= epoch_ms(timezone.now())
    mine = console("alice").fetch(
        "/linkisManager/ecinfo/ecrHistoryList", {**window, "pageNow": 1, "pageSize": PAGE_SIZE}, "get"
    )
    assert {row["serviceInstance"] for row in mine["engineList"]} == {printer.instance, other.instance}
    body = {
        "applicationName": ENGINE_APP,
        "emInstance": record["ecmInstance"],
        "instance": record["serviceInstance"],
        "parameters": {"pageSize": LOG_PAGE, "fromLine": 0, "logType": "stdout"},
    }
    assert console("alice").fetch("/linkisManager/openEngineLog", body, "post")["result"]["rows"] == LOG_PAGE


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_kill_all_idle_engines_of_an_ecm_on_a_real_agent(console, start_agent):
    start_agent(AGENT)
    idle, also_idle, busy = launch("alice"), launch("alice"), launch("bob")
    for engine in (idle, also_idle, busy):
        wait_until(engine, NodeStatus.UNLOCK)
    # Bob's engine is in use: locked for him, as askEngineConn does.
    assert call_engine(busy, "POST", "/lock", {})["locked"] is True
    # As askEngineConn records it; the agent's heartbeat may have reported Idle first.
    set_runtime_status(busy.pk, NodeStatus.IDLE, actor="test")
    busy.refresh_from_db()
    assert busy.status == NodeStatus.IDLE
    page = console("hadoop")

    (row,) = page.fetch("/linkisManager/listAllEMs", "get")["EMs"]
    body = {"instance": row["instance"], "withMultiUserEngine": False}  # the dialog's "all engines": no
    result = page.fetch("/linkisManager/rm/killUnlockEngineByEM", body, "post")["result"]
    # The toast: "<killEngineNum> engines, <memory / 1024³> G, <cores> cores".
    assert (result["killEngineNum"], result["memory"] / 1024**3, result["cores"]) == (2, 2, 2)

    for engine in (idle, also_idle):
        wait_for(lambda engine=engine: EngineConn.objects.get(pk=engine.pk).ended_at, what="the idle engines to end")
    route = {"applicationName": row["applicationName"], "instance": row["instance"]}
    engines = page.fetch("/linkisManager/listEMEngines", {"em": {"serviceInstance": route}}, "post")["engines"]
    assert [(engine["instance"], engine["nodeStatus"]) for engine in engines] == [(busy.instance, "Idle")]
    # Again, with "all engines": nothing idle is left.
    body = {"instance": row["instance"], "withMultiUserEngine": True}
    assert page.fetch("/linkisManager/rm/killUnlockEngineByEM", body, "post")["result"]["killEngineNum"] == 0
    assert EngineConnManager.objects.get(instance=AGENT).engines.filter(ended_at__isnull=True).count() == 1

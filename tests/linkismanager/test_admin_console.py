"""The staff console: every page loads, ECM capacity is derived per page, health pins go through the
service, label and quota edits are audited, the trails are read-only, and demo_setup is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from io import StringIO

import pytest
from axes.models import AccessFailureLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from engines.models import EngineConn, EngineHistory
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.labels import EM_INSTANCE, SERVER_ALIAS, TENANT
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord, HealthSource, Label, Token, UserQuota
from linkismanager.resources import format_size
from linkismanager.services import audit, set_pinned_health
from tests.conftest import PASSWORD
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(make_user) -> Client:
    make_user("root", superuser=True)
    client = Client()
    # Through the real login form, as staff do.
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    return client


@pytest.fixture
def busy_ecm() -> EngineConnManager:
    """An ECM of 100 GiB, 100 cores, 50 instances with a running, a starting and an ended engine."""
    ecm = make_ecm("host1:9102", labels={SERVER_ALIAS: "linkis-cg-engineconnmanager"})
    make_engine(ecm, instance="host1:40001", memory=2 * GIB, cores=2)
    make_engine(ecm, status=NodeStatus.STARTING, memory=1 * GIB, cores=1)
    make_engine(
        ecm,
        instance="host1:40003",
        status=NodeStatus.SUCCESS,
        memory=4 * GIB,
        cores=4,
        ended_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    return ecm


@pytest.fixture
def every_model_has_rows(busy_ecm) -> None:
    engine = EngineConn.objects.filter(ecm=busy_ecm, status=NodeStatus.UNLOCK).get()
    Label.objects.create(engine=engine, key="userCreator", value="alice-IDE")
    set_pinned_health(busy_ecm, NodeHealthy.STOCK_AVAILABLE, actor="root", reason="drain", via="admin")
    set_pinned_health(engine, NodeHealthy.UNHEALTHY, actor="root", reason="slow", via="admin")
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=3)
    UserQuota.objects.create(user="bob", creator="IDE", engine_type="shell-1")
    audit(actor="root", via="admin", action="kill_engine", target_type="engine", target="host1:40001")
    EngineHistory.objects.create(
        ticket_id=engine.ticket_id,
        label_value="alice-IDE,python-python3",
        create_user="alice",
        engine_type="python",
        ecm_instance=busy_ecm.instance,
        status=NodeStatus.RUNNING,
    )
    token = Token(name="ci")
    token.set_code("LINKIS-AUTH-ci")
    token.save()
    Group.objects.create(name="operators")
    # A failed login through the admin, as the login throttle records it.
    Client().post("/admin/login/", {"username": "mallory", "password": "wrong", "next": "/admin/"})
    if not AccessFailureLog.objects.exists():
        # Kept only when the failure log is enabled in the settings.
        AccessFailureLog.objects.create(username="mallory", ip_address="127.0.0.1", path_info="/admin/login/")


def _admin_urls(model, obj) -> tuple[str, str]:
    info = (model._meta.app_label, model._meta.model_name)
    return (
        reverse("admin:{}_{}_changelist".format(*info)),
        reverse("admin:{}_{}_change".format(*info), args=[obj.pk]),
    )


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda model: model._meta.label)
def test_every_changelist_and_change_form_loads(staff_client, every_model_has_rows, model):
    # Given rows of every registered model
    obj = model.objects.order_by("pk").first()
    assert obj is not None, f"the fixture makes no {model._meta.label} row"
    changelist, change = _admin_urls(model, obj)

    # Then its list (searched too, when it has a search box) and its change form load
    assert staff_client.get(changelist).status_code == 200
    if admin.site._registry[model].search_fields:
        assert staff_client.get(changelist, {"q": "host1"}).status_code == 200
    assert staff_client.get(change).status_code == 200


@pytest.mark.parametrize(
    "query",
    [{"status": "Running"}, {"health": "StockAvailable"}, {"health": "UnHealthy"}, {"pinned": "yes"}, {"q": "host"}],
)
def test_the_ecm_list_filters_load(staff_client, every_model_has_rows, query):
    response = staff_client.get("/admin/linkismanager/engineconnmanager/", query)
    assert response.status_code == 200


def test_the_ecm_list_shows_capacity_used_locked_and_left_derived_from_live_engines(staff_client, busy_ecm):
    response = staff_client.get("/admin/linkismanager/engineconnmanager/")

    page = response.content.decode()
    # The running engine is used, the starting one locked, the ended one holds nothing.
    assert f"{format_size(100 * GIB)}, 100 cores, 50 inst." in page
    assert f"{format_size(2 * GIB)}, 2 cores, 1 inst." in page
    assert f"{format_size(1 * GIB)}, 1 cores, 1 inst." in page
    assert f"{format_size(97 * GIB)}, 97 cores, 48 inst." in page


def test_the_ecm_change_form_shows_the_derived_resources_and_the_health_history(staff_client, busy_ecm):
    set_pinned_health(busy_ecm, NodeHealthy.UNHEALTHY, actor="root", reason="disk failing", via="admin")

    page = staff_client.get(f"/admin/linkismanager/engineconnmanager/{busy_ecm.pk}/change/").content.decode()

    assert f"{format_size(97 * GIB)}, 97 cores, 48 inst." in page
    assert "disk failing" in page
    assert "Health history (latest 50)" in page


def test_a_lost_ecm_shows_unhealthy_whatever_it_reported(staff_client):
    make_ecm("lost:9102", lost_at=datetime(2024, 1, 1, tzinfo=UTC))

    page = staff_client.get("/admin/linkismanager/engineconnmanager/", {"health": "UnHealthy"}).content.decode()

    assert "lost:9102" in page
    assert "UnHealthy (lost)" in page


def _ecm_list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/linkismanager/engineconnmanager/")
    assert response.status_code == 200
    return len(queries)


def test_the_ecm_list_query_count_does_not_grow_with_the_number_of_ecms(staff_client):
    def add_ecms(start: int, count: int) -> None:
        for index in range(start, start + count):
            ecm = make_ecm(f"host{index}:9102")
            make_engine(ecm, instance=f"host{index}:40001")
            make_engine(ecm, status=NodeStatus.STARTING)

    # Given two ECMs with engines
    add_ecms(0, 2)
    with_two = _ecm_list_queries(staff_client)

    # When there are ten
    add_ecms(2, 8)
    with_ten = _ecm_list_queries(staff_client)

    # Then the page costs the same number of queries
    assert with_ten == with_two


def _run_action(client: Client, url: str, action: str, objects, reason: str = ""):
    return client.post(
        url,
        {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0, "reason": reason},
        follow=True,
    )


def test_pinning_an_ecm_unhealthy_records_who_and_why(staff_client, busy_ecm):
    response = _run_action(
        staff_client, "/admin/linkismanager/engineconnmanager/", "pin_unhealthy", [busy_ecm], reason="disk failing"
    )

    assert response.status_code == 200
    busy_ecm.refresh_from_db()
    assert busy_ecm.pinned_health == NodeHealthy.UNHEALTHY
    assert busy_ecm.health == NodeHealthy.UNHEALTHY
    assert (busy_ecm.pinned_by, busy_ecm.pinned_reason) == ("root", "disk failing")
    record = HealthRecord.objects.filter(ecm=busy_ecm, field=HealthRecord.Field.HEALTH).first()
    assert (record.old, record.new, record.source, record.actor) == ("Healthy", "UnHealthy", HealthSource.ADMIN, "root")
    assert AuditEntry.objects.filter(action="set_health", via="admin", actor="root", target="host1:9102").exists()
    assert "UnHealthy by root: disk failing" in response.content.decode()


def test_draining_an_ecm_pins_stock_available_and_marking_healthy_removes_the_pin(staff_client, busy_ecm):
    url = "/admin/linkismanager/engineconnmanager/"

    _run_action(staff_client, url, "pin_stock_available", [busy_ecm])
    busy_ecm.refresh_from_db()
    assert busy_ecm.health == NodeHealthy.STOCK_AVAILABLE
    assert busy_ecm.pinned_reason == "drained by staff"
    assert not EngineConnManager.objects.placeable().filter(pk=busy_ecm.pk).exists()

    _run_action(staff_client, url, "unpin_health", [busy_ecm])
    busy_ecm.refresh_from_db()
    assert busy_ecm.pinned_health is None
    assert busy_ecm.health == busy_ecm.reported_health == NodeHealthy.HEALTHY
    assert EngineConnManager.objects.placeable().filter(pk=busy_ecm.pk).exists()


def test_marking_an_unpinned_ecm_healthy_changes_nothing(staff_client, busy_ecm):
    response = _run_action(staff_client, "/admin/linkismanager/engineconnmanager/", "unpin_health", [busy_ecm])

    assert "left alone" in response.content.decode()
    assert not AuditEntry.objects.filter(action="set_health").exists()


class _FormFields(HTMLParser):
    """The fields a browser would submit from the page's main form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in {"submit", "button", "checkbox", "radio"}:
            self.data.setdefault(name, []).append(attrs.get("value") or "")
        elif tag == "input" and name and "checked" in attrs:
            self.data.setdefault(name, []).append(attrs.get("value") or "on")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data.setdefault(self._select, []).append(attrs.get("value") or "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea][-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def _change_form(client: Client, url: str) -> dict[str, list[str]]:
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    data = {name: values for name, values in parser.data.items() if name not in {"q", "action", "index"}}
    data.pop("csrfmiddlewaretoken", None)
    return data


def _add_label(data: dict[str, list[str]], key: str, value: str) -> None:
    index = int(data["labels-TOTAL_FORMS"][0])
    data["labels-TOTAL_FORMS"] = [str(index + 1)]
    data[f"labels-{index}-key"] = [key]
    data[f"labels-{index}-value"] = [value]


def test_staff_edit_an_ecms_description_and_tenant_label_and_the_edit_is_audited(staff_client, busy_ecm):
    url = f"/admin/linkismanager/engineconnmanager/{busy_ecm.pk}/change/"
    data = _change_form(staff_client, url)
    data["description"] = ["rack 7"]
    _add_label(data, TENANT, "finance")

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    busy_ecm.refresh_from_db()
    assert busy_ecm.description == "rack 7"
    assert Label.objects.get(ecm=busy_ecm, key=TENANT).value == "finance"
    labels = AuditEntry.objects.get(action="set_labels")
    assert labels.actor == "root" and labels.via == "admin" and labels.after[TENANT] == "finance"
    change = AuditEntry.objects.get(action="change_ecm")
    assert (change.before, change.after) == ({"description": ""}, {"description": "rack 7"})


def test_labels_the_manager_keeps_cannot_be_edited_in_the_admin(staff_client, busy_ecm):
    url = f"/admin/linkismanager/engineconnmanager/{busy_ecm.pk}/change/"
    data = _change_form(staff_client, url)
    _add_label(data, EM_INSTANCE, "linkis-cg-engineconnmanager-elsewhere:9102")

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert "kept by the manager" in response.content.decode()
    assert not Label.objects.filter(ecm=busy_ecm, key=EM_INSTANCE).exists()


def test_a_malformed_tenant_is_refused(staff_client, busy_ecm):
    url = f"/admin/linkismanager/engineconnmanager/{busy_ecm.pk}/change/"
    data = _change_form(staff_client, url)
    _add_label(data, TENANT, "two-parts")

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert not Label.objects.filter(ecm=busy_ecm, key=TENANT).exists()


def test_ecms_cannot_be_added_by_hand(staff_client):
    assert staff_client.get("/admin/linkismanager/engineconnmanager/add/").status_code == 403


def test_the_quota_list_shows_default_for_empty_limits_and_searches_by_user(staff_client):
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_memory=4 * GIB)
    UserQuota.objects.create(user="bob", creator="IDE", engine_type="shell-1")

    everyone = staff_client.get("/admin/linkismanager/userquota/")
    alice = staff_client.get("/admin/linkismanager/userquota/", {"q": "alice"})

    assert format_size(4 * GIB) in everyone.content.decode()
    # bob's row sets no limit: each one shows as the default.
    assert everyone.content.decode().count(">default<") == 5
    assert [quota.user for quota in alice.context["cl"].result_list] == ["alice"]


def test_adding_a_quota_in_the_admin_is_audited(staff_client):
    response = staff_client.post(
        "/admin/linkismanager/userquota/add/",
        {"user": "alice", "creator": "IDE", "engine_type": "python-python3", "max_instances": "3"},
    )

    assert response.status_code == 302
    quota = UserQuota.objects.get(user="alice")
    assert (quota.max_memory, quota.max_instances) == (None, 3)
    entry = AuditEntry.objects.get(action="add_quota")
    assert entry.actor == "root" and entry.after["max_instances"] == 3


@pytest.mark.parametrize("model", ["healthrecord", "auditentry"])
def test_the_trails_are_read_only(staff_client, busy_ecm, model):
    set_pinned_health(busy_ecm, NodeHealthy.UNHEALTHY, actor="root", via="admin")
    obj = (HealthRecord if model == "healthrecord" else AuditEntry).objects.first()
    base = f"/admin/linkismanager/{model}/"

    assert staff_client.get(f"{base}add/").status_code == 403
    assert staff_client.post(f"{base}{obj.pk}/change/", {"actor": "someone else"}).status_code == 403
    assert staff_client.get(f"{base}{obj.pk}/delete/").status_code == 403
    assert staff_client.get(base, {"q": "host1"}).status_code == 200


def test_demo_setup_with_data_is_idempotent():
    for _ in range(2):
        call_command("demo_setup", "--with-data", stdout=StringIO())

    assert sorted(get_user_model().objects.values_list("username", flat=True)) == ["alice", "bob", "hadoop"]
    ecm = EngineConnManager.objects.get()
    assert ecm.instance == "demo-host:9102"
    assert ecm.status == NodeStatus.RUNNING
    labels = dict(ecm.labels.values_list("key", "value"))
    assert labels[SERVER_ALIAS] == "linkis-cg-engineconnmanager"
    assert EM_INSTANCE in labels and TENANT not in labels
    assert HealthRecord.objects.filter(ecm=ecm).count() == 1
    assert EngineHistory.objects.count() == 2
    assert set(EngineHistory.objects.values_list("ecm_instance", flat=True)) == {"demo-host:9102"}


def test_demo_setup_keeps_what_staff_set_on_the_demo_ecm():
    call_command("demo_setup", "--with-data", stdout=StringIO())
    ecm = EngineConnManager.objects.get(instance="demo-host:9102")
    set_pinned_health(ecm, NodeHealthy.STOCK_AVAILABLE, actor="hadoop", via="admin")
    Label.objects.create(ecm=ecm, key=TENANT, value="finance")

    call_command("demo_setup", "--with-data", stdout=StringIO())

    ecm.refresh_from_db()
    assert ecm.pinned_health == NodeHealthy.STOCK_AVAILABLE
    assert ecm.labels.get(key=TENANT).value == "finance"


def test_demo_setup_without_data_makes_only_users():
    call_command("demo_setup", stdout=StringIO())

    assert not EngineConnManager.objects.exists()
    assert not EngineHistory.objects.exists()

"""The engine console: pages load, engines are never added or edited by hand, and the kill and
health actions go through the lifecycle services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from config.celery import app, ecm_queue
from engines.models import EngineConn, EngineHistory
from engines.services import KILL_TASK
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord, HealthSource
from linkismanager.resources import format_size
from linkismanager.services import set_pinned_health
from tests.conftest import PASSWORD
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

ENGINES = "/admin/engines/engineconn/"
ENDED = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def staff_client(make_user) -> Client:
    make_user("root", superuser=True)
    client = Client()
    # Through the real login form, as staff do.
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    return client


@pytest.fixture
def ecm() -> EngineConnManager:
    return make_ecm("host1:9102")


@pytest.fixture
def engines(ecm) -> dict[str, EngineConn]:
    """One engine in each kind of state: serving, starting, stopping and ended."""
    return {
        "unlock": make_engine(ecm, instance="host1:40001", memory=2 * GIB, cores=2, pid=4242),
        "starting": make_engine(ecm, owner="bob", status=NodeStatus.STARTING),
        "stopping": make_engine(ecm, instance="host1:40003", status=NodeStatus.SHUTTING_DOWN),
        "ended": make_engine(ecm, instance="host1:40004", status=NodeStatus.FAILED, ended_at=ENDED),
    }


def _run_action(client: Client, action: str, objects, reason: str = ""):
    return client.post(
        ENGINES,
        {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0, "reason": reason},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_engine_list_shows_each_engine(staff_client, engines):
    response = staff_client.get(ENGINES)

    assert response.status_code == 200
    assert {engine.pk for engine in response.context["cl"].result_list} == {e.pk for e in engines.values()}
    page = response.content.decode()
    assert "python-python3" in page
    assert format_size(2 * GIB) in page
    assert "4242" in page
    assert str(engines["starting"].ticket_id) in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "Unlock"}, {"unlock"}),
        ({"engine_type": "python"}, {"unlock", "starting", "stopping", "ended"}),
        ({"owner": "bob"}, {"starting"}),
        ({"live": "no"}, {"ended"}),
        ({"live": "yes"}, {"unlock", "starting", "stopping"}),
        ({"health": "UnHealthy"}, {"stopping"}),
        ({"pinned": "yes"}, {"stopping"}),
        ({"q": "host1:40001"}, {"unlock"}),
        ({"q": "bob"}, {"starting"}),
    ],
)
def test_the_engine_list_filters_and_searches(staff_client, engines, query, expected):
    set_pinned_health(engines["stopping"], NodeHealthy.UNHEALTHY, actor="root", via="admin")

    response = staff_client.get(ENGINES, query)

    assert response.status_code == 200
    names = {name for name, engine in engines.items() if engine in response.context["cl"].result_list}
    assert names == expected


def test_the_engine_list_filters_by_ecm(staff_client, engines):
    other = make_engine(make_ecm("host2:9102"), instance="host2:40001")

    response = staff_client.get(ENGINES, {"ecm__id__exact": other.ecm_id})

    assert list(response.context["cl"].result_list) == [other]


def test_an_engine_can_be_found_by_its_ticket_id(staff_client, engines):
    response = staff_client.get(ENGINES, {"q": str(engines["starting"].ticket_id)})

    assert list(response.context["cl"].result_list) == [engines["starting"]]


@pytest.mark.parametrize("name", ["unlock", "starting", "stopping", "ended"])
def test_the_engine_change_form_loads_read_only_without_the_control_secret(staff_client, engines, name):
    engine = engines[name]
    EngineConn.objects.filter(pk=engine.pk).update(control_secret="s3cr3t-control-port")

    response = staff_client.get(f"{ENGINES}{engine.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "s3cr3t-control-port" not in page
    # No field of the engine itself is an input: only its labels are edited here.
    form = response.context["adminform"].form
    assert list(form.fields) == []


def test_engines_cannot_be_added_by_hand(staff_client):
    assert staff_client.get(f"{ENGINES}add/").status_code == 403


def test_only_ended_engines_can_be_deleted(staff_client, engines):
    assert staff_client.get(f"{ENGINES}{engines['unlock'].pk}/delete/").status_code == 403
    assert staff_client.get(f"{ENGINES}{engines['ended'].pk}/delete/").status_code == 200
    # Bulk delete would take live engines along, so it is not offered.
    offered = [name for name, _ in staff_client.get(ENGINES).context["action_form"].fields["action"].choices]
    assert "kill_engines" in offered
    assert "delete_selected" not in offered


def test_the_kill_action_stops_live_engines_and_leaves_stopped_ones_alone(
    staff_client, engines, django_capture_on_commit_callbacks
):
    # Given engines serving, starting, stopping and ended
    before = {name: (engine.status, engine.modified) for name, engine in engines.items()}

    # When staff kill all four
    with django_capture_on_commit_callbacks() as callbacks:
        response = _run_action(staff_client, "kill_engines", engines.values())

    # Then the two live ones are ShuttingDown, asked for by the staff user
    for name in ("unlock", "starting"):
        engine = EngineConn.objects.get(pk=engines[name].pk)
        assert engine.status == NodeStatus.SHUTTING_DOWN
        assert engine.kill_requested_by == "root"
        assert engine.kill_requested_at is not None
        record = HealthRecord.objects.filter(engine=engine, field=HealthRecord.Field.STATUS).first()
        assert (record.old, record.new) == (before[name][0], NodeStatus.SHUTTING_DOWN)
        assert (record.source, record.actor, record.reason) == (HealthSource.ADMIN, "root", "killed by staff")
    # And the stopping and ended ones are untouched
    for name in ("stopping", "ended"):
        engine = EngineConn.objects.get(pk=engines[name].pk)
        assert (engine.status, engine.modified) == before[name]
        assert engine.kill_requested_by == ""
        assert not HealthRecord.objects.filter(engine=engine).exists()
    # And one kill task per started kill goes to the agents once the transaction commits
    assert len(callbacks) == 2
    assert AuditEntry.objects.filter(action="kill_engine", via="admin", actor="root").count() == 2
    assert _messages(response) == ["Kill started for 2 engines. 2 were already stopping or stopped."]


def test_the_kill_action_keeps_the_reason_staff_give(staff_client, engines, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        _run_action(staff_client, "kill_engines", [engines["unlock"]], reason="runaway job")

    record = HealthRecord.objects.get(engine=engines["unlock"])
    assert record.reason == "runaway job"


def test_the_kill_goes_to_the_engines_agent_after_commit(
    staff_client, engines, django_capture_on_commit_callbacks, monkeypatch
):
    # Recorded instead of sent: no agent runs here, and a stray kill must not reach a later test's.
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))

    with django_capture_on_commit_callbacks(execute=True):
        _run_action(staff_client, "kill_engines", [engines["unlock"]])

    assert sent == [(KILL_TASK, [engines["unlock"].pk], ecm_queue("host1:9102"))]


def test_mark_unhealthy_pins_the_health_with_the_staff_users_name(staff_client, engines):
    response = _run_action(staff_client, "mark_unhealthy", [engines["unlock"], engines["ended"]], reason="slow")

    engine = EngineConn.objects.get(pk=engines["unlock"].pk)
    assert engine.pinned_health == NodeHealthy.UNHEALTHY
    assert engine.health == NodeHealthy.UNHEALTHY
    assert (engine.pinned_by, engine.pinned_reason) == ("root", "slow")
    record = HealthRecord.objects.get(engine=engine, field=HealthRecord.Field.HEALTH)
    assert (record.old, record.new, record.source, record.actor) == ("Healthy", "UnHealthy", HealthSource.ADMIN, "root")
    # An ended engine's record is closed: it is left as it was.
    assert EngineConn.objects.get(pk=engines["ended"].pk).pinned_health is None
    assert _messages(response) == ["Health of 1 engine pinned to UnHealthy. 1 left alone (ended, or not pinned)."]


def test_mark_healthy_removes_the_pin(staff_client, engines):
    set_pinned_health(engines["unlock"], NodeHealthy.UNHEALTHY, actor="root", via="admin")

    _run_action(staff_client, "mark_healthy", [engines["unlock"]])

    engine = EngineConn.objects.get(pk=engines["unlock"].pk)
    assert engine.pinned_health is None
    assert engine.health == NodeHealthy.HEALTHY
    latest = HealthRecord.objects.filter(engine=engine).first()
    assert (latest.old, latest.new, latest.actor) == ("UnHealthy", "Healthy", "root")


def test_the_engine_list_shows_who_pinned_the_health_and_why(staff_client, engines):
    set_pinned_health(engines["unlock"], NodeHealthy.UNHEALTHY, actor="root", reason="slow", via="admin")

    page = staff_client.get(ENGINES).content.decode()

    assert "UnHealthy (pinned by root: slow)" in page


def test_the_engine_list_query_count_does_not_grow_with_the_number_of_engines(staff_client, ecm):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(ENGINES).status_code == 200
        return len(queries)

    for port in range(2):
        make_engine(make_ecm(f"a{port}:9102"), instance=f"a{port}:4000")
    with_two = list_queries()
    for port in range(8):
        make_engine(make_ecm(f"b{port}:9102"), instance=f"b{port}:4000")
    with_ten = list_queries()

    assert with_ten == with_two


def test_the_ended_engines_history_admin_is_read_only_and_searchable(staff_client, engines):
    history = EngineHistory.objects.create(
        ticket_id=engines["ended"].ticket_id,
        label_value="alice-IDE,python-python3",
        create_user="alice",
        engine_type="python",
        service_instance="host1:40004",
        ecm_instance="host1:9102",
        status=NodeStatus.FAILED,
    )
    base = "/admin/engines/enginehistory/"

    for query in ({"q": str(history.ticket_id)}, {"q": "alice"}, {"q": "host1:40004"}):
        assert list(staff_client.get(base, query).context["cl"].result_list) == [history]
    assert staff_client.get(f"{base}{history.pk}/change/").status_code == 200
    assert staff_client.get(f"{base}add/").status_code == 403
    assert staff_client.get(f"{base}{history.pk}/delete/").status_code == 403

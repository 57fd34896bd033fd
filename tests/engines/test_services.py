"""Engine lifecycle services: admission, start, runtime reports, kill, failure, cull and end.

Tasks for agents are sent after commit; these tests capture the on-commit callbacks and, where
they run one, patch the broker send so nothing leaves the process.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import IntegrityError, transaction

from engines import services
from engines.exceptions import AdmissionError, EngineNotFoundError
from engines.models import EngineConn, EngineHistory
from engines.services import (
    KILL_TASK,
    LAUNCH_TASK,
    EngineRequest,
    admit_engine,
    cull_engine,
    fail_engine,
    mark_engine_started,
    record_engine_end,
    record_engine_heartbeat,
    record_launch,
    request_engine_kill,
    set_runtime_status,
    user_usage,
)
from linkismanager.choices import TERMINAL_STATUSES, NodeHealthy, NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord, Label, UserQuota
from linkismanager.resources import LoadInstance
from linkismanager.services import ecm_capacity, record_ecm_heartbeat, register_ecm, set_pinned_health
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

ALICE_LABELS = {"userCreator": "alice-IDE", "engineType": "python-python3"}
ONE_ENGINE = LoadInstance(1 * GIB, 1, 1)


def python_request(user: str = "alice", *, resources: LoadInstance = ONE_ENGINE, **labels: str) -> EngineRequest:
    return EngineRequest(
        user=user,
        creator="IDE",
        engine_type="python",
        engine_version="python3",
        resources=resources,
        labels={"userCreator": f"{user}-IDE", "engineType": "python-python3", **labels},
    )


def labels_of(engine: EngineConn) -> dict[str, str]:
    return dict(Label.objects.filter(engine=engine).values_list("key", "value"))


def status_records(engine: EngineConn) -> list[tuple[str, str]]:
    return [(r.old, r.new) for r in HealthRecord.objects.filter(engine=engine, field="status").order_by("id")]


def row_counts() -> dict[str, int]:
    return {
        "engines": EngineConn.objects.count(),
        "history": EngineHistory.objects.count(),
        "labels": Label.objects.filter(engine__isnull=False).count(),
        "quotas": UserQuota.objects.count(),
        "records": HealthRecord.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def sent_tasks(callbacks) -> list:
    """Run captured on-commit callbacks with the broker send patched; what they would have sent."""
    with mock.patch("config.celery.app.send_task") as send_task:
        for callback in callbacks:
            callback()
    return send_task.call_args_list


@pytest.fixture
def ecm() -> EngineConnManager:
    """A registered ECM, as its agent registers it (serverAlias and emInstance labels)."""
    return register_ecm(
        "host1:9102", owner="hadoop", capacity=LoadInstance(100 * GIB, 100, 50), reserve=LoadInstance(10 * GIB, 2, 2)
    )


@pytest.fixture
def starting(ecm) -> EngineConn:
    """An engine just admitted on ``ecm``: Starting, with its history row."""
    return admit_engine(python_request(), actor="alice")


@pytest.fixture
def started(starting) -> EngineConn:
    """An engine up on port 40001: Unlock."""
    return mark_engine_started(starting.pk, instance="host1:40001")


# --- Usage -----------------------------------------------------------------------------------------


def test_user_usage_sums_the_users_live_engines_of_one_creator_and_engine_type():
    # given alice's engines in every state, and engines that are not hers or not of this kind
    ecm = make_ecm()
    make_engine(ecm, status=NodeStatus.STARTING, memory=1 * GIB, cores=1)
    make_engine(ecm, status=NodeStatus.BUSY, memory=2 * GIB, cores=2)
    make_engine(ecm, status=NodeStatus.SHUTTING_DOWN, memory=4 * GIB, cores=4)
    make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=db_now(), memory=8 * GIB, cores=8)
    make_engine(ecm, creator="shell", memory=16 * GIB)
    make_engine(ecm, engine_type="shell", engine_version="1", memory=16 * GIB)
    make_engine(ecm, engine_version="python2", memory=16 * GIB)
    make_engine(ecm, owner="bob", memory=16 * GIB)

    usage = user_usage("alice", "IDE", "python", "python3")

    # then Starting engines count, ended ones and other creators, types and users do not
    assert usage == LoadInstance(7 * GIB, 7, 3)


def test_user_usage_of_a_user_without_engines_is_zero():
    assert user_usage("alice", "IDE", "python", "python3") == LoadInstance.ZERO


# --- Admission -------------------------------------------------------------------------------------


def test_admitting_creates_a_starting_engine_with_labels_history_and_quota_row(ecm, django_capture_on_commit_callbacks):
    # given an ECM to which an admin gave a tenant
    Label.objects.create(ecm=ecm, key="tenant", value="t1")

    # when alice of tenant t1 asks for a python engine
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        engine = admit_engine(python_request(tenant="t1"), actor="alice")

    # then it is Starting on that ECM with what it asked for
    engine.refresh_from_db()
    assert engine.status == NodeStatus.STARTING
    assert engine.ecm == ecm
    assert (engine.owner, engine.creator, engine.engine_type, engine.engine_version) == (
        "alice",
        "IDE",
        "python",
        "python3",
    )
    assert (engine.memory, engine.cores, engine.instances) == (1 * GIB, 1, 1)
    assert engine.instance == ""
    assert engine.ended_at is None
    assert engine.log_dir.startswith("alice/") and engine.log_dir.endswith(f"/python/{engine.ticket_id}/logs")
    # and it carries the request's labels, its kind and its ECM's emInstance and tenant
    assert labels_of(engine) == {
        **ALICE_LABELS,
        "tenant": "t1",
        "serverAlias": "linkis-cg-engineconn",
        "emInstance": "linkis-cg-engineconnmanager-host1:9102",
    }
    # and its history row is opened
    history = EngineHistory.objects.get(ticket_id=engine.ticket_id)
    assert history.status == NodeStatus.STARTING
    assert history.request_times == 1
    assert history.label_value == "alice-IDE,python-python3"
    assert (history.create_user, history.engine_type, history.ecm_instance) == ("alice", "python", "host1:9102")
    assert history.request_resource == {"instance": 1, "memory": "1024.0 MB", "cpu": 1}
    assert history.service_instance == ""
    # and alice has a quota row to lock, which is no admin override
    quota = UserQuota.objects.get(user="alice", creator="IDE", engine_type="python-python3")
    assert (quota.max_memory, quota.max_cores, quota.max_instances) == (None, None, None)
    assert not quota.is_override
    # and the change is recorded and audited
    assert status_records(engine) == [("", "Starting")]
    assert HealthRecord.objects.get(engine=engine).actor == "alice"
    entry = AuditEntry.objects.get(action="create_engine")
    assert (entry.actor, entry.target) == ("alice", str(engine.ticket_id))
    # and the launch goes to the ECM's agent, once committed
    assert len(callbacks) == 1
    assert sent_tasks(callbacks) == [mock.call(LAUNCH_TASK, args=[engine.pk], queue="ecm.host1_9102")]


def test_admitting_locks_the_resources_on_the_ecm(ecm):
    engine = admit_engine(python_request(resources=LoadInstance(3 * GIB, 2, 1)), actor="alice")

    capacity = ecm_capacity(ecm)
    assert engine.status == NodeStatus.STARTING
    assert capacity.locked == LoadInstance(3 * GIB, 2, 1)
    assert capacity.used == LoadInstance.ZERO


def test_admitting_places_the_engine_on_the_ecm_with_most_memory_left():
    make_ecm("small:9102", max_memory=20 * GIB)
    big = make_ecm("big:9102", max_memory=200 * GIB)

    engine = admit_engine(python_request(), actor="alice")

    assert engine.ecm == big


def test_an_ecm_named_by_the_request_is_the_one_chosen():
    wanted = make_ecm(
        "small:9102", max_memory=20 * GIB, labels={"emInstance": "linkis-cg-engineconnmanager-small:9102"}
    )
    make_ecm("big:9102", max_memory=200 * GIB, labels={"emInstance": "linkis-cg-engineconnmanager-big:9102"})

    engine = admit_engine(python_request(emInstance="linkis-cg-engineconnmanager-small:9102"), actor="alice")

    assert engine.ecm == wanted


def _refused(request: EngineRequest) -> AdmissionError:
    """Admission of ``request`` is refused, leaving no row behind; the error."""
    before = row_counts()
    with pytest.raises(AdmissionError) as caught:
        admit_engine(request, actor=request.user)
    assert row_counts() == before
    return caught.value


def test_a_request_over_the_default_quota_is_refused_for_good(ecm, settings):
    # given a default quota of two engines, both in use (one still starting)
    settings.USER_QUOTA_INSTANCES = 2
    first = admit_engine(python_request(), actor="alice")
    mark_engine_started(first.pk, instance="host1:40001")
    admit_engine(python_request(), actor="alice")

    # when alice asks for a third, she is refused; asking again will not help
    error = _refused(python_request())
    assert "quota" in error.message
    assert error.code == 30002
    assert not error.can_retry
    assert EngineConn.objects.filter(owner="alice").count() == 2


def test_a_request_bigger_than_the_default_quota_is_refused(ecm, settings):
    settings.USER_QUOTA_MEMORY = 20 * GIB

    error = _refused(python_request(resources=LoadInstance(21 * GIB, 1, 1)))

    assert not error.can_retry
    # the quota row made for locking is not left behind either
    assert not UserQuota.objects.exists()


def test_an_admin_quota_row_limits_the_user_and_only_that_user(ecm):
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=1)
    admit_engine(python_request(), actor="alice")

    error = _refused(python_request())
    assert not error.can_retry

    assert admit_engine(python_request("bob"), actor="bob").status == NodeStatus.STARTING


def test_an_ended_engine_no_longer_counts_against_the_quota(ecm):
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=1)
    first = admit_engine(python_request(), actor="alice")
    record_engine_end(first.pk, exit_code=1, reason="crashed")

    assert admit_engine(python_request(), actor="alice").status == NodeStatus.STARTING


def test_a_tenant_ecm_takes_only_requests_of_its_tenant():
    tenant_ecm = make_ecm("tenant:9102", labels={"tenant": "t1"})
    plain_ecm = make_ecm("plain:9102", max_memory=10 * GIB + 1 * GIB)  # little room, but the only tenant-less one

    assert admit_engine(python_request(tenant="t1"), actor="alice").ecm == tenant_ecm
    assert admit_engine(python_request(), actor="alice").ecm == plain_ecm


def test_a_request_without_a_tenant_does_not_land_on_a_tenant_ecm():
    make_ecm("tenant:9102", labels={"tenant": "t1"})

    error = _refused(python_request())

    assert "No healthy ECM" in error.message
    assert error.can_retry


def test_a_tenant_request_does_not_land_on_a_tenant_less_or_other_tenant_ecm():
    make_ecm("plain:9102")
    make_ecm("other:9102", labels={"tenant": "t2"})

    error = _refused(python_request(tenant="t1"))

    assert "tenant t1" in error.message
    assert error.can_retry


@pytest.mark.parametrize("health", [NodeHealthy.UNHEALTHY, NodeHealthy.STOCK_AVAILABLE, NodeHealthy.STOCK_UNAVAILABLE])
def test_an_ecm_pinned_unavailable_gets_no_engine(ecm, health):
    set_pinned_health(ecm, health, actor="hadoop")

    error = _refused(python_request())

    assert error.can_retry


def test_an_ecm_reporting_stock_available_gets_no_engine(ecm):
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.STOCK_AVAILABLE)

    assert _refused(python_request()).can_retry


def test_an_ecm_pinned_warn_still_gets_engines(ecm):
    set_pinned_health(ecm, NodeHealthy.WARN, actor="hadoop")

    assert admit_engine(python_request(), actor="alice").ecm == ecm


def test_a_lost_ecm_gets_no_engine():
    make_ecm(lost_at=db_now())

    assert _refused(python_request()).can_retry


def test_a_stopped_ecm_gets_no_engine():
    make_ecm(status=NodeStatus.SHUTTING_DOWN)

    assert _refused(python_request()).can_retry


def test_admission_keeps_the_protected_reserve_and_may_be_retried():
    # given room for one engine above a reserve of two instances
    ecm = make_ecm(max_instances=3, min_instances=2)
    admit_engine(python_request(), actor="alice")

    # when a second is asked for, by another user with quota to spare
    error = _refused(python_request("bob"))

    # then it is refused until capacity frees up
    assert "reserve" in error.message
    assert error.can_retry
    assert ecm_capacity(ecm).left == LoadInstance(99 * GIB, 99, 2)


def test_an_ecm_lost_while_admission_waits_for_its_lock_gets_no_engine(ecm):
    # given an admission that has read the ECM as placeable…
    real_accepts = services._ecm_accepts

    def lost_meanwhile(ecm_labels, request_labels):
        # …and, before it locks the ECM's row, the sweep declares the ECM lost
        EngineConnManager.objects.filter(pk=ecm.pk).update(lost_at=db_now())
        return real_accepts(ecm_labels, request_labels)

    # when it gets the lock, then it places nothing on the lost ECM
    with mock.patch.object(services, "_ecm_accepts", side_effect=lost_meanwhile):
        error = _refused(python_request())

    assert error.can_retry


# --- Launch and start ------------------------------------------------------------------------------


def test_the_launch_is_recorded_once(starting):
    assert record_launch(starting.pk, pid=4242, process_started_at=1700000000.5, control_secret="s3cret")

    assert not record_launch(starting.pk, pid=9999, process_started_at=1800000000.0)

    starting.refresh_from_db()
    assert (starting.pid, starting.process_started_at, starting.control_secret) == (4242, 1700000000.5, "s3cret")


def test_a_launch_is_recorded_even_if_a_kill_came_first_so_the_kill_can_reach_it(starting):
    request_engine_kill(starting, actor="alice", enqueue=False)

    assert record_launch(starting.pk, pid=4242, process_started_at=1.0)


def test_no_launch_is_recorded_for_an_ended_engine(starting):
    record_engine_end(starting.pk, exit_code=1)

    assert not record_launch(starting.pk, pid=4242, process_started_at=1.0)
    starting.refresh_from_db()
    assert starting.pid is None


def test_a_started_engine_is_unlock_at_its_instance_with_its_clocks_set(starting):
    before = db_now()

    engine = mark_engine_started(starting.pk, instance="host1:40001", actor="agent-host1")

    assert engine is not None
    engine.refresh_from_db()
    assert engine.status == NodeStatus.UNLOCK
    assert engine.instance == "host1:40001"
    assert engine.ready_at >= before
    assert engine.last_activity == engine.ready_at == engine.last_heartbeat
    assert labels_of(engine)["engineInstance"] == "linkis-cg-engineconn-host1:40001"
    history = EngineHistory.objects.get(ticket_id=engine.ticket_id)
    assert history.status == NodeStatus.RUNNING
    assert history.service_instance == "host1:40001"
    assert (history.used_times, history.used_time) == (1, engine.ready_at)
    assert history.used_resource == {"instance": 1, "memory": "1024.0 MB", "cpu": 1}
    record = HealthRecord.objects.filter(engine=engine).first()
    assert (record.old, record.new, record.source, record.actor) == ("Starting", "Unlock", "agent", "agent-host1")
    assert record.instance == "host1:40001"
    # and its resources move from locked to used
    assert ecm_capacity(engine.ecm).used == LoadInstance(1 * GIB, 1, 1)
    assert ecm_capacity(engine.ecm).locked == LoadInstance.ZERO


def test_starting_an_engine_twice_changes_nothing_the_second_time(started):
    assert mark_engine_started(started.pk, instance="host1:40002") is None

    started.refresh_from_db()
    assert started.instance == "host1:40001"
    assert status_records(started) == [("", "Starting"), ("Starting", "Unlock")]


def test_an_engine_killed_during_start_up_is_not_started(starting):
    request_engine_kill(starting, actor="alice", enqueue=False)

    assert mark_engine_started(starting.pk, instance="host1:40001") is None

    starting.refresh_from_db()
    assert starting.status == NodeStatus.SHUTTING_DOWN
    assert starting.instance == ""
    assert "engineInstance" not in labels_of(starting)
    assert EngineHistory.objects.get(ticket_id=starting.ticket_id).status == NodeStatus.STARTING


def test_starting_an_unknown_engine_is_not_found():
    with pytest.raises(EngineNotFoundError):
        mark_engine_started(123456, instance="host1:40001")


# --- Runtime status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (NodeStatus.UNLOCK, NodeStatus.IDLE),
        (NodeStatus.UNLOCK, NodeStatus.BUSY),
        (NodeStatus.IDLE, NodeStatus.BUSY),
        (NodeStatus.BUSY, NodeStatus.LOCKED),
        (NodeStatus.LOCKED, NodeStatus.UNLOCK),
        (NodeStatus.BUSY, NodeStatus.UNLOCK),
    ],
)
def test_the_runtime_moves_an_up_engine_between_its_statuses(old, new):
    engine = make_engine(make_ecm(), status=old)

    assert set_runtime_status(engine.pk, new, actor="agent-host1")

    engine.refresh_from_db()
    assert engine.status == new
    record = HealthRecord.objects.get(engine=engine)
    assert (record.old, record.new, record.source, record.actor) == (old, new, "heartbeat", "agent-host1")


def test_reporting_the_current_status_changes_nothing():
    engine = make_engine(make_ecm(), status=NodeStatus.BUSY)

    assert not set_runtime_status(engine.pk, NodeStatus.BUSY)

    assert not HealthRecord.objects.filter(engine=engine).exists()


@pytest.mark.parametrize("old", [NodeStatus.STARTING, *sorted(TERMINAL_STATUSES)])
def test_the_runtime_cannot_move_a_starting_or_terminal_engine(old):
    engine = make_engine(make_ecm(), status=old)

    assert not set_runtime_status(engine.pk, NodeStatus.UNLOCK)

    engine.refresh_from_db()
    assert engine.status == old


@pytest.mark.parametrize(
    "bogus",
    [NodeStatus.STARTING, NodeStatus.RUNNING, NodeStatus.SHUTTING_DOWN, NodeStatus.FAILED, NodeStatus.SUCCESS, "Nap"],
)
def test_a_status_the_runtime_may_not_report_is_ignored(bogus):
    engine = make_engine(make_ecm(), status=NodeStatus.BUSY)

    assert not set_runtime_status(engine.pk, bogus)

    engine.refresh_from_db()
    assert engine.status == NodeStatus.BUSY


def test_the_runtime_status_of_an_ended_engine_is_left_alone():
    engine = make_engine(make_ecm(), status=NodeStatus.BUSY)
    record_engine_end(engine.pk, exit_code=0)
    engine.refresh_from_db()
    assert engine.status == NodeStatus.SUCCESS

    assert not set_runtime_status(engine.pk, NodeStatus.UNLOCK)


# --- Engine heartbeats -----------------------------------------------------------------------------


def test_a_heartbeat_keeps_the_time_metrics_and_runtime_status(started):
    before = db_now()

    record_engine_heartbeat(started.pk, status=NodeStatus.BUSY, metrics={"rss": 1000, "cpu": 2.5})

    started.refresh_from_db()
    assert started.last_heartbeat >= before
    assert started.metrics == {"rss": 1000, "cpu": 2.5}
    assert started.status == NodeStatus.BUSY


def test_the_idle_clock_only_moves_forward(started):
    # given an engine whose last user action was at ready time
    ready = started.last_activity

    # when a report carries an older action, the clock stays
    record_engine_heartbeat(started.pk, last_activity=ready - timedelta(minutes=5))
    started.refresh_from_db()
    assert started.last_activity == ready

    # when a report carries a newer action, the clock moves to it
    later = ready + timedelta(minutes=5)
    record_engine_heartbeat(started.pk, last_activity=later)
    started.refresh_from_db()
    assert started.last_activity == later


def test_a_heartbeat_without_a_user_action_does_not_move_the_idle_clock(started):
    ready = started.last_activity

    record_engine_heartbeat(started.pk, status=NodeStatus.UNLOCK)

    started.refresh_from_db()
    assert started.last_activity == ready


def test_unresponsiveness_is_timed_from_the_first_report_and_cleared_by_an_answer(started):
    # given an engine reported unresponsive twice
    record_engine_heartbeat(started.pk, responsive=False)
    started.refresh_from_db()
    since = started.unresponsive_since
    assert since is not None

    record_engine_heartbeat(started.pk, responsive=False, status=NodeStatus.BUSY)

    # then the first time is kept, and a status is not taken from an engine that did not answer
    started.refresh_from_db()
    assert started.unresponsive_since == since
    assert started.status == NodeStatus.UNLOCK

    # when it answers again, it is no longer unresponsive
    record_engine_heartbeat(started.pk, responsive=True)
    started.refresh_from_db()
    assert started.unresponsive_since is None


def test_a_late_heartbeat_cannot_revive_a_terminal_engine(started):
    request_engine_kill(started, actor="alice", enqueue=False)

    record_engine_heartbeat(started.pk, status=NodeStatus.UNLOCK)

    started.refresh_from_db()
    assert started.status == NodeStatus.SHUTTING_DOWN


def test_a_heartbeat_for_an_ended_engine_is_ignored(started):
    record_engine_end(started.pk, exit_code=0)
    started.refresh_from_db()
    last = started.last_heartbeat

    record_engine_heartbeat(started.pk, status=NodeStatus.BUSY, metrics={"rss": 1}, responsive=False)

    started.refresh_from_db()
    assert (started.status, started.last_heartbeat, started.metrics, started.unresponsive_since) == (
        NodeStatus.SUCCESS,
        last,
        {},
        None,
    )


# --- Kill --------------------------------------------------------------------------------------------


def test_the_first_kill_request_decides_and_sends_the_kill_after_commit(started, django_capture_on_commit_callbacks):
    before = db_now()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decided = request_engine_kill(started, actor="hadoop", reason="user asked", via="admin")

    assert decided
    started.refresh_from_db()
    assert started.status == NodeStatus.SHUTTING_DOWN
    assert started.kill_requested_by == "hadoop"
    assert started.kill_requested_at >= before
    assert started.ended_at is None  # it holds its resources until the process is gone
    record = HealthRecord.objects.filter(engine=started).first()
    assert (record.old, record.new, record.source, record.actor) == ("Unlock", "ShuttingDown", "admin", "hadoop")
    entry = AuditEntry.objects.get(action="kill_engine")
    assert (entry.actor, entry.via, entry.target, entry.after) == (
        "hadoop",
        "admin",
        "host1:40001",
        {"reason": "user asked"},
    )
    assert len(callbacks) == 1
    assert sent_tasks(callbacks) == [mock.call(KILL_TASK, args=[started.pk], queue="ecm.host1_9102")]


def test_a_second_kill_request_gets_a_clean_no(started, django_capture_on_commit_callbacks):
    request_engine_kill(started, actor="alice", enqueue=False)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decided = request_engine_kill(started, actor="hadoop")

    assert not decided
    assert callbacks == []
    started.refresh_from_db()
    assert started.kill_requested_by == "alice"
    assert AuditEntry.objects.filter(action="kill_engine").count() == 1


def test_a_kill_by_the_agent_itself_sends_no_task(started, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert request_engine_kill(started, actor="agent", via="agent", enqueue=False)

    assert callbacks == []
    started.refresh_from_db()
    assert started.status == NodeStatus.SHUTTING_DOWN


def test_a_starting_engine_can_be_killed(starting):
    assert request_engine_kill(starting, actor="alice", enqueue=False)

    starting.refresh_from_db()
    assert starting.status == NodeStatus.SHUTTING_DOWN


# --- Failure -----------------------------------------------------------------------------------------


def test_a_failed_engine_keeps_the_reason_and_is_killed_after_commit(starting, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert fail_engine(starting.pk, reason="start timeout", actor="sweep", source="sweep")

    starting.refresh_from_db()
    assert starting.status == NodeStatus.FAILED
    assert starting.end_reason == "start timeout"
    assert starting.ended_at is None
    record = HealthRecord.objects.filter(engine=starting).first()
    assert (record.old, record.new, record.source, record.reason) == ("Starting", "Failed", "sweep", "start timeout")
    assert sent_tasks(callbacks) == [mock.call(KILL_TASK, args=[starting.pk], queue="ecm.host1_9102")]


def test_failing_without_kill_sends_nothing(started, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert fail_engine(started.pk, reason="process gone", actor="agent", kill=False)

    assert callbacks == []
    started.refresh_from_db()
    assert started.status == NodeStatus.FAILED


def test_failing_an_unknown_engine_is_not_found():
    with pytest.raises(EngineNotFoundError):
        fail_engine(123456, reason="x", actor="sweep")


# --- Cull ------------------------------------------------------------------------------------------


def _idle_since(engine: EngineConn, delta: timedelta) -> None:
    EngineConn.objects.filter(pk=engine.pk).update(last_activity=db_now() - delta)


def test_an_unlock_engine_idle_before_the_cutoff_is_culled_to_success_and_killed(
    started, django_capture_on_commit_callbacks
):
    # given an engine whose last user action was two hours ago
    _idle_since(started, timedelta(hours=2))

    # when the sweep culls engines idle for an hour
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        culled = cull_engine(started.pk, reason="idle for 1 h", idle_before=db_now() - timedelta(hours=1))

    # then it is Success, audited, and its agent is told to stop it
    assert culled
    started.refresh_from_db()
    assert started.status == NodeStatus.SUCCESS
    assert started.end_reason == "idle for 1 h"
    record = HealthRecord.objects.filter(engine=started).first()
    assert (record.old, record.new, record.source, record.actor) == ("Unlock", "Success", "sweep", "sweep")
    assert AuditEntry.objects.filter(action="cull_engine", via="sweep", target="host1:40001").exists()
    assert sent_tasks(callbacks) == [mock.call(KILL_TASK, args=[started.pk], queue="ecm.host1_9102")]


def test_a_recently_active_engine_is_not_culled(started, django_capture_on_commit_callbacks):
    _idle_since(started, timedelta(minutes=10))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        culled = cull_engine(started.pk, reason="idle", idle_before=db_now() - timedelta(hours=1))

    assert not culled
    assert callbacks == []
    started.refresh_from_db()
    assert started.status == NodeStatus.UNLOCK


@pytest.mark.parametrize("status", [NodeStatus.BUSY, NodeStatus.LOCKED, NodeStatus.IDLE, NodeStatus.STARTING])
def test_an_engine_that_is_not_unlock_is_never_culled(started, status):
    EngineConn.objects.filter(pk=started.pk).update(status=status)
    _idle_since(started, timedelta(days=1))

    assert not cull_engine(started.pk, reason="idle", idle_before=db_now())

    started.refresh_from_db()
    assert started.status == status


# --- End ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_code", "final"), [(0, NodeStatus.SUCCESS), (1, NodeStatus.FAILED), (-9, NodeStatus.FAILED)]
)
def test_a_live_engine_that_exits_on_its_own_ends_by_its_exit_code(started, exit_code, final):
    before = db_now()

    assert record_engine_end(started.pk, exit_code=exit_code, reason="process exited")

    started.refresh_from_db()
    assert started.status == final
    assert started.exit_code == exit_code
    assert started.ended_at >= before
    assert started.end_reason == "process exited"
    assert status_records(started)[-1] == ("Unlock", final)


def test_an_engine_whose_exit_code_is_unknown_ends_failed(started):
    record_engine_end(started.pk, exit_code=None)

    started.refresh_from_db()
    assert started.status == NodeStatus.FAILED
    assert started.exit_code is None


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_recording_the_end_keeps_a_terminal_status_and_its_reason(started, status):
    EngineConn.objects.filter(pk=started.pk).update(status=status, end_reason="decided earlier")

    assert record_engine_end(started.pk, exit_code=0 if status == NodeStatus.FAILED else -9, reason="gone")

    started.refresh_from_db()
    assert started.status == status
    assert started.end_reason == "decided earlier"
    assert started.ended_at is not None


def test_the_end_is_recorded_once(started):
    assert record_engine_end(started.pk, exit_code=0)
    started.refresh_from_db()
    ended_at = started.ended_at

    assert not record_engine_end(started.pk, exit_code=1, reason="again")

    started.refresh_from_db()
    assert (started.status, started.exit_code, started.ended_at, started.end_reason) == (
        NodeStatus.SUCCESS,
        0,
        ended_at,
        "",
    )


def test_the_end_frees_the_resources_and_closes_the_history(started):
    # given a started engine that was killed
    ecm = started.ecm
    EngineConn.objects.filter(pk=started.pk).update(metrics={"rss": 123})
    request_engine_kill(started, actor="alice", enqueue=False)
    assert ecm_capacity(ecm).used == LoadInstance(1 * GIB, 1, 1)

    # when its process is gone
    record_engine_end(started.pk, exit_code=-15, reason="killed")

    # then its resources are free and its history row carries the release
    started.refresh_from_db()
    assert ecm_capacity(ecm).used == LoadInstance.ZERO
    assert ecm_capacity(ecm).locked == LoadInstance.ZERO
    history = EngineHistory.objects.get(ticket_id=started.ticket_id)
    assert history.status == NodeStatus.SHUTTING_DOWN
    assert history.released_resource == {"instance": 1, "memory": "1024.0 MB", "cpu": 1}
    assert history.release_times == 1
    assert history.release_time == started.ended_at
    assert history.metrics == {"rss": 123}


def test_a_starting_engine_that_fails_to_start_ends_failed_with_nothing_left_locked(starting):
    record_engine_end(starting.pk, exit_code=2, reason="bad python")

    starting.refresh_from_db()
    assert starting.status == NodeStatus.FAILED
    assert ecm_capacity(starting.ecm).locked == LoadInstance.ZERO
    assert EngineHistory.objects.get(ticket_id=starting.ticket_id).status == NodeStatus.FAILED


def test_ending_an_unknown_engine_is_not_found():
    with pytest.raises(EngineNotFoundError):
        record_engine_end(123456, exit_code=0)


# --- Terminal finality -------------------------------------------------------------------------------


TRANSITIONS = {
    "mark_engine_started": lambda engine: mark_engine_started(engine.pk, instance="host1:40099"),
    "set_runtime_status": lambda engine: set_runtime_status(engine.pk, NodeStatus.UNLOCK),
    "record_engine_heartbeat": lambda engine: record_engine_heartbeat(
        engine.pk, status=NodeStatus.BUSY, last_activity=db_now()
    ),
    "request_engine_kill": lambda engine: request_engine_kill(engine, actor="hadoop"),
    "fail_engine": lambda engine: fail_engine(engine.pk, reason="hung", actor="sweep"),
    "cull_engine": lambda engine: cull_engine(engine.pk, reason="idle", idle_before=db_now() + timedelta(days=1)),
    "record_engine_end": lambda engine: record_engine_end(engine.pk, exit_code=0),
}


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
@pytest.mark.parametrize("transition", sorted(TRANSITIONS))
def test_no_function_changes_a_terminal_status(started, status, transition, django_capture_on_commit_callbacks):
    # given an engine that reached a terminal status, with an old idle clock
    EngineConn.objects.filter(pk=started.pk).update(
        status=status, end_reason="final", last_activity=db_now() - timedelta(days=2)
    )

    # when any lifecycle function is applied to it
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        TRANSITIONS[transition](started)

    # then its status and reason stay, and no task is sent
    started.refresh_from_db()
    assert started.status == status
    assert started.end_reason == "final"
    assert callbacks == []
    assert not AuditEntry.objects.exclude(action="create_engine").exists()


# --- Health pins -----------------------------------------------------------------------------------


def test_an_admin_pins_an_engines_health_with_a_record_and_an_audit_entry(started):
    set_pinned_health(started, NodeHealthy.UNHEALTHY, actor="hadoop", reason="leaking memory")

    started.refresh_from_db()
    assert started.health == NodeHealthy.UNHEALTHY
    assert (started.pinned_by, started.pinned_reason) == ("hadoop", "leaking memory")
    assert started.pinned_at is not None
    record = HealthRecord.objects.get(engine=started, field="health")
    assert (record.old, record.new, record.source, record.actor) == ("Healthy", "UnHealthy", "admin", "hadoop")
    assert record.node_kind == "linkis-cg-engineconn"
    entry = AuditEntry.objects.get(action="set_health")
    assert (entry.actor, entry.via, entry.target_type, entry.target) == ("hadoop", "api", "engineconn", "host1:40001")
    assert (entry.before, entry.after) == ({"pinned": None}, {"pinned": "UnHealthy"})

    # when the admin sets Healthy, the pin goes
    set_pinned_health(started, NodeHealthy.HEALTHY, actor="root")
    started.refresh_from_db()
    assert started.pinned_health is None
    assert started.health == NodeHealthy.HEALTHY
    assert AuditEntry.objects.filter(action="set_health", actor="root").count() == 1


def test_an_engine_heartbeat_leaves_a_pinned_health_alone(started):
    set_pinned_health(started, NodeHealthy.WARN, actor="hadoop")

    record_engine_heartbeat(started.pk, status=NodeStatus.BUSY)

    started.refresh_from_db()
    assert started.health == NodeHealthy.WARN


# --- Reused ports ----------------------------------------------------------------------------------


def test_an_ended_engine_frees_its_instance_for_a_new_engine(started):
    # given the engine on host1:40001 has ended
    record_engine_end(started.pk, exit_code=0)

    # when a new engine comes up on the same port
    second = admit_engine(python_request(), actor="alice")
    engine = mark_engine_started(second.pk, instance="host1:40001")

    # then it is up there, and the instance names it
    assert engine is not None
    assert engine.status == NodeStatus.UNLOCK
    assert EngineConn.objects.by_instance("host1:40001") == second


def test_two_live_engines_cannot_share_an_instance(started):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_engine(started.ecm, instance="host1:40001")

    assert EngineConn.objects.filter(instance="host1:40001").count() == 1


def test_two_engines_without_an_instance_yet_may_both_be_live(ecm):
    make_engine(ecm, status=NodeStatus.STARTING)
    make_engine(ecm, status=NodeStatus.STARTING)

    assert EngineConn.objects.live().filter(instance="").count() == 2


def test_an_engine_starting_on_an_instance_a_live_engine_holds_fails_cleanly(
    started, django_capture_on_commit_callbacks
):
    # given a second engine whose port turns out to be held by a live engine
    second = admit_engine(python_request(), actor="alice")

    # when it is reported started there
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = mark_engine_started(second.pk, instance="host1:40001")

    # then it fails, and is killed, instead of the call raising
    assert result is None
    second.refresh_from_db()
    assert second.status == NodeStatus.FAILED
    assert second.instance == ""
    assert "host1:40001" in second.end_reason
    assert "engineInstance" not in labels_of(second)
    assert EngineHistory.objects.get(ticket_id=second.ticket_id).status == NodeStatus.STARTING
    assert sent_tasks(callbacks) == [mock.call(KILL_TASK, args=[second.pk], queue="ecm.host1_9102")]
    # and the engine that holds the port is untouched
    started.refresh_from_db()
    assert (started.status, started.instance) == (NodeStatus.UNLOCK, "host1:40001")


def test_by_instance_finds_the_live_engine_before_ended_ones(ecm):
    # given a live engine on a port, and a newer engine that used the port and ended
    live = make_engine(ecm, status=NodeStatus.STARTING)
    ended = make_engine(ecm, instance="host1:40001", status=NodeStatus.SUCCESS, ended_at=db_now())
    EngineConn.objects.filter(pk=live.pk).update(instance="host1:40001")

    assert EngineConn.objects.by_instance("host1:40001") == live
    assert ended.created > live.created


def test_by_instance_finds_the_newest_when_none_is_live(ecm):
    now = db_now()
    make_engine(ecm, instance="host1:40001", status=NodeStatus.SUCCESS, ended_at=now - timedelta(hours=2))
    newest = make_engine(ecm, instance="host1:40001", status=NodeStatus.FAILED, ended_at=now - timedelta(hours=1))

    assert EngineConn.objects.by_instance("host1:40001") == newest


def test_by_instance_finds_nothing_for_an_unknown_or_empty_instance(ecm):
    make_engine(ecm, status=NodeStatus.STARTING)

    assert EngineConn.objects.by_instance("host1:40001") is None
    assert EngineConn.objects.by_instance("") is None


def test_a_heartbeat_writes_all_its_engine_reports_with_a_fixed_number_of_queries(django_assert_max_num_queries):
    from engines.services import EngineReport, record_engine_heartbeats

    ecm = make_ecm("batch:9102")
    engines = [make_engine(ecm, instance=f"batch:{40000 + i}") for i in range(30)]
    busy = engines[0]
    reports = [EngineReport(e.pk, status=NodeStatus.UNLOCK, metrics={"rss": 100 + i}) for i, e in enumerate(engines)]
    reports[0] = EngineReport(busy.pk, status=NodeStatus.BUSY, metrics={"rss": 1})

    # Clock, lock-and-read, one bulk update; the one status change adds its compare-and-set.
    with django_assert_max_num_queries(12):
        assert record_engine_heartbeats(reports) == 30

    busy.refresh_from_db()
    assert busy.status == NodeStatus.BUSY
    assert [e.metrics["rss"] for e in EngineConn.objects.filter(pk__in=[e.pk for e in engines[1:]]).order_by("pk")] == [
        100 + i for i in range(1, 30)
    ]
    assert EngineConn.objects.filter(pk__in=[e.pk for e in engines], last_heartbeat__isnull=False).count() == 30


def test_a_user_action_moves_the_idle_clock_and_saves_the_engine_from_a_cull():
    from engines.services import cull_engine, record_user_activity

    engine = make_engine(make_ecm("act:9102"), instance="act:40001")
    old = db_now() - timedelta(hours=1)
    EngineConn.objects.filter(pk=engine.pk).update(last_activity=old)
    cutoff = db_now() - timedelta(minutes=5)

    assert record_user_activity(engine.pk) is True
    assert cull_engine(engine.pk, reason="idle", idle_before=cutoff) is False
    engine.refresh_from_db()
    assert engine.status == NodeStatus.UNLOCK and engine.last_activity > cutoff


def test_a_culled_engine_takes_no_user_action():
    from engines.services import cull_engine, record_user_activity

    engine = make_engine(make_ecm("act:9102"), instance="act:40001")
    EngineConn.objects.filter(pk=engine.pk).update(last_activity=db_now() - timedelta(hours=1))
    assert cull_engine(engine.pk, reason="idle", idle_before=db_now()) is True
    assert record_user_activity(engine.pk) is False

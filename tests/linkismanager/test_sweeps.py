"""The health sweep's ECM rules, its run bookkeeping and tasks, and housekeeping.

Time is controlled by back-dating rows against the database clock; the sweep is called directly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection

from config.celery import app
from engines.models import EngineConn, EngineHistory
from engines.services import record_engine_heartbeat, set_runtime_status
from linkismanager import sweeps
from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord, Label, SweepRun
from linkismanager.resources import LoadInstance
from linkismanager.services import ecm_capacity, mark_ecm_lost, record_ecm_heartbeat, set_pinned_health
from linkismanager.sweeps import run_health_sweep, run_housekeeping
from linkismanager.tasks import housekeeping, sweep_health
from tests.factories import make_ecm, make_engine

pytestmark = pytest.mark.django_db


def heard(ecm: EngineConnManager, seconds_ago: float) -> EngineConnManager:
    """Back-date the ECM's last heartbeat by ``seconds_ago`` on the database clock."""
    EngineConnManager.objects.filter(pk=ecm.pk).update(last_heartbeat=db_now() - timedelta(seconds=seconds_ago))
    ecm.refresh_from_db()
    return ecm


def health_records(ecm: EngineConnManager) -> list[tuple[str, str, str]]:
    return [
        (r.old, r.new, r.source)
        for r in HealthRecord.objects.filter(ecm=ecm, field=HealthRecord.Field.HEALTH).order_by("id")
    ]


@pytest.fixture
def ecm() -> EngineConnManager:
    return make_ecm("host1:9102", last_heartbeat=db_now())


# --- Late ECMs --------------------------------------------------------------------------------------


def test_an_ecm_that_reports_on_time_is_left_alone(ecm):
    heard(ecm, 5)

    result = run_health_sweep()

    ecm.refresh_from_db()
    assert (ecm.health, ecm.lost_at) == (NodeHealthy.HEALTHY, None)
    assert result["ecms_late"] == result["ecms_lost"] == 0
    assert health_records(ecm) == []


def test_a_late_ecm_moves_through_stock_available_stock_unavailable_and_unhealthy(ecm):
    seen = []
    for seconds in (45, 90, 150):
        heard(ecm, seconds)
        run_health_sweep()
        ecm.refresh_from_db()
        seen.append(ecm.health)

    assert seen == [NodeHealthy.STOCK_AVAILABLE, NodeHealthy.STOCK_UNAVAILABLE, NodeHealthy.UNHEALTHY]
    assert ecm.lost_at is None
    assert health_records(ecm) == [
        ("Healthy", "StockAvailable", "sweep"),
        ("StockAvailable", "StockUnavailable", "sweep"),
        ("StockUnavailable", "UnHealthy", "sweep"),
    ]
    assert "no heartbeat for 150 s" in HealthRecord.objects.filter(ecm=ecm).first().reason
    assert not EngineConnManager.objects.placeable().exists()


def test_an_ecm_late_past_several_thresholds_goes_straight_to_the_worst(ecm):
    heard(ecm, 200)

    run_health_sweep()

    assert health_records(ecm) == [("Healthy", "UnHealthy", "sweep")]


def test_a_sweep_never_makes_a_late_ecm_look_better(ecm):
    ecm.reported_health = NodeHealthy.STOCK_UNAVAILABLE
    ecm.save(update_fields=["reported_health"])
    heard(ecm, 45)

    assert run_health_sweep()["ecms_late"] == 0

    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.STOCK_UNAVAILABLE


def test_the_next_heartbeat_puts_back_what_the_agent_reports(ecm):
    heard(ecm, 150)
    run_health_sweep()

    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)

    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.HEALTHY
    assert EngineConnManager.objects.placeable().filter(pk=ecm.pk).exists()


def test_an_ecm_that_never_reported_is_not_judged(ecm):
    EngineConnManager.objects.filter(pk=ecm.pk).update(last_heartbeat=None)

    result = run_health_sweep()

    assert result["ecms_late"] == result["ecms_lost"] == 0


# --- Lost ECMs -------------------------------------------------------------------------------------


def test_a_lost_ecm_is_unhealthy_and_its_engines_are_failed_ended_and_free(ecm, django_capture_on_commit_callbacks):
    # given an ECM with engines in every live status, one of them stopping
    engines = [
        make_engine(ecm, status=NodeStatus.UNLOCK, instance="host1:40001", pid=101, process_started_at=1.0),
        make_engine(ecm, status=NodeStatus.BUSY, instance="host1:40002", pid=102, process_started_at=1.0),
        make_engine(ecm, status=NodeStatus.STARTING),
        make_engine(ecm, status=NodeStatus.SHUTTING_DOWN, instance="host1:40003", pid=103, process_started_at=1.0),
    ]
    other = make_engine(make_ecm("host2:9102", last_heartbeat=db_now()), status=NodeStatus.UNLOCK)
    # when its agent has been silent past the lost threshold
    heard(ecm, 400)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = run_health_sweep()

    # then it is lost and shows UnHealthy
    ecm.refresh_from_db()
    assert ecm.lost_at is not None
    assert ecm.health == NodeHealthy.UNHEALTHY
    assert (result["ecms_lost"], result["engines_released"]) == (1, 4)
    assert AuditEntry.objects.filter(action="ecm_lost", target="host1:9102").count() == 1
    # and every engine on it is ended, Failed unless it was already stopping, with the reason
    for engine in engines:
        engine.refresh_from_db()
        assert engine.ended_at is not None
        assert "the ECM host1:9102 was lost" in engine.end_reason
    assert [e.status for e in engines] == ["Failed", "Failed", "Failed", "ShuttingDown"]
    assert {h.status for h in EngineHistory.objects.all()} <= {"Failed", "ShuttingDown"}
    # and their resources are free
    capacity = ecm_capacity(ecm)
    assert capacity.used == capacity.locked == LoadInstance.ZERO
    # and no kill is sent to the dead agent's queue: it kills them when it comes back
    assert callbacks == []
    # and the other ECM's engine is untouched
    other.refresh_from_db()
    assert (other.status, other.ended_at) == (NodeStatus.UNLOCK, None)


def test_an_ecm_is_declared_lost_once(ecm):
    heard(ecm, 400)
    run_health_sweep()
    first = EngineConnManager.objects.get(pk=ecm.pk).lost_at

    result = run_health_sweep()

    assert result["ecms_lost"] == 0
    assert EngineConnManager.objects.get(pk=ecm.pk).lost_at == first
    assert health_records(ecm) == [("Healthy", "UnHealthy", "sweep")]


def test_a_heartbeat_that_lands_first_saves_the_ecm(ecm):
    heard(ecm, 400)
    lost_before = db_now() - timedelta(seconds=300)
    record_ecm_heartbeat(ecm.instance)

    assert mark_ecm_lost(ecm.pk, lost_before=lost_before, now=db_now()) is False
    assert EngineConnManager.objects.get(pk=ecm.pk).lost_at is None


def test_engines_of_an_ecm_that_came_back_are_not_released(ecm):
    # given a lost ECM whose engines were not released yet (the batch was full), and that reports again
    engine = make_engine(ecm, status=NodeStatus.UNLOCK, instance="host1:40001")
    heard(ecm, 400)
    with mock.patch("engines.sweeps.release_engines_of_lost_ecms"):
        run_health_sweep()
    record_ecm_heartbeat(ecm.instance)

    result = run_health_sweep()

    engine.refresh_from_db()
    assert result["engines_released"] == 0
    assert (engine.status, engine.ended_at) == (NodeStatus.UNLOCK, None)


def test_a_pin_survives_heartbeats_and_sweeps_and_a_lost_ecm_shows_unhealthy_while_lost(ecm):
    set_pinned_health(ecm, NodeHealthy.WARN, actor="hadoop", reason="maintenance")
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)
    assert EngineConnManager.objects.get(pk=ecm.pk).health == NodeHealthy.WARN

    # late: the reported health changes, the pin shows
    heard(ecm, 45)
    run_health_sweep()
    ecm.refresh_from_db()
    assert (ecm.reported_health, ecm.pinned_health, ecm.health) == ("StockAvailable", "WARN", "WARN")

    # lost: UnHealthy while lost, pin kept
    heard(ecm, 400)
    run_health_sweep()
    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.UNHEALTHY
    assert (ecm.pinned_health, ecm.pinned_by) == ("WARN", "hadoop")
    assert not EngineConnManager.objects.placeable().filter(pk=ecm.pk).exists()

    # back: the pin shows again
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)
    ecm.refresh_from_db()
    assert (ecm.lost_at, ecm.health) == (None, NodeHealthy.WARN)
    assert health_records(ecm)[-2:] == [("WARN", "UnHealthy", "sweep"), ("UnHealthy", "WARN", "heartbeat")]


def test_a_late_heartbeat_cannot_revive_a_terminal_engine(ecm):
    engine = make_engine(ecm, status=NodeStatus.BUSY, instance="host1:40001", pid=101, process_started_at=1.0)
    heard(ecm, 400)
    run_health_sweep()

    # the agent comes back and reports the engine as it last knew it
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)
    record_engine_heartbeat(engine.pk, status=NodeStatus.UNLOCK, last_activity=db_now())
    set_runtime_status(engine.pk, NodeStatus.IDLE)

    engine.refresh_from_db()
    assert (engine.status, engine.ended_at is not None) == (NodeStatus.FAILED, True)
    assert ecm_capacity(ecm).used == LoadInstance.ZERO


# --- Robustness --------------------------------------------------------------------------------------


def test_a_row_that_fails_does_not_stop_the_others(caplog):
    ecms = [make_ecm(f"host{i}:9102", last_heartbeat=db_now()) for i in range(3)]
    for ecm in ecms:
        heard(ecm, 45)
    real = sweeps.mark_ecm_late

    def flaky(pk, **kwargs):
        if pk == ecms[1].pk:
            raise RuntimeError("boom")
        return real(pk, **kwargs)

    with mock.patch("linkismanager.sweeps.mark_ecm_late", side_effect=flaky), caplog.at_level(logging.ERROR):
        result = run_health_sweep()

    assert (result["ecms_late"], result["errors"]) == (2, 1)
    healths = [EngineConnManager.objects.get(pk=e.pk).health for e in ecms]
    assert healths == ["StockAvailable", "Healthy", "StockAvailable"]
    assert "boom" in caplog.text


def test_a_rule_that_fails_does_not_stop_the_others(ecm):
    heard(ecm, 45)
    with mock.patch("engines.sweeps.cull_idle_engines", side_effect=RuntimeError("db gone")):
        result = run_health_sweep()

    assert (result["ecms_late"], result["errors"]) == (1, 1)


def test_a_run_handles_a_bounded_batch_oldest_first(settings):
    settings.SWEEP_BATCH_SIZE = 2
    ecms = [make_ecm(f"host{i}:9102", last_heartbeat=db_now()) for i in range(3)]
    for i, ecm in enumerate(ecms):
        heard(ecm, 50 - i * 5)  # host0 is the oldest

    assert run_health_sweep()["ecms_late"] == 2
    assert [EngineConnManager.objects.get(pk=e.pk).reported_health for e in ecms] == [
        "StockAvailable",
        "StockAvailable",
        "Healthy",
    ]
    assert run_health_sweep()["ecms_late"] == 1


def test_a_run_logs_one_line_of_counts_and_keeps_them_for_metrics(ecm, caplog):
    heard(ecm, 45)
    with caplog.at_level(logging.INFO, logger="linkismanager.sweeps"):
        result = run_health_sweep()
        run_health_sweep()

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sweep=health")]
    assert len(lines) == 2
    assert "ecms_late=1" in lines[0] and "duration_seconds=" in lines[0]
    assert set(sweeps.HEALTH_COUNTS) <= set(result)
    run = SweepRun.objects.get(name="health")
    assert run.runs == 2
    assert run.last_counts["ecms_late"] == 0  # the second run's figures
    assert run.last_started is not None and run.last_duration >= 0


# --- Concurrency ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_make_each_change_once():
    # given stale rows of every kind: a lost ECM with engines, a late ECM, stuck and idle engines
    now = db_now()
    lost = make_ecm("lost:9102", last_heartbeat=now - timedelta(seconds=400))
    lost_engines = [
        make_engine(lost, status=NodeStatus.UNLOCK, instance=f"lost:{40000 + i}", pid=100 + i, process_started_at=1.0)
        for i in range(3)
    ]
    late = make_ecm("late:9102", last_heartbeat=now - timedelta(seconds=45))
    alive = make_ecm("alive:9102", last_heartbeat=now + timedelta(seconds=60))
    stuck = make_engine(alive, status=NodeStatus.STARTING)
    EngineConn.objects.filter(pk=stuck.pk).update(modified=now - timedelta(seconds=600))
    idle = [
        make_engine(
            alive, status=NodeStatus.UNLOCK, instance=f"alive:{41000 + i}", last_activity=now - timedelta(hours=1)
        )
        for i in range(3)
    ]

    # when two sweeps run at once, each with its own connection
    barrier = threading.Barrier(2)
    results: list[dict] = []
    failures: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(run_health_sweep())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    with mock.patch("config.celery.app.send_task") as send_task:
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

    # then every change happened exactly once
    assert not failures, failures
    assert len(results) == 2
    total = {key: sum(r[key] for r in results) for key in sweeps.HEALTH_COUNTS}
    assert total["errors"] == 0
    assert (total["ecms_late"], total["ecms_lost"], total["engines_released"]) == (2, 1, 3)
    assert (total["engines_start_timeout"], total["engines_culled"]) == (1, 3)
    assert health_records(lost) == [("Healthy", "UnHealthy", "sweep")]
    assert health_records(late) == [("Healthy", "StockAvailable", "sweep")]
    for engine in [*lost_engines, stuck, *idle]:
        moves = HealthRecord.objects.filter(engine=engine, field=HealthRecord.Field.STATUS, source="sweep")
        assert moves.count() == 1, engine
    assert AuditEntry.objects.filter(action="release_engine").count() == 3
    assert AuditEntry.objects.filter(action="ecm_lost").count() == 1
    assert EngineConn.objects.live().filter(ecm=lost).count() == 0
    # and one kill each for the stuck and idle engines, none for the lost ECM's
    killed = sorted(call.kwargs["args"][0] for call in send_task.call_args_list)
    assert killed == sorted(e.pk for e in [stuck, *idle])


# --- Tasks and schedule -----------------------------------------------------------------------------------


def test_the_beat_schedule_runs_each_sweep_on_the_manager_queue_and_drops_a_backlog(settings):
    app.loader.import_default_modules()
    assert set(settings.CELERY_BEAT_SCHEDULE) == {"health-sweep", "housekeeping"}
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
        assert entry["options"]["queue"] == "manager"
        assert 0 < entry["options"]["expires"] <= entry["schedule"].total_seconds()
    assert settings.CELERY_BEAT_SCHEDULE["health-sweep"]["schedule"] == timedelta(
        seconds=settings.SWEEP_INTERVAL_SECONDS
    )


def test_the_tasks_run_the_sweeps(ecm):
    heard(ecm, 45)

    assert sweep_health()["ecms_late"] == 1
    assert housekeeping()["errors"] == 0
    assert set(SweepRun.objects.values_list("name", flat=True)) == {"health", "housekeeping"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")
def test_a_sweep_skips_while_another_holds_the_lock():
    outcome: list[object] = []

    def other() -> None:
        try:
            outcome.append(sweep_health())
        finally:
            connection.close()

    with sweeps.exclusive("health") as acquired:
        assert acquired
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=60)

    assert outcome == [None]
    assert sweep_health() is not None


def test_the_lost_threshold_must_not_come_before_the_late_ones(tmp_path, settings):
    import subprocess
    import sys

    env = {**os.environ, "DATA_DIR": str(tmp_path), "ECM_LOST_SECONDS": "60", "PYTHONPATH": str(settings.BASE_DIR)}
    failed = subprocess.run(
        [sys.executable, "-c", "import config.settings"], env=env, cwd=tmp_path, capture_output=True, text=True
    )

    assert failed.returncode != 0
    assert "ECM lateness thresholds must grow" in failed.stderr


# --- Housekeeping -----------------------------------------------------------------------------------------


def test_health_records_past_their_retention_are_pruned(ecm, settings):
    settings.HEALTH_RECORD_RETENTION_DAYS = 30
    old = HealthRecord.objects.create(
        node_kind="linkis-cg-engineconnmanager", ecm=ecm, field="health", new="WARN", source="admin"
    )
    recent = HealthRecord.objects.create(
        node_kind="linkis-cg-engineconnmanager", ecm=ecm, field="health", new="Healthy", source="admin"
    )
    HealthRecord.objects.filter(pk=old.pk).update(created=db_now() - timedelta(days=31))

    assert run_housekeeping()["health_records_deleted"] == 1

    assert list(HealthRecord.objects.values_list("pk", flat=True)) == [recent.pk]


def test_ended_engines_past_their_retention_are_pruned_with_their_labels_but_not_their_history(ecm, settings):
    settings.ENDED_ENGINE_RETENTION_DAYS = 7
    settings.SWEEP_BATCH_SIZE = 2  # several batches
    now = db_now()
    old = [make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=now - timedelta(days=8)) for _ in range(3)]
    recent = make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=now - timedelta(days=6))
    live = make_engine(ecm, status=NodeStatus.UNLOCK)
    Label.objects.create(engine=old[0], key="userCreator", value="alice-IDE")
    EngineHistory.objects.create(
        ticket_id=old[0].ticket_id,
        label_value="alice-IDE,python-python3",
        create_user="alice",
        engine_type="python",
        ecm_instance=ecm.instance,
        status="Success",
    )

    assert run_housekeeping()["engines_deleted"] == 3

    assert set(EngineConn.objects.values_list("pk", flat=True)) == {recent.pk, live.pk}
    assert not Label.objects.filter(engine__isnull=False).exists()
    assert EngineHistory.objects.filter(ticket_id=old[0].ticket_id).exists()


def _file(path, *, age_seconds: float) -> None:
    path.write_text("x")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))


def test_result_files_and_processed_messages_past_result_expires_are_deleted(settings, tmp_path):
    results = tmp_path / "results"
    broker = tmp_path / "broker"
    results.mkdir()
    (broker / "processed").mkdir(parents=True)
    settings.CELERY_RESULT_BACKEND = f"file://{results}"
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.BROKER_DIR = broker
    settings.CELERY_RESULT_EXPIRES = timedelta(hours=1)
    _file(results / "celery-task-meta-old", age_seconds=7200)
    _file(results / "celery-task-meta-new", age_seconds=60)
    _file(results / "not-a-result", age_seconds=7200)
    _file(broker / "processed" / "old.msg", age_seconds=7200)
    _file(broker / "processed" / "new.msg", age_seconds=60)

    result = run_housekeeping()

    assert (result["result_files_deleted"], result["processed_messages_deleted"]) == (1, 1)
    assert sorted(p.name for p in results.iterdir()) == ["celery-task-meta-new", "not-a-result"]
    assert [p.name for p in (broker / "processed").iterdir()] == ["new.msg"]


def test_other_result_backends_and_brokers_are_left_to_themselves(settings):
    settings.CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/1"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"

    result = run_housekeeping()

    assert (result["result_files_deleted"], result["processed_messages_deleted"], result["errors"]) == (0, 0, 0)


def test_a_late_marking_is_in_the_audit_trail(ecm):
    heard(ecm, 65)

    run_health_sweep()

    entry = AuditEntry.objects.get(action="mark_ecm_late", target="host1:9102")
    assert entry.via == "sweep"
    assert entry.before == {"reportedHealth": "Healthy"}
    assert entry.after == {"reportedHealth": "StockUnavailable"}


def test_housekeeping_refreshes_sqlite_planner_statistics():
    make_engine(make_ecm("stats:9102"), instance="stats:40001")

    result = run_housekeeping()

    if connection.vendor != "sqlite":
        # PostgreSQL keeps its own statistics (autovacuum): nothing to do.
        assert result["planner_statistics_refreshed"] == 0
        return
    assert result["planner_statistics_refreshed"] == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'engines_engineconn'")
        assert cursor.fetchone()[0] > 0

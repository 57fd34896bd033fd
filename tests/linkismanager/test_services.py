"""ECM lifecycle services and what every lifecycle change shares: derived capacity, registration,
heartbeats, health pins, health records and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from linkismanager.choices import NodeHealthy, NodeStatus
from linkismanager.dbtime import db_now
from linkismanager.exceptions import ManagerError
from linkismanager.models import AuditEntry, EngineConnManager, HealthRecord, Label
from linkismanager.resources import LoadInstance
from linkismanager.services import (
    Capacity,
    NotFoundError,
    ecm_capacities,
    ecm_capacity,
    live_engine_counts,
    record_ecm_heartbeat,
    register_ecm,
    set_pinned_health,
    stop_ecm,
)
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db

CAPACITY = LoadInstance(64 * GIB, 32, 20)
RESERVE = LoadInstance(4 * GIB, 2, 1)


def labels_of(ecm: EngineConnManager) -> dict[str, str]:
    return dict(Label.objects.filter(ecm=ecm).values_list("key", "value"))


def health_records(ecm: EngineConnManager, field: str) -> list[tuple[str, str]]:
    return [(r.old, r.new) for r in HealthRecord.objects.filter(ecm=ecm, field=field).order_by("id")]


# --- Derived capacity ------------------------------------------------------------------------------


def test_starting_engines_count_as_locked_and_the_others_as_used():
    # given an ECM with one Starting engine and two up engines (Unlock, Busy)
    ecm = make_ecm()
    make_engine(ecm, status=NodeStatus.STARTING, memory=2 * GIB, cores=2)
    make_engine(ecm, status=NodeStatus.UNLOCK, memory=1 * GIB, cores=1)
    make_engine(ecm, status=NodeStatus.BUSY, memory=3 * GIB, cores=1)

    capacity = ecm_capacity(ecm)

    assert capacity.locked == LoadInstance(2 * GIB, 2, 1)
    assert capacity.used == LoadInstance(4 * GIB, 2, 2)
    assert capacity.maximum == LoadInstance(100 * GIB, 100, 50)
    assert capacity.reserve == LoadInstance(10 * GIB, 2, 2)
    assert capacity.left == LoadInstance(94 * GIB, 96, 47)


def test_an_engine_holds_its_resources_until_its_end_is_recorded_whatever_its_status():
    ecm = make_ecm()
    # A terminal engine whose process is not confirmed gone yet still holds its resources…
    make_engine(ecm, status=NodeStatus.SHUTTING_DOWN, memory=2 * GIB, cores=2)
    # …while ended engines count for nothing.
    make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=timezone.now(), memory=5 * GIB, cores=5)
    make_engine(ecm, status=NodeStatus.FAILED, ended_at=timezone.now(), memory=5 * GIB, cores=5)

    capacity = ecm_capacity(ecm)

    assert capacity.used == LoadInstance(2 * GIB, 2, 1)
    assert capacity.locked == LoadInstance.ZERO


def test_an_ecm_without_live_engines_uses_and_locks_nothing():
    ecm = make_ecm()
    make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=timezone.now())

    capacity = ecm_capacity(ecm)

    assert capacity.used == capacity.locked == LoadInstance.ZERO
    assert capacity.left == capacity.maximum


def test_the_capacities_of_several_ecms_come_from_one_query(django_assert_num_queries):
    # given three ECMs: two with engines, one without
    ecm1, ecm2, ecm3 = make_ecm("host1:9102"), make_ecm("host2:9102"), make_ecm("host3:9102")
    make_engine(ecm1, status=NodeStatus.STARTING, memory=1 * GIB, cores=1)
    make_engine(ecm1, status=NodeStatus.IDLE, memory=2 * GIB, cores=2)
    make_engine(ecm2, status=NodeStatus.LOCKED, memory=4 * GIB, cores=3)
    ecms = list(EngineConnManager.objects.order_by("pk"))

    # when their capacities are derived together
    with django_assert_num_queries(1):
        capacities = ecm_capacities(ecms)

    # then each ECM's figures are its own
    assert set(capacities) == {ecm1.pk, ecm2.pk, ecm3.pk}
    assert capacities[ecm1.pk].locked == LoadInstance(1 * GIB, 1, 1)
    assert capacities[ecm1.pk].used == LoadInstance(2 * GIB, 2, 1)
    assert capacities[ecm2.pk].locked == LoadInstance.ZERO
    assert capacities[ecm2.pk].used == LoadInstance(4 * GIB, 3, 1)
    assert capacities[ecm3.pk].used == capacities[ecm3.pk].locked == LoadInstance.ZERO


def test_live_engine_counts_count_only_engines_not_ended():
    ecm1, ecm2, ecm3 = make_ecm("host1:9102"), make_ecm("host2:9102"), make_ecm("host3:9102")
    make_engine(ecm1, status=NodeStatus.STARTING)
    make_engine(ecm1, status=NodeStatus.SHUTTING_DOWN)
    make_engine(ecm1, status=NodeStatus.SUCCESS, ended_at=timezone.now())
    make_engine(ecm2, status=NodeStatus.FAILED, ended_at=timezone.now())

    assert live_engine_counts([ecm1.pk, ecm2.pk, ecm3.pk]) == {ecm1.pk: 2}


def _capacity(used: LoadInstance = LoadInstance.ZERO, locked: LoadInstance = LoadInstance.ZERO) -> Capacity:
    return Capacity(maximum=LoadInstance(10, 10, 10), reserve=LoadInstance(2, 2, 2), used=used, locked=locked)


def test_a_request_is_admitted_when_it_leaves_exactly_the_protected_reserve():
    capacity = _capacity(used=LoadInstance(3, 3, 3), locked=LoadInstance(1, 1, 1))

    assert capacity.admits(LoadInstance(4, 4, 4))


@pytest.mark.parametrize("request_", [LoadInstance(5, 1, 1), LoadInstance(1, 5, 1), LoadInstance(1, 1, 5)])
def test_a_request_that_would_eat_into_the_reserve_on_any_resource_is_not_admitted(request_):
    capacity = _capacity(used=LoadInstance(3, 3, 3), locked=LoadInstance(1, 1, 1))

    assert not capacity.admits(request_)


def test_locked_resources_are_not_left_for_new_requests():
    assert _capacity().admits(LoadInstance(8, 8, 8))
    assert not _capacity(locked=LoadInstance(1, 0, 0)).admits(LoadInstance(8, 1, 1))


# --- Registration ----------------------------------------------------------------------------------


def test_registering_creates_a_running_ecm_with_its_labels_and_a_status_record():
    ecm = register_ecm("host1:9102", owner="hadoop", capacity=CAPACITY, reserve=RESERVE, labels={"tenant": "t1"})

    ecm.refresh_from_db()
    assert ecm.status == NodeStatus.RUNNING
    assert ecm.owner == "hadoop"
    assert (ecm.max_memory, ecm.max_cores, ecm.max_instances) == (64 * GIB, 32, 20)
    assert (ecm.min_memory, ecm.min_cores, ecm.min_instances) == (4 * GIB, 2, 1)
    assert ecm.registered_at is not None
    assert ecm.last_heartbeat == ecm.registered_at
    assert labels_of(ecm) == {
        "serverAlias": "linkis-cg-engineconnmanager",
        "emInstance": "linkis-cg-engineconnmanager-host1:9102",
        "tenant": "t1",
    }
    record = HealthRecord.objects.get(ecm=ecm)
    assert (record.field, record.old, record.new) == ("status", "", "Running")
    assert (record.source, record.actor, record.instance) == ("agent", "hadoop", "host1:9102")


def test_registering_again_keeps_one_row_updated_in_place_with_labels_added_meanwhile():
    # given a registered ECM to which an admin added a tenant label
    first = register_ecm("host1:9102", owner="hadoop", capacity=CAPACITY, reserve=RESERVE)
    Label.objects.create(ecm=first, key="tenant", value="t1")

    # when its agent registers again with another capacity
    second = register_ecm(
        "host1:9102", owner="hadoop", capacity=LoadInstance(32 * GIB, 8, 4), reserve=LoadInstance(0, 0, 0)
    )

    # then the same row carries the new capacity and keeps the admin's label
    assert second.pk == first.pk
    assert EngineConnManager.objects.filter(instance="host1:9102").count() == 1
    first.refresh_from_db()
    assert (first.max_memory, first.max_cores, first.max_instances) == (32 * GIB, 8, 4)
    assert (first.min_memory, first.min_cores, first.min_instances) == (0, 0, 0)
    assert labels_of(first)["tenant"] == "t1"
    assert labels_of(first)["emInstance"] == "linkis-cg-engineconnmanager-host1:9102"
    assert Label.objects.filter(ecm=first).count() == 3
    # and no second status record, as it was Running already
    assert health_records(first, "status") == [("", "Running")]


def test_registering_a_lost_or_stopped_ecm_makes_it_running_and_no_longer_lost():
    ecm = make_ecm(status=NodeStatus.SHUTTING_DOWN, lost_at=timezone.now())

    register_ecm(ecm.instance, owner="hadoop", capacity=CAPACITY, reserve=RESERVE)

    ecm.refresh_from_db()
    assert ecm.status == NodeStatus.RUNNING
    assert ecm.lost_at is None
    assert ecm.health == NodeHealthy.HEALTHY
    assert health_records(ecm, "status") == [("ShuttingDown", "Running")]


def test_registering_keeps_an_admin_pin():
    ecm = make_ecm(pinned_health=NodeHealthy.STOCK_UNAVAILABLE, pinned_by="hadoop")

    register_ecm(ecm.instance, owner="hadoop", capacity=CAPACITY, reserve=RESERVE)

    ecm.refresh_from_db()
    assert ecm.pinned_health == NodeHealthy.STOCK_UNAVAILABLE
    assert ecm.health == NodeHealthy.STOCK_UNAVAILABLE


def test_a_stopped_agent_leaves_its_ecm_shutting_down_once():
    ecm = make_ecm()

    stop_ecm(ecm.instance)
    stop_ecm(ecm.instance)
    stop_ecm("unknown:1")

    ecm.refresh_from_db()
    assert ecm.status == NodeStatus.SHUTTING_DOWN
    assert health_records(ecm, "status") == [("Running", "ShuttingDown")]


# --- Heartbeats ------------------------------------------------------------------------------------


def test_a_heartbeat_is_timed_by_the_database_clock_not_the_hosts():
    # given an ECM, and a Python clock that is a quarter of a century wrong
    ecm = make_ecm()
    skewed = datetime(2000, 1, 1, tzinfo=UTC)
    before = db_now()

    # when its agent reports
    with mock.patch("django.utils.timezone.now", return_value=skewed):
        record_ecm_heartbeat(ecm.instance, host_metrics={"maxMemory": 1, "systemCPUUsed": 12.5})
    after = db_now()

    # then the heartbeat time is the database's, and the host figures are kept
    ecm.refresh_from_db()
    assert before <= ecm.last_heartbeat <= after
    assert ecm.host_metrics == {"maxMemory": 1, "systemCPUUsed": 12.5}


def test_a_heartbeat_without_metrics_keeps_the_last_ones():
    ecm = make_ecm(host_metrics={"usedMemory": 5})

    record_ecm_heartbeat(ecm.instance)

    ecm.refresh_from_db()
    assert ecm.host_metrics == {"usedMemory": 5}


def test_a_reported_health_changes_the_effective_health_and_is_recorded():
    ecm = make_ecm()

    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.STOCK_AVAILABLE)

    ecm.refresh_from_db()
    assert ecm.reported_health == NodeHealthy.STOCK_AVAILABLE
    assert ecm.health == NodeHealthy.STOCK_AVAILABLE
    record = HealthRecord.objects.get(ecm=ecm, field="health")
    assert (record.old, record.new, record.source) == ("Healthy", "StockAvailable", "heartbeat")


def test_a_heartbeat_that_changes_nothing_writes_no_record():
    ecm = make_ecm()

    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)

    assert not HealthRecord.objects.filter(ecm=ecm).exists()


def test_an_admin_pin_survives_heartbeats_until_an_admin_sets_healthy():
    # given an ECM reporting StockAvailable, pinned UnHealthy by an admin
    ecm = make_ecm()
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.STOCK_AVAILABLE)
    set_pinned_health(ecm, NodeHealthy.UNHEALTHY, actor="hadoop", reason="disk failing")

    # when the agent reports Healthy
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)

    # then the pin holds, while the reported value is kept underneath
    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.UNHEALTHY
    assert ecm.reported_health == NodeHealthy.HEALTHY

    # when the admin sets Healthy, the pin goes and the reported value shows again
    set_pinned_health(ecm, NodeHealthy.HEALTHY, actor="hadoop")
    ecm.refresh_from_db()
    assert ecm.pinned_health is None
    assert ecm.health == NodeHealthy.HEALTHY
    assert health_records(ecm, "health") == [
        ("Healthy", "StockAvailable"),
        ("StockAvailable", "UnHealthy"),
        ("UnHealthy", "Healthy"),
    ]


def test_unpinning_shows_the_reported_health_not_healthy():
    ecm = make_ecm(reported_health=NodeHealthy.WARN)
    set_pinned_health(ecm, NodeHealthy.STOCK_UNAVAILABLE, actor="hadoop")

    set_pinned_health(ecm, NodeHealthy.HEALTHY, actor="hadoop")

    ecm.refresh_from_db()
    assert ecm.health == NodeHealthy.WARN


def test_an_unknown_reported_health_is_refused_and_changes_nothing():
    ecm = make_ecm()

    with pytest.raises(ManagerError, match="Unknown health"):
        record_ecm_heartbeat(ecm.instance, reported_health="Splendid", host_metrics={"usedMemory": 1})

    ecm.refresh_from_db()
    assert ecm.last_heartbeat is None
    assert ecm.host_metrics == {}


def test_a_heartbeat_from_an_unregistered_ecm_is_not_found():
    with pytest.raises(NotFoundError):
        record_ecm_heartbeat("nowhere:9102")

    assert not EngineConnManager.objects.exists()


def test_a_lost_ecm_is_unhealthy_with_its_pin_kept_until_it_reports_again():
    # given a pinned ECM that the sweep declared lost
    ecm = make_ecm(pinned_health=NodeHealthy.WARN, pinned_by="hadoop", lost_at=db_now() - timedelta(minutes=1))
    assert ecm.health == NodeHealthy.UNHEALTHY

    # when its agent reports again
    record_ecm_heartbeat(ecm.instance, reported_health=NodeHealthy.HEALTHY)

    # then it is no longer lost, and the pin shows again
    ecm.refresh_from_db()
    assert ecm.lost_at is None
    assert ecm.pinned_health == NodeHealthy.WARN
    assert ecm.health == NodeHealthy.WARN
    record = HealthRecord.objects.get(ecm=ecm, field="health")
    assert (record.old, record.new) == ("UnHealthy", "WARN")
    assert record.reason == "reported again after being lost"


# --- Health pins -----------------------------------------------------------------------------------


def test_pinning_an_ecm_records_who_why_and_when_with_a_health_record_and_an_audit_entry():
    ecm = make_ecm()
    before = db_now()

    returned = set_pinned_health(ecm, NodeHealthy.WARN, actor="hadoop", reason="maintenance", via="admin")

    ecm.refresh_from_db()
    assert returned.pk == ecm.pk
    assert (ecm.pinned_health, ecm.pinned_by, ecm.pinned_reason) == ("WARN", "hadoop", "maintenance")
    assert ecm.pinned_at >= before
    record = HealthRecord.objects.get(ecm=ecm)
    assert (record.field, record.old, record.new) == ("health", "Healthy", "WARN")
    assert (record.source, record.actor, record.reason) == ("admin", "hadoop", "maintenance")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.via, entry.action) == ("hadoop", "admin", "set_health")
    assert (entry.target_type, entry.target) == ("engineconnmanager", "host1:9102")
    assert (entry.before, entry.after) == ({"pinned": None}, {"pinned": "WARN"})


def test_an_unknown_health_cannot_be_pinned():
    ecm = make_ecm()

    with pytest.raises(ManagerError):
        set_pinned_health(ecm, "Splendid", actor="hadoop")

    ecm.refresh_from_db()
    assert ecm.pinned_health is None
    assert not AuditEntry.objects.exists()

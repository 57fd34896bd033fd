"""Registry models: the database refuses what the lifecycle must never see, and health reads right."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from linkismanager.choices import NodeHealthy
from linkismanager.models import EngineConnManager, Label, UserQuota
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db


# --- Labels ----------------------------------------------------------------------------------------


def test_an_ecm_cannot_have_two_values_for_one_label_key():
    ecm = make_ecm(labels={"tenant": "t1"})

    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(ecm=ecm, key="tenant", value="t2")

    assert list(Label.objects.filter(ecm=ecm).values_list("value", flat=True)) == ["t1"]


def test_an_engine_cannot_have_two_values_for_one_label_key():
    engine = make_engine(make_ecm())
    Label.objects.create(engine=engine, key="userCreator", value="alice-IDE")

    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(engine=engine, key="userCreator", value="alice-shell")


def test_the_same_key_may_be_used_on_different_nodes():
    ecm1, ecm2 = make_ecm("host1:9102"), make_ecm("host2:9102")
    engine = make_engine(ecm1)

    Label.objects.create(ecm=ecm1, key="tenant", value="t1")
    Label.objects.create(ecm=ecm2, key="tenant", value="t1")
    Label.objects.create(engine=engine, key="tenant", value="t1")

    assert Label.objects.filter(key="tenant").count() == 3


def test_a_label_must_belong_to_some_node():
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(key="tenant", value="t1")


def test_a_label_cannot_belong_to_an_ecm_and_an_engine_at_once():
    ecm = make_ecm()
    engine = make_engine(ecm)

    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(ecm=ecm, engine=engine, key="tenant", value="t1")


# --- Capacity --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_memory", "max_cores", "max_instances"])
def test_a_negative_capacity_is_refused(field):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_ecm(**{field: -1})

    assert not EngineConnManager.objects.exists()


@pytest.mark.parametrize("field", ["min_memory", "min_cores", "min_instances"])
def test_a_negative_reserve_is_refused(field):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_ecm(**{field: -1})


def test_an_engine_cannot_ask_for_negative_resources():
    ecm = make_ecm()

    with pytest.raises(IntegrityError), transaction.atomic():
        make_engine(ecm, memory=-GIB)


def test_a_negative_quota_limit_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_cores=-1)


# --- Health ----------------------------------------------------------------------------------------


def test_the_effective_health_is_the_pin_when_there_is_one_else_the_reported_value():
    ecm = make_ecm(reported_health=NodeHealthy.STOCK_AVAILABLE)
    assert ecm.health == NodeHealthy.STOCK_AVAILABLE

    ecm.pinned_health = NodeHealthy.WARN
    assert ecm.health == NodeHealthy.WARN


def test_a_lost_ecm_reads_unhealthy_whatever_its_pin():
    ecm = make_ecm(pinned_health=NodeHealthy.WARN, lost_at=timezone.now())

    assert ecm.health == NodeHealthy.UNHEALTHY
    assert ecm.pinned_health == NodeHealthy.WARN


def test_a_lost_or_stopped_or_unavailable_ecm_is_not_placeable():
    placeable = make_ecm("ok:1")
    make_ecm("warn:1", pinned_health=NodeHealthy.WARN)
    make_ecm("lost:1", lost_at=timezone.now())
    make_ecm("pinned:1", pinned_health=NodeHealthy.UNHEALTHY, reported_health=NodeHealthy.HEALTHY)
    make_ecm("stock:1", reported_health=NodeHealthy.STOCK_AVAILABLE)
    make_ecm("stopping:1", status="ShuttingDown")

    instances = set(EngineConnManager.objects.placeable().values_list("instance", flat=True))

    assert instances == {placeable.instance, "warn:1"}


# --- Quotas ----------------------------------------------------------------------------------------


def test_a_quota_row_without_limits_is_not_an_override_and_takes_the_defaults(settings):
    settings.USER_QUOTA_MEMORY, settings.USER_QUOTA_CORES, settings.USER_QUOTA_INSTANCES = 8 * GIB, 4, 3
    quota = UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3")

    assert not quota.is_override
    assert quota.limits() == (8 * GIB, 4, 3)


def test_a_quota_row_with_one_limit_is_an_override_and_keeps_the_other_defaults(settings):
    settings.USER_QUOTA_MEMORY, settings.USER_QUOTA_CORES = 8 * GIB, 4
    quota = UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=0)

    assert quota.is_override
    assert quota.limits() == (8 * GIB, 4, 0)


def test_there_is_one_quota_per_user_creator_and_engine_type():
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3")

    with pytest.raises(IntegrityError), transaction.atomic():
        UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=1)

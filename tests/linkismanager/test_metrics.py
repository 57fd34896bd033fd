"""/metrics: Prometheus text with registry figures read at scrape time, and who may read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from engines.models import EngineConn
from linkismanager.choices import NodeStatus
from tests.factories import GIB, make_ecm, make_engine

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **extra) -> dict[str, list]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.content.decode())}


def value(samples, **labels) -> float:
    matches = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (labels, samples)
    return matches[0]


def test_engines_and_ecm_figures_come_from_the_registry():
    ecm = make_ecm("host1:9102")
    make_engine(ecm, status=NodeStatus.UNLOCK)
    make_engine(ecm, status=NodeStatus.UNLOCK)
    make_engine(ecm, status=NodeStatus.STARTING, engine_type="shell", engine_version="1")
    make_engine(ecm, status=NodeStatus.SUCCESS, ended_at=timezone.now())

    families = scrape()

    assert value(families["linkis_engines"], status="Unlock", engine_type="python-python3", ecm="host1:9102") == 2
    assert value(families["linkis_engines"], status="Starting", engine_type="shell-1", ecm="host1:9102") == 1
    assert not [s for s in families["linkis_engines"] if s.labels["status"] == "Success"]
    assert value(families["linkis_ecm_used_memory_bytes"], ecm="host1:9102") == 2 * GIB
    assert value(families["linkis_ecm_locked_instances"], ecm="host1:9102") == 1
    assert value(families["linkis_ecm_capacity_cores"], ecm="host1:9102") == 100
    assert value(families["linkis_ecm_health"], ecm="host1:9102", health="Healthy") == 1
    assert value(families["linkis_ecm_up"], ecm="host1:9102") == 1


def test_launch_and_kill_latencies_are_histograms():
    ecm = make_ecm()
    engine = make_engine(ecm)
    EngineConn.objects.filter(pk=engine.pk).update(ready_at=engine.created + timedelta(seconds=3))
    killed = make_engine(ecm, status=NodeStatus.SHUTTING_DOWN)
    now = timezone.now()
    EngineConn.objects.filter(pk=killed.pk).update(kill_requested_at=now, ended_at=now + timedelta(seconds=1.5))

    families = scrape()

    launch = families["linkis_engine_launch_seconds"]
    assert value(launch, le="2.0") == 0 and value(launch, le="5.0") == 1
    assert [s.value for s in launch if s.name.endswith("_sum")] == [pytest.approx(3.0)]
    kill = families["linkis_engine_kill_seconds"]
    assert value(kill, le="1.0") == 0 and value(kill, le="2.0") == 1
    assert value(families["linkis_engine_launches"], outcome="ready") == 1


def test_http_requests_are_counted_by_route():
    Client().get("/api/rest_j/v1/linkisManager/listAllNodeHealthyStatus")
    families = scrape()
    route = "api/rest_j/v1/linkisManager/listAllNodeHealthyStatus"
    assert value(families["linkis_http_requests"], route=route, method="GET", status="401") >= 1


def test_other_addresses_need_the_token_or_an_admin(settings, make_user):
    settings.METRICS_TOKEN = "scrape-me"
    outsider = Client(REMOTE_ADDR="10.9.8.7")
    assert outsider.get("/metrics").status_code == 403
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert "linkis_engines" in scrape(outsider, HTTP_AUTHORIZATION="Bearer scrape-me")
    make_user("root", superuser=True)
    admin = Client(REMOTE_ADDR="10.9.8.7")
    admin.post("/admin/login/", {"username": "root", "password": "test-pass-123"})
    assert "linkis_engines" in scrape(admin)


def test_the_last_sweep_runs_are_exported():
    from linkismanager.models import SweepRun

    SweepRun.objects.create(name="health", runs=3, last_duration=0.25, last_counts={"engines_culled": 2})
    families = scrape()
    assert value(families["linkis_sweep_last_duration_seconds"], sweep="health") == 0.25
    assert value(families["linkis_sweep_runs"], sweep="health") == 3
    assert value(families["linkis_sweep_last_changes"], sweep="health", rule="engines_culled") == 2

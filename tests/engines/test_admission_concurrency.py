"""Parallel admissions never exceed a quota: real threads, each with its own database connection,
against a file-backed database (and unchanged on PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from engines.exceptions import AdmissionError
from engines.models import EngineConn
from engines.services import EngineRequest, admit_engine
from linkismanager.models import UserQuota
from linkismanager.resources import LoadInstance
from tests.factories import GIB, make_ecm

pytestmark = pytest.mark.django_db(transaction=True)


def _admit_in_parallel(count: int, request: EngineRequest) -> tuple[int, list[Exception]]:
    barrier = threading.Barrier(count)
    admitted: list[int] = []
    refused: list[Exception] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            engine = admit_engine(request, actor=request.user)
            with lock:
                admitted.append(engine.pk)
        except AdmissionError as exc:
            with lock:
                refused.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return len(admitted), refused


def test_parallel_admissions_never_exceed_a_quota_of_two_instances():
    make_ecm("host1:9102")
    UserQuota.objects.create(user="alice", creator="IDE", engine_type="python-python3", max_instances=2)
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))

    admitted, refused = _admit_in_parallel(8, request)

    assert admitted == 2
    assert len(refused) == 6
    assert all("quota" in str(exc) for exc in refused)
    assert EngineConn.objects.live().filter(owner="alice").count() == 2


def test_parallel_admissions_never_exceed_an_ecm_capacity():
    # Room for 3 engines above the reserve of 2 instances.
    make_ecm("host1:9102", max_instances=5, min_instances=2)
    request = EngineRequest("bob", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))

    admitted, refused = _admit_in_parallel(8, request)

    assert admitted == 3
    assert all(exc.can_retry for exc in refused)
    assert EngineConn.objects.live().count() == 3

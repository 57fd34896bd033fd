"""Fixtures shared by every test: the standard actors and logged-in API clients."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

PASSWORD = "test-pass-123"
API = "/api/rest_j/v1"


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(name: str, *, superuser: bool = False):
        user_model = get_user_model()
        user = user_model.objects.create_user(username=name, password=PASSWORD)
        if superuser:
            user.is_staff = user.is_superuser = True
            user.save()
        return user

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def hadoop(make_user):
    """The default Linkis admin (named in LINKIS_ADMIN_USERS), not a Django superuser."""
    return make_user("hadoop")


@pytest.fixture
def login() -> Callable[[str], APIClient]:
    """An API client logged in through the real login endpoint (the session cookie)."""

    def do_login(name: str, password: str = PASSWORD) -> APIClient:
        client = APIClient()
        response = client.post(f"{API}/user/login", {"userName": name, "password": password}, format="json")
        assert response.status_code == 200, response.content
        return client

    return do_login


@pytest.fixture(scope="session", autouse=True)
def _fresh_broker(django_db_setup):
    """Start every run with an empty broker, so no message of an earlier run is delivered."""
    import shutil

    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for folder in ("out", "processed", "control"):
            shutil.rmtree(settings.BROKER_DIR / folder, ignore_errors=True)
            (settings.BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)


PRODUCT_PROCESS_MARKERS = ("run_ecm", "engines.runtime", "celery", "gunicorn", "runserver")


def _product_processes() -> dict[int, str]:
    import psutil

    found = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if any(marker in cmdline for marker in PRODUCT_PROCESS_MARKERS) and process.info["pid"] != os.getpid():
            found[process.info["pid"]] = cmdline
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_processes_left_behind():
    """The suite fails if a test leaves an agent, engine, worker or server of ours running."""
    import time

    before = _product_processes()
    yield
    deadline = time.monotonic() + 15
    left: dict[int, str] = {}
    while time.monotonic() < deadline:
        left = {pid: cmd for pid, cmd in _product_processes().items() if pid not in before}
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes left behind by the tests: {left}")


# The live test server (Django's development WSGI server) listens with a backlog of 10, so a burst
# of concurrent clients gets connections reset; gunicorn, which serves production, allows 2048.
from django.core.servers.basehttp import WSGIServer  # noqa: E402

WSGIServer.request_queue_size = 256

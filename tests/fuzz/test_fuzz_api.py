"""Fuzzing: schemathesis generates requests from the served OpenAPI schema for every operation and
checks that none gets a 5xx and every answer matches the schema. Logged in as an admin (so the
admin-only paths run past the permission check) against the test database, with short engine
waits so create/ask examples do not stall. Deterministic: a fixed seed and a bounded number of
examples per operation."""

from __future__ import annotations

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, seed
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.conftest import PASSWORD
from tests.factories import make_ecm, make_engine

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_cookie(transactional_db, make_user, settings) -> str:
    """An admin session, some registry rows to hit, and waits short enough for fuzzing.

    Real transactions, as in production: each request commits (or rolls back) its own.
    """
    settings.ENGINE_CREATE_WAIT_DEFAULT = 0.1
    settings.ENGINE_CREATE_WAIT_MAX = 0.1
    settings.ENGINE_KILL_WAIT = 0
    settings.ECM_TASK_TIMEOUT = 0.1
    settings.AXES_ENABLED = False  # fuzzed logins must not lock the fuzzing user out
    make_user("hadoop", superuser=True)
    ecm = make_ecm("fuzzhost:9102")
    make_engine(ecm, owner="hadoop", instance="fuzzhost:40001")
    client = Client()
    response = client.post(
        "/api/rest_j/v1/user/login",
        {"userName": "hadoop", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 200
    return f"linkis_user_session_ticket_id_v1={client.cookies['linkis_user_session_ticket_id_v1'].value}"


@schema.parametrize()
@seed(20261203)
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_fails_on_the_server_or_breaks_its_schema(case, fuzz_cookie):
    if case.path.endswith("/user/logout"):
        return  # would end the fuzzing session
    response = case.call(headers={"Cookie": fuzz_cookie})
    case.validate_response(response, checks=CHECKS)

"""The OpenAPI schema is served, offline docs load, and every endpoint documents its envelopes."""

from __future__ import annotations

import re

import pytest
import yaml
from django.test import Client
from django.urls import get_resolver

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return (
        response.json() if response["Content-Type"].startswith("application/json") else yaml.safe_load(response.content)
    )


def _api_paths() -> set[str]:
    """Every endpoint path routed under /api/rest_j/v1/, includes followed."""
    from django.urls import URLPattern, URLResolver

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    # A path converter, <str:ticketid>, is {ticketid} in the schema.
    return {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
        for path in walk(get_resolver().url_patterns, "")
        if path.startswith("api/rest_j/v1/")
    }


def test_every_routed_endpoint_is_in_the_schema(schema):
    routed = _api_paths()
    assert "/api/rest_j/v1/linkisManager/listAllNodeHealthyStatus" in routed
    # Linkis' own path with a stray brace cannot be an OpenAPI template; its twin is documented.
    ecinfo = "/api/rest_j/v1/linkisManager/ecinfo"
    aliases = {f"{ecinfo}/delete/{{ticketid}}}}": f"{ecinfo}/delete/{{ticketid}}"}
    for alias, documented in aliases.items():
        assert alias in routed and documented in schema["paths"]
    assert routed - set(aliases) <= set(schema["paths"])


def test_each_operation_documents_the_success_and_error_envelopes(schema):
    for path, operations in schema["paths"].items():
        for verb, operation in operations.items():
            responses = operation["responses"]
            for code in ("200", "400", "401", "403", "404", "405"):
                assert code in responses, f"{verb.upper()} {path} lacks {code}"
            success = responses["200"]["content"]["application/json"]["schema"]
            assert "$ref" in success, f"{verb.upper()} {path}"


def test_login_documents_its_request_body(schema):
    body = schema["paths"]["/api/rest_j/v1/user/login"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][ref]["required"]) == {"userName", "password"}


def test_swagger_ui_is_served_from_local_files():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn." not in page and "unpkg" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page

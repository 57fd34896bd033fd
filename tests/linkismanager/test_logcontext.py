"""Request ids: echoed to the client, put on log lines, and unsafe ids replaced."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from linkismanager.logcontext import ContextFilter, ticket_context

pytestmark = pytest.mark.django_db


def test_a_client_request_id_is_echoed():
    response = Client().get("/api/rest_j/v1/user/userInfo", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_an_unsafe_request_id_is_replaced():
    response = Client().get("/api/rest_j/v1/user/userInfo", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_log_records_carry_the_request_and_ticket_ids(caplog):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with ticket_context("t-1"):
        ContextFilter().filter(record)
    assert record.ticket_id == "t-1"
    assert record.request_id == "-"

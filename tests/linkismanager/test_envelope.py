"""Every answer on the API is the Linkis envelope, errors included."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import API

pytestmark = pytest.mark.django_db

NODE_STATUSES = ["Starting", "Unlock", "Locked", "Idle", "Busy", "Running", "ShuttingDown", "Failed", "Success"]


def test_list_all_node_healthy_status_answers_the_nine_node_statuses(alice, login):
    response = login("alice").get(f"{API}/linkisManager/listAllNodeHealthyStatus", {"onlyEditable": "true"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "method": "/api/linkisManager/listAllNodeHealthyStatus",
        "status": 0,
        "message": "OK",
        "data": {"nodeStatus": NODE_STATUSES},
    }


def test_not_logged_in_is_401_with_status_minus_one():
    response = APIClient().get(f"{API}/linkisManager/listAllNodeHealthyStatus")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == -1
    assert body["message"] == "You are not logged in, please login first!(您尚未登录，请先登录!)"
    assert body["method"] == "/api/linkisManager/listAllNodeHealthyStatus"
    assert body["data"] == {}


def test_a_bad_session_cookie_is_not_logged_in():
    client = APIClient()
    client.cookies["linkis_user_session_ticket_id_v1"] = "forged"
    response = client.get(f"{API}/user/userInfo")
    assert response.status_code == 401
    assert response.json()["status"] == -1


def test_malformed_json_is_400_with_a_message_and_no_html(alice, login):
    client = login("alice")
    response = client.post(f"{API}/user/logout", data='{"broken', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 1
    assert "Malformed request body" in body["message"]
    assert "<html" not in response.content.decode().lower()


def test_malformed_json_on_login_is_an_envelope():
    response = Client().post(f"{API}/user/login", data='{"broken', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["status"] == 1


def test_a_wrong_content_type_is_named():
    response = Client().post(f"{API}/user/login", data="userName=alice", content_type="text/plain")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 1
    assert "application/json" in body["message"]


def test_a_form_encoded_body_is_refused_with_an_envelope():
    response = Client().post(f"{API}/user/login", {"userName": "alice", "password": "x"})
    assert response.status_code == 400
    assert response.json()["status"] == 1


def test_a_json_array_where_an_object_is_expected_is_named():
    response = APIClient().post(f"{API}/user/login", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["status"] == 1


@pytest.mark.parametrize("verb", ["get", "post", "put", "delete", "patch"])
def test_an_unknown_path_is_404_with_status_one(verb):
    response = getattr(Client(), verb)(f"{API}/linkisManager/noSuchThing")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 1
    assert body["method"] == "/api/linkisManager/noSuchThing"
    assert "noSuchThing" in body["message"]


def test_a_wrong_verb_is_405_with_status_one(alice, login):
    response = login("alice").delete(f"{API}/linkisManager/listAllNodeHealthyStatus")
    assert response.status_code == 405
    body = response.json()
    assert body["status"] == 1
    assert "DELETE" in body["message"]


def test_a_wrong_verb_is_405_even_when_not_logged_in():
    response = APIClient().get(f"{API}/user/login")
    assert response.status_code == 405
    assert response.json()["status"] == 1


def test_debug_is_off_by_default(settings):
    assert settings.DEBUG is False


def test_an_unexpected_error_is_an_envelope_without_a_traceback(alice, login, monkeypatch):
    from linkismanager.api import views

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    client = login("alice")
    monkeypatch.setattr(views, "linkis_response", explode)
    client.raise_request_exception = False
    response = client.get(f"{API}/linkisManager/listAllNodeHealthyStatus")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 1
    assert "secret internals" not in body["message"]
    assert "Traceback" not in response.content.decode()

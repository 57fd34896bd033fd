"""Login, logout and userInfo through the real session cookie."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import API, PASSWORD

pytestmark = pytest.mark.django_db


def test_it_logs_in_and_sets_the_linkis_cookie(alice):
    client = APIClient()
    response = client.post(f"{API}/user/login", {"userName": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 0
    assert body["method"] == "/api/user/login"
    assert body["data"]["userName"] == "alice"
    assert body["data"]["isAdmin"] is False
    cookie = response.cookies["linkis_user_session_ticket_id_v1"]
    assert cookie.value
    assert cookie["samesite"] == "Lax"
    assert cookie["httponly"]


def test_the_default_admin_is_reported_as_admin(hadoop, login):
    client = login("hadoop")
    body = client.get(f"{API}/user/userInfo").json()
    assert body["data"] == {"userName": "hadoop", "isAdmin": True}


def test_admin_names_are_case_insensitive(make_user, login, settings):
    settings.LINKIS_ADMIN_USERS = ["ops"]
    make_user("OPS")
    assert login("OPS").get(f"{API}/user/userInfo").json()["data"]["isAdmin"] is True


def test_a_django_superuser_is_an_admin(make_user, login):
    make_user("root", superuser=True)
    assert login("root").get(f"{API}/user/userInfo").json()["data"]["isAdmin"] is True


def test_a_wrong_password_is_refused_without_a_cookie(alice):
    client = APIClient()
    response = client.post(f"{API}/user/login", {"userName": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == 1
    assert "linkis_user_session_ticket_id_v1" not in response.cookies
    assert client.get(f"{API}/user/userInfo").status_code == 401


@pytest.mark.parametrize(
    ("body", "field_message"),
    [
        ({"password": "x"}, "userName"),
        ({"userName": "alice"}, "password"),
        ({"userName": "", "password": "x"}, "Username can not be empty"),
    ],
)
def test_missing_login_fields_are_named(alice, body, field_message):
    response = APIClient().post(f"{API}/user/login", body, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == 1
    assert field_message in response.json()["message"]


def test_repeated_failures_lock_the_user_out_even_with_the_right_password(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = APIClient()
    for _ in range(3):
        client.post(f"{API}/user/login", {"userName": "alice", "password": "wrong"}, format="json")
    response = client.post(f"{API}/user/login", {"userName": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == 1
    assert "Too many failed logins" in response.json()["message"]
    assert "linkis_user_session_ticket_id_v1" not in response.cookies


def test_a_lockout_is_per_user(alice, bob, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = APIClient()
    for _ in range(2):
        client.post(f"{API}/user/login", {"userName": "alice", "password": "wrong"}, format="json")
    response = client.post(f"{API}/user/login", {"userName": "bob", "password": PASSWORD}, format="json")
    assert response.json()["status"] == 0


def test_logout_ends_the_session(alice, login):
    client = login("alice")
    assert client.get(f"{API}/user/userInfo").status_code == 200
    response = client.post(f"{API}/user/logout")
    assert response.status_code == 200
    assert response.json()["status"] == 0
    response = client.get(f"{API}/user/userInfo")
    assert response.status_code == 401
    assert response.json()["status"] == -1


def test_user_info_names_the_caller(alice, login):
    body = login("alice").get(f"{API}/user/userInfo").json()
    assert body == {
        "method": "/api/user/userInfo",
        "status": 0,
        "message": "OK",
        "data": {"userName": "alice", "isAdmin": False},
    }

"""Token headers: Token-Code acting as Token-User, with expiry, user and host scopes and the
admin flag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from linkismanager.models import Token
from tests.conftest import API

pytestmark = pytest.mark.django_db


def make_token(code: str = "LINKIS-AUTH-test", **fields) -> Token:
    token = Token(name=fields.pop("name", "test"), **fields)
    token.set_code(code)
    token.save()
    return token


def call(code: str, user: str | None, path: str = "user/userInfo", **extra):
    headers = {"HTTP_TOKEN_CODE": code}
    if user is not None:
        headers["HTTP_TOKEN_USER"] = user
    return APIClient().get(f"{API}/{path}", **headers, **extra)


def test_a_valid_token_acts_as_its_user(alice):
    make_token(legal_users="alice,bob")
    response = call("LINKIS-AUTH-test", "alice")
    assert response.status_code == 200
    assert response.json()["data"] == {"userName": "alice", "isAdmin": False}


def test_only_a_hash_of_the_code_is_stored():
    token = make_token("LINKIS-AUTH-secret")
    assert "LINKIS-AUTH-secret" not in (token.key_hash, token.name)
    assert token.key_prefix == "LINKIS-A"


def test_a_token_user_without_an_account_gets_one_without_a_password():
    make_token()
    response = call("LINKIS-AUTH-test", "carol")
    assert response.json()["data"]["userName"] == "carol"
    carol = get_user_model().objects.get(username="carol")
    assert not carol.has_usable_password()


def test_an_expired_token_is_refused(alice):
    make_token(expires_at=timezone.now() - timedelta(seconds=1))
    response = call("LINKIS-AUTH-test", "alice")
    assert response.status_code == 401
    assert response.json()["status"] == -1
    assert "expired" in response.json()["message"]


def test_a_token_not_yet_expired_works(alice):
    make_token(expires_at=timezone.now() + timedelta(days=1))
    assert call("LINKIS-AUTH-test", "alice").status_code == 200


def test_an_unknown_token_is_refused(alice):
    make_token()
    response = call("LINKIS-AUTH-other", "alice")
    assert response.status_code == 401
    assert response.json()["message"] == "Unknown token."


def test_a_user_outside_the_token_scope_is_refused(alice, bob):
    make_token(legal_users="alice")
    response = call("LINKIS-AUTH-test", "bob")
    assert response.status_code == 401
    assert "may not act as user bob" in response.json()["message"]


def test_user_names_in_scope_are_case_sensitive(alice):
    make_token(legal_users="alice")
    assert call("LINKIS-AUTH-test", "Alice").status_code == 401


def test_a_missing_token_user_is_refused():
    make_token()
    response = call("LINKIS-AUTH-test", None)
    assert response.status_code == 401
    assert "Token-User" in response.json()["message"]


def test_hosts_limit_where_a_token_may_be_used(alice):
    make_token(legal_hosts="10.1.0.0/16, 192.168.1.7")
    assert call("LINKIS-AUTH-test", "alice", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert call("LINKIS-AUTH-test", "alice", REMOTE_ADDR="10.1.3.4").status_code == 200
    assert call("LINKIS-AUTH-test", "alice", REMOTE_ADDR="192.168.1.7").status_code == 200


def test_the_admin_flag_makes_the_request_admin(alice):
    make_token(is_admin=True)
    assert call("LINKIS-AUTH-test", "alice").json()["data"]["isAdmin"] is True


def test_a_token_without_the_flag_grants_no_admin_rights(hadoop, alice):
    make_token()
    assert call("LINKIS-AUTH-test", "alice").json()["data"]["isAdmin"] is False
    # An admin user stays admin when reached through a plain token.
    assert call("LINKIS-AUTH-test", "hadoop").json()["data"]["isAdmin"] is True


def test_an_inactive_user_is_refused_even_with_a_token(alice):
    alice.is_active = False
    alice.save()
    make_token()
    assert call("LINKIS-AUTH-test", "alice").status_code == 401


def test_a_token_request_needs_no_cookie_and_passes_the_cross_site_check(alice):
    make_token()
    response = APIClient().post(f"{API}/user/logout", HTTP_TOKEN_CODE="LINKIS-AUTH-test", HTTP_TOKEN_USER="alice")
    assert response.status_code == 200

"""The staff console loads and manages tokens."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from linkismanager.models import Token

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(make_user) -> Client:
    make_user("root", superuser=True)
    client = Client()
    # Through the real login form, as staff do.
    response = client.post("/admin/login/", {"username": "root", "password": "test-pass-123", "next": "/admin/"})
    assert response.status_code == 302
    return client


def test_the_admin_login_page_loads_with_its_styles():
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert "/static/admin/css/base.css" in response.content.decode()


@pytest.mark.parametrize("url", ["/admin/", "/admin/linkismanager/token/", "/admin/linkismanager/token/add/"])
def test_admin_pages_load_for_staff(staff_client, url):
    assert staff_client.get(url).status_code == 200


def test_adding_a_token_without_a_code_generates_one_shown_once(staff_client):
    response = staff_client.post(
        "/admin/linkismanager/token/add/",
        {"name": "ci", "code": "", "legal_users": "*", "legal_hosts": "*", "is_admin": "on"},
        follow=True,
    )
    assert response.status_code == 200
    token = Token.objects.get(name="ci")
    shown = re.search(r"Token code for ci: (\S+)", response.content.decode())
    assert shown is not None
    assert Token.objects.for_code(shown.group(1)) == token


def test_a_given_code_is_kept(staff_client):
    staff_client.post(
        "/admin/linkismanager/token/add/",
        {"name": "dss", "code": "LINKIS-AUTH-dss", "legal_users": "*", "legal_hosts": "*"},
    )
    assert Token.objects.for_code("LINKIS-AUTH-dss").name == "dss"

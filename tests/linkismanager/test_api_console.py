"""The web console's start-up and support calls, through the real authentication."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from linkismanager.labels import MODIFIABLE_LABEL_KEYS
from linkismanager.models import Token
from tests.conftest import API, PASSWORD

pytestmark = pytest.mark.django_db

NOT_LOGGED_IN = "You are not logged in, please login first!(您尚未登录，请先登录!)"


def make_token(code: str, *, is_admin: bool, users: str = "*") -> None:
    token = Token(name=f"console-{code}", legal_users=users, is_admin=is_admin)
    token.set_code(code)
    token.save()


def token_get(path: str, code: str, user: str):
    return APIClient().get(f"{API}/{path}", HTTP_TOKEN_CODE=code, HTTP_TOKEN_USER=user)


def assert_refused_anonymous(path: str) -> None:
    response = APIClient().get(f"{API}/{path}")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == -1
    assert body["message"] == NOT_LOGGED_IN
    assert body["method"] == f"/api/{path}"


# --- Before login: publicKey and oauth-redirect ---------------------------------------------------


def test_public_key_is_open_and_says_passwords_are_not_encrypted():
    response = APIClient().get(f"{API}/user/publicKey")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 0
    assert body["method"] == "/api/user/publicKey"
    assert body["data"] == {"enableLoginEncrypt": False, "publicKey": None, "enableSSL": False}


def test_public_key_reports_an_https_only_cookie(settings):
    settings.SESSION_COOKIE_SECURE = True
    assert APIClient().get(f"{API}/user/publicKey").json()["data"]["enableSSL"] is True


@pytest.mark.parametrize("name", ["alice", "hadoop"])
def test_public_key_is_the_same_for_logged_in_users(make_user, login, name):
    make_user(name)
    data = login(name).get(f"{API}/user/publicKey").json()["data"]
    assert data["enableLoginEncrypt"] is False
    assert data["publicKey"] is None


def test_a_stale_token_header_does_not_break_the_login_page():
    response = APIClient().get(f"{API}/user/publicKey", HTTP_TOKEN_CODE="gone", HTTP_TOKEN_USER="alice")
    assert response.status_code == 200
    response = APIClient().get(f"{API}/user/oauth-redirect", HTTP_TOKEN_CODE="gone", HTTP_TOKEN_USER="alice")
    assert response.status_code == 200


def test_oauth_redirect_is_open_and_names_no_redirect():
    response = APIClient().get(f"{API}/user/oauth-redirect")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 0
    assert body["method"] == "/api/user/oauth-redirect"
    assert "redirectUrl" not in body["data"]


@pytest.mark.parametrize("name", ["alice", "hadoop"])
def test_oauth_redirect_names_no_redirect_for_logged_in_users(make_user, login, name):
    make_user(name)
    assert "redirectUrl" not in login(name).get(f"{API}/user/oauth-redirect").json()["data"]


# --- Login as the console sends it ----------------------------------------------------------------


def test_the_console_login_with_the_web_login_header(alice):
    client = APIClient()
    response = client.post(
        f"{API}/user/login", {"userName": "alice", "password": PASSWORD}, format="json", HTTP_WEBLOGIN="true"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 0
    assert body["data"]["userName"] == "alice"
    assert body["data"]["enableWatermark"] is False
    assert response.cookies["linkis_user_session_ticket_id_v1"].value
    # The cookie it set carries the next console calls.
    assert client.get(f"{API}/jobhistory/governanceStationAdmin").json()["data"]["admin"] is False


def test_the_console_login_from_another_site_is_refused(alice):
    client = APIClient()
    response = client.post(
        f"{API}/user/login",
        {"userName": "alice", "password": PASSWORD},
        format="json",
        HTTP_WEBLOGIN="true",
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert response.json()["status"] == 3
    assert "linkis_user_session_ticket_id_v1" not in response.cookies
    assert client.get(f"{API}/jobhistory/governanceStationAdmin").status_code == 401


def test_the_console_login_from_a_trusted_origin_works(alice, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example"]
    response = APIClient().post(
        f"{API}/user/login",
        {"userName": "alice", "password": PASSWORD},
        format="json",
        HTTP_WEBLOGIN="true",
        HTTP_ORIGIN="https://console.example",
    )
    assert response.status_code == 200
    assert response.json()["data"]["userName"] == "alice"


# --- governanceStationAdmin -----------------------------------------------------------------------


def test_governance_station_admin_for_a_plain_user(alice, login):
    body = login("alice").get(f"{API}/jobhistory/governanceStationAdmin").json()
    assert body["status"] == 0
    assert body["method"] == "/api/jobhistory/governanceStationAdmin"
    assert body["data"] == {"admin": False, "historyAdmin": False, "deptAdmin": False, "canResultSet": True}


def test_governance_station_admin_for_the_default_admin(hadoop, login):
    data = login("hadoop").get(f"{API}/jobhistory/governanceStationAdmin").json()["data"]
    assert data == {"admin": True, "historyAdmin": True, "deptAdmin": False, "canResultSet": True}


def test_a_django_superuser_is_admin_and_history_admin(make_user, login):
    make_user("root", superuser=True)
    data = login("root").get(f"{API}/jobhistory/governanceStationAdmin").json()["data"]
    assert data["admin"] is True
    assert data["historyAdmin"] is True


def test_a_history_admin_is_not_an_admin_and_names_ignore_case(make_user, login, settings):
    settings.LINKIS_HISTORY_ADMIN_USERS = ["auditor"]
    make_user("Auditor")
    data = login("Auditor").get(f"{API}/jobhistory/governanceStationAdmin").json()["data"]
    assert data["admin"] is False
    assert data["historyAdmin"] is True


def test_history_admins_include_every_admin(hadoop, login, settings):
    settings.LINKIS_HISTORY_ADMIN_USERS = []
    assert login("hadoop").get(f"{API}/jobhistory/governanceStationAdmin").json()["data"]["historyAdmin"] is True


def test_an_admin_token_makes_the_caller_admin(alice):
    make_token("LINKIS-console-admin", is_admin=True, users="alice")
    response = token_get("jobhistory/governanceStationAdmin", "LINKIS-console-admin", "alice")
    assert response.status_code == 200
    assert response.json()["data"] == {"admin": True, "historyAdmin": True, "deptAdmin": False, "canResultSet": True}


def test_a_plain_token_does_not(alice):
    make_token("LINKIS-console-plain", is_admin=False, users="alice")
    data = token_get("jobhistory/governanceStationAdmin", "LINKIS-console-plain", "alice").json()["data"]
    assert data["admin"] is False
    assert data["historyAdmin"] is False


def test_an_unknown_token_is_refused():
    response = token_get("jobhistory/governanceStationAdmin", "LINKIS-nope", "alice")
    assert response.status_code == 401
    assert response.json()["status"] == -1


# --- baseinfo ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "hadoop"])
def test_baseinfo(make_user, login, settings, name):
    settings.LINKIS_CLUSTER_NAME = "bdp-east"
    make_user(name)
    body = login(name).get(f"{API}/user/baseinfo").json()
    assert body["status"] == 0
    assert body["method"] == "/api/user/baseinfo"
    assert body["data"] == {
        "resultSetExportEnable": False,
        "linkisClusterName": "bdp-east",
        "engineLogOnlyAdminEnable": False,
    }


# --- listundonetasks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "hadoop"])
def test_no_undone_tasks(make_user, login, name):
    make_user(name)
    client = login(name)
    body = client.get(f"{API}/jobhistory/listundonetasks").json()
    assert body["status"] == 0
    assert body["method"] == "/api/jobhistory/listundonetasks"
    assert body["data"] == {"tasks": [], "totalPage": 0}
    filtered = client.get(
        f"{API}/jobhistory/listundonetasks",
        {"pageNow": 1, "pageSize": 20, "status": "Running,Inited,Scheduled", "creator": "IDE", "engineType": "spark"},
    ).json()
    assert filtered["data"] == {"tasks": [], "totalPage": 0}


# --- modifiableLabelKey -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "hadoop"])
def test_modifiable_label_keys(make_user, login, name):
    make_user(name)
    body = login(name).get(f"{API}/microservice/modifiableLabelKey").json()
    assert body["status"] == 0
    assert body["method"] == "/api/microservice/modifiableLabelKey"
    keys = body["data"]["keyList"]
    assert keys == sorted(MODIFIABLE_LABEL_KEYS)
    assert set(keys) == {"userCreator", "tenant", "yarnCluster", "engingeConnRuntimeMode", "fixedEngineConn", "route"}


# --- Login required ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "jobhistory/governanceStationAdmin",
        "user/baseinfo",
        "jobhistory/listundonetasks",
        "microservice/modifiableLabelKey",
    ],
)
def test_the_other_calls_need_a_login(path):
    assert_refused_anonymous(path)


@pytest.mark.parametrize(
    "path",
    [
        "user/publicKey",
        "user/oauth-redirect",
        "jobhistory/governanceStationAdmin",
        "user/baseinfo",
        "jobhistory/listundonetasks",
        "microservice/modifiableLabelKey",
    ],
)
def test_only_get_is_served(alice, login, path):
    response = login("alice").post(f"{API}/{path}", {}, format="json")
    assert response.status_code == 405
    assert response.json()["status"] == 1

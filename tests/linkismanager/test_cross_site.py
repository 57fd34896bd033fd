"""The session cookie cannot be used by another site: Origin/Referer are checked on unsafe
requests."""

from __future__ import annotations

import pytest

from tests.conftest import API

pytestmark = pytest.mark.django_db


def test_a_cross_site_post_with_the_cookie_is_refused(alice, login):
    client = login("alice")
    response = client.post(f"{API}/user/logout", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == 3
    assert "evil.example" in body["message"]
    # The session was not touched: the user is still logged in.
    assert client.get(f"{API}/user/userInfo").status_code == 200


def test_a_cross_site_referer_is_refused_when_there_is_no_origin(alice, login):
    client = login("alice")
    response = client.post(f"{API}/user/logout", HTTP_REFERER="https://evil.example/page")
    assert response.status_code == 403


def test_an_opaque_origin_is_refused(alice, login):
    response = login("alice").post(f"{API}/user/logout", HTTP_ORIGIN="null")
    assert response.status_code == 403


def test_a_cross_site_login_is_refused(alice):
    from rest_framework.test import APIClient

    response = APIClient().post(
        f"{API}/user/login", {"userName": "alice", "password": "x"}, format="json", HTTP_ORIGIN="https://evil.example"
    )
    assert response.status_code == 403


def test_same_origin_passes(alice, login):
    response = login("alice").post(f"{API}/user/logout", HTTP_ORIGIN="http://testserver")
    assert response.status_code == 200


def test_a_same_origin_referer_passes(alice, login):
    response = login("alice").post(f"{API}/user/logout", HTTP_REFERER="http://testserver/#/console")
    assert response.status_code == 200


def test_a_trusted_origin_passes(alice, login, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example:8088"]
    response = login("alice").post(f"{API}/user/logout", HTTP_ORIGIN="https://console.example:8088")
    assert response.status_code == 200


def test_a_request_without_origin_or_referer_passes(alice, login):
    assert login("alice").post(f"{API}/user/logout").status_code == 200


def test_safe_methods_are_not_checked(alice, login):
    response = login("alice").get(f"{API}/user/userInfo", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 200


def test_a_state_changing_get_is_checked_like_a_post(alice, login, settings):
    from django.urls import clear_url_caches, path

    from linkismanager.api.views import UserInfoView

    class StateChangingGet(UserInfoView):
        changes_state_on_get = True

    import config.urls

    original = list(config.urls.urlpatterns)
    config.urls.urlpatterns.insert(0, path("api/rest_j/v1/test/stateChangingGet", StateChangingGet.as_view()))
    clear_url_caches()
    try:
        client = login("alice")
        refused = client.get(f"{API}/test/stateChangingGet", HTTP_REFERER="https://evil.example/x")
        assert refused.status_code == 403
        assert refused.json()["status"] == 3
        assert client.get(f"{API}/test/stateChangingGet").status_code == 200
    finally:
        config.urls.urlpatterns[:] = original
        clear_url_caches()

"""Paths of the manager app under /api/rest_j/v1/ (Linkis' own spelling, no trailing slash)."""

from django.urls import include, path

from linkismanager.api import views

urlpatterns = [
    path("user/login", views.LoginView.as_view(), name="user-login"),
    path("user/logout", views.LogoutView.as_view(), name="user-logout"),
    path("user/userInfo", views.UserInfoView.as_view(), name="user-info"),
    path(
        "linkisManager/listAllNodeHealthyStatus",
        views.ListAllNodeHealthyStatusView.as_view(),
        name="list-all-node-healthy-status",
    ),
    # ECM endpoints (EMRestfulApi), resource monitor (rm/*) and engine history (ecinfo/*).
    path("linkisManager/", include("linkismanager.api.em_urls")),
    path("linkisManager/rm/", include("linkismanager.api.rm_urls")),
    path("linkisManager/ecinfo/", include("linkismanager.api.ecinfo_urls")),
    path("", include("linkismanager.api.console_urls")),
]

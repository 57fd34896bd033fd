"""The web console's start-up and support calls, under /api/rest_j/v1/ (Linkis' spelling)."""

from django.urls import path

from linkismanager.api import console_views

urlpatterns = [
    path("user/publicKey", console_views.PublicKeyView.as_view(), name="user-public-key"),
    path("user/oauth-redirect", console_views.OAuthRedirectView.as_view(), name="user-oauth-redirect"),
    path("user/baseinfo", console_views.BaseInfoView.as_view(), name="user-baseinfo"),
    path(
        "jobhistory/governanceStationAdmin",
        console_views.GovernanceStationAdminView.as_view(),
        name="jobhistory-governance-station-admin",
    ),
    path("jobhistory/listundonetasks", console_views.ListUndoneTasksView.as_view(), name="jobhistory-listundonetasks"),
    path(
        "microservice/modifiableLabelKey",
        console_views.ModifiableLabelKeyView.as_view(),
        name="microservice-modifiable-label-key",
    ),
]

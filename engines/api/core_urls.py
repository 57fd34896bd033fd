"""Create, ask, get and kill under /api/rest_j/v1/linkisManager/."""

from django.urls import path

from engines.api import core_views

urlpatterns = [
    path("createEngineConn", core_views.CreateEngineView.as_view(), name="create-engine-conn"),
    path("askEngineConn", core_views.AskEngineView.as_view(), name="ask-engine-conn"),
    path("getEngineConn", core_views.GetEngineView.as_view(), name="get-engine-conn"),
    path("killEngineConn", core_views.KillEngineView.as_view(), name="kill-engine-conn"),
    path("rm/enginekill", core_views.EngineKillView.as_view(), name="rm-engine-kill"),
]

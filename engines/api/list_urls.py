"""Paths under /api/rest_j/v1/linkisManager/ for this group of engine endpoints: lists, edits,
operations and batch kills (Linkis' own spelling, no trailing slash)."""

from django.urls import path

from engines.api import list_views as views

urlpatterns = [
    path("listUserEngines", views.ListUserEnginesView.as_view(), name="list-user-engines"),
    path("listEMEngines", views.ListEMEnginesView.as_view(), name="list-em-engines"),
    path("modifyEngineInfo", views.ModifyEngineInfoView.as_view(), name="modify-engine-info"),
    path(
        "batchSetEngineToUnHealthy",
        views.BatchSetEngineToUnHealthyView.as_view(),
        name="batch-set-engine-to-unhealthy",
    ),
    path(
        "executeEngineConnOperation",
        views.ExecuteEngineConnOperationView.as_view(),
        name="execute-engine-conn-operation",
    ),
    path("rm/enginekillAsyn", views.EngineKillAsyncView.as_view(), name="engine-kill-async"),
    path("rm/killUnlockEngineByEM", views.KillUnlockEngineByEMView.as_view(), name="kill-unlock-engine-by-em"),
    path(
        "rm/killEngineByCreatorEngineType",
        views.KillEngineByCreatorEngineTypeView.as_view(),
        name="kill-engine-by-creator-engine-type",
    ),
]

"""Paths under /api/rest_j/v1/linkisManager/ for the ECM endpoints (EMRestfulApi), in Linkis' own
spelling, without a trailing slash."""

from django.urls import path

from linkismanager.api import em_views as views

urlpatterns = [
    path("listAllEMs", views.ListAllEMsView.as_view(), name="list-all-ems"),
    path("listAllECMHealthyStatus", views.ListAllECMHealthyStatusView.as_view(), name="list-all-ecm-healthy-status"),
    path("modifyEMInfo", views.ModifyEMInfoView.as_view(), name="modify-em-info"),
    path("executeECMOperation", views.ExecuteECMOperationView.as_view(), name="execute-ecm-operation"),
    path("executeECMOperationByEC", views.ExecuteECMOperationByECView.as_view(), name="execute-ecm-operation-by-ec"),
    path("openEngineLog", views.OpenEngineLogView.as_view(), name="open-engine-log"),
    path("task-prediction", views.TaskPredictionView.as_view(), name="task-prediction"),
    path("reset-resource", views.ResetResourceView.as_view(), name="reset-resource"),
]

"""Engine endpoints (EngineRestfulApi) under /api/rest_j/v1/linkisManager/."""

from django.urls import include, path

urlpatterns = [
    # create, ask, get, kill, rm/enginekill
    path("", include("engines.api.core_urls")),
    # listUserEngines, listEMEngines, modifyEngineInfo, batchSetEngineToUnHealthy,
    # executeEngineConnOperation, rm/enginekillAsyn, rm/killUnlockEngineByEM, rm/killEngineByCreatorEngineType
    path("", include("engines.api.list_urls")),
]

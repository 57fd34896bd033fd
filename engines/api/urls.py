"""Engine endpoints (EngineRestfulApi) under /api/rest_j/v1/linkisManager/."""

urlpatterns: list = []

"""Top-level URLs: the Linkis API, the admin console, and the API schema and docs."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from linkismanager.linkis.views import unknown_api_path
from linkismanager.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[AllowAny]),
        name="swagger-ui",
    ),
    path("api/rest_j/v1/", include("linkismanager.api.urls")),
    path("api/rest_j/v1/linkisManager/", include("engines.api.urls")),
    # Anything else under the API answers an envelope, whatever the verb.
    re_path(r"^api/", unknown_api_path),
]

handler404 = "linkismanager.linkis.views.not_found"
handler500 = "linkismanager.linkis.views.server_error"

"""Paths under /api/rest_j/v1/linkisManager/ for this group of engine endpoints."""

urlpatterns: list = []

"""The operator API's routes with their full paths (/api/v1/…), as a URLconf for an OpenAPI
description: /api/v1/schema/ uses it, and another description may include it to list them too
(`include("dashboard.api.described")`)."""

from dashboard.api.urls import DESCRIBED

urlpatterns = DESCRIBED

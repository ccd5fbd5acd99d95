from django.contrib import admin
from django.urls import include, path

from forwarding.metrics import metrics

urlpatterns = [
    path("", include("forwarding.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("dashboard.api.urls")),
    path("metrics", metrics, name="metrics"),
]

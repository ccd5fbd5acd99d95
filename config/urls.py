from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from forwarding.metrics import metrics

urlpatterns = [
    path("", include("forwarding.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("dashboard.api.urls")),
    path("metrics", metrics, name="metrics"),
    # Browsers ask for it on every page the icon link does not cover: an answer, not a logged 404.
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}dashboard/favicon.svg", permanent=True)),
]

"""Ingestion routes, written exactly as clients send them: no trailing slash, never a redirect."""

from django.urls import path, re_path

from forwarding.health import worker_health
from forwarding.ingestion import views
from forwarding.ingestion.schema import SchemaView
from forwarding.models import CallType

BATCH_PATHS = ["v1/batch", "v1/import", "v1/b"]
# analytics-next (the browser library) posts to the first letter of the type.
MESSAGE_PATHS = {message_type: [f"v1/{message_type}", f"v1/{message_type[0]}"] for message_type in CallType.values}

ingestion = [
    *[path(route, views.BatchView.as_view(), name=f"ingest-{route[3:]}") for route in BATCH_PATHS],
    *[
        path(route, views.MessageView.as_view(message_type=message_type), name=f"ingest-{route[3:]}")
        for message_type, routes in MESSAGE_PATHS.items()
        for route in routes
    ],
    path("v1/projects/<str:write_key>/settings", views.SettingsView.as_view(), name="ingest-settings"),
]

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/worker", worker_health, name="health-worker"),
    # The OpenAPI description of the ingestion routes: public, like the routes themselves.
    path("api/schema/", SchemaView.as_view(patterns=ingestion), name="api-schema"),
    *ingestion,
    # Last: any other /v1/ path (a trailing slash, a typo) gets a JSON 404.
    re_path(r"^v1/", views.not_found),
]

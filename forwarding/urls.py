"""Ingestion routes, written exactly as clients send them: no trailing slash, never a redirect."""

from django.urls import path, re_path

from forwarding.health import worker_health
from forwarding.ingestion import analytics_js, views
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

# RudderStack's browser SDK: its source configuration (it asks for /sourceConfig/?…) and, with
# useBeacon, its batches sent by navigator.sendBeacon (text/plain, the key in the query string).
rudderstack = [
    re_path(r"^sourceConfig/?$", views.SourceConfigView.as_view(), name="rudderstack-source-config"),
    path("beacon/v1/batch", views.BatchView.as_view(), name="rudderstack-beacon-batch"),
]

# analytics.js itself, as Segment's CDN lays it out: the snippet loads the per-key URL, and the
# bundle loads its chunks from <cdn>/analytics-next/bundles/.
analytics_js_files = [
    path("analytics.js/v1/<str:write_key>/analytics.min.js", analytics_js.loader, name="analytics-js"),
    path("analytics-next/bundles/<str:name>", analytics_js.chunk, name="analytics-js-chunk"),
]

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/worker", worker_health, name="health-worker"),
    # The OpenAPI description of the ingestion routes: public, like the routes themselves.
    path("api/schema/", SchemaView.as_view(patterns=ingestion), name="api-schema"),
    *ingestion,
    *rudderstack,
    *analytics_js_files,
    # Last: any other API path (a trailing slash, a typo) gets a JSON 404.
    re_path(r"^v1/", views.not_found),
    re_path(r"^(beacon|sourceConfig|analytics\.js|analytics-next)(/|$)", views.not_found),
]

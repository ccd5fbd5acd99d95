"""Routes of the operator API, under /api/v1/ (config.urls), and its OpenAPI description at
/api/v1/schema/. Every other path under /api/v1/ is a JSON 404."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

import dashboard.views  # noqa: F401  (registers the <relay_id:…> converter)
from dashboard.api import attributes, bulk, calls, event_names, operations, transformations
from dashboard.api.base import handle_exception, not_found

ID = "<relay_id:pk>"

operations_patterns = [
    path("status/", operations.Status.as_view(), name="api-status"),
    path("calls/", calls.Calls.as_view(), name="api-calls"),
    path(f"calls/{ID}/", calls.CallDetail.as_view(), name="api-call"),
    path(f"calls/{ID}/resend/", calls.Resend.as_view(), name="api-call-resend"),
    path("deliveries/", calls.Deliveries.as_view(), name="api-deliveries"),
    path("bulk-resends/", bulk.BulkResends.as_view(), name="api-bulk-resends"),
    path(f"bulk-resends/{ID}/", bulk.BulkResendDetail.as_view(), name="api-bulk-resend"),
    path(f"bulk-resends/{ID}/cancel/", bulk.BulkResendCancel.as_view(), name="api-bulk-resend-cancel"),
    path("event-names/", event_names.EventNames.as_view(), name="api-event-names"),
    path(f"event-names/{ID}/archive/", event_names.Archive.as_view(), name="api-event-name-archive"),
    path(f"event-names/{ID}/unarchive/", event_names.Unarchive.as_view(), name="api-event-name-unarchive"),
    path(f"event-names/{ID}/rename/", event_names.Rename.as_view(), name="api-event-name-rename"),
    path(f"event-names/{ID}/release/", event_names.Release.as_view(), name="api-event-name-release"),
    path("attributes/", attributes.Attributes.as_view(), name="api-attributes"),
    path(f"attributes/{ID}/retry/", attributes.Retry.as_view(), name="api-attribute-retry"),
    path(f"attributes/{ID}/ignore/", attributes.Ignore.as_view(), name="api-attribute-ignore"),
    path(f"attributes/{ID}/unignore/", attributes.Unignore.as_view(), name="api-attribute-unignore"),
    path(f"attributes/{ID}/alias/", attributes.Alias.as_view(), name="api-attribute-alias"),
    path("transformations/", transformations.Transformations.as_view(), name="api-transformations"),
    path(f"transformations/{ID}/", transformations.TransformationDetail.as_view(), name="api-transformation"),
    path("forget-user/", operations.ForgetUser.as_view(), name="api-forget-user"),
]

SCHEMA_SETTINGS = {
    "TITLE": "Intercom Relay operator API",
    "DESCRIPTION": (
        "What the dashboard shows and does, as JSON: the delivery log, calls, resends and bulk resends, event "
        "names, data attributes, transformation rules, forgetting a user, the relay's status. Authenticate with "
        "a token from the dashboard's API tokens page: `Authorization: Bearer rly_…`. Reading needs the Viewers "
        "role, actions the Operators role. Lists are keyset pages: `?limit=` (at most 200) and `?after=` the "
        "previous page's `next`. Errors are JSON: {code, message, problems}. Rate limited per token "
        "(RELAY_API_RATE, 600/min by default): 429 with Retry-After."
    ),
    "VERSION": "1",
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStateEnum": "forwarding.models.State",
        "ConnectionStateEnum": "dashboard.api.operations.CONNECTION_STATES",
    },
}


class SchemaView(SpectacularAPIView):
    """GET /api/v1/schema/: the operator API's description (YAML, or JSON with ?format=json or by
    Accept). Public, as the ingestion's: it holds no stored data."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    custom_settings = SCHEMA_SETTINGS

    def get_exception_handler(self):
        return handle_exception


# The description lists the operations with their full paths (/api/v1/…).
DESCRIBED = [path("api/v1/", include(operations_patterns))]

urlpatterns = [
    *operations_patterns,
    path("schema/", SchemaView.as_view(patterns=DESCRIBED), name="api-v1-schema"),
    re_path(r"^", not_found),
]

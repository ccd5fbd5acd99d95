"""Thin DRF views of the Segment HTTP Tracking API; the work is in the modules they call."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from forwarding.ingestion import auth, browser, decoding, key_limit, rudderstack, storage, validation
from forwarding.ingestion.errors import IngestionError, invalid_write_key
from forwarding.ingestion.headers import add_cors_headers, client_ip
from forwarding.ingestion.schema import IngestionSchema
from forwarding.models import Source

logger = logging.getLogger(__name__)

UNAVAILABLE = {"code": "unavailable", "message": "The database is unavailable; retry later."}


class AlwaysJSON(BaseContentNegotiation):
    """Answer JSON whatever the Accept header says (clients send */*, text/plain or nothing)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def exception_handler(exc, context):
    """Every error as `{"code", "message"}` JSON; database trouble is a 503 that clients retry."""
    if isinstance(exc, IngestionError):
        return Response(exc.as_json(), status=exc.status, headers=exc.headers)
    if isinstance(exc, APIException):
        return Response({"code": exc.default_code, "message": str(exc.detail)}, status=exc.status_code)
    if isinstance(exc, DatabaseError):
        logger.exception("ingestion: database error")
        return Response(UNAVAILABLE, status=503, headers={"Retry-After": "5"})
    return None  # a bug: Django's 500 handling logs it


class IngestionView(APIView):
    """Base: no DRF authentication (write keys are resolved by hand), JSON errors, CORS on every answer."""

    authentication_classes = []
    permission_classes = []
    content_negotiation_class = AlwaysJSON
    schema = IngestionSchema()

    def get_exception_handler(self):
        return exception_handler

    def options(self, request, *args, **kwargs):
        """CORS preflight."""
        return Response(status=204)

    def finalize_response(self, request, response, *args, **kwargs):
        admission = getattr(request, "admission", None)
        if admission is not None:
            # Answered before its calls were stored (a 400, say): it still counts against the limit.
            admission.settle_quietly()  # nothing when it was counted already
        response = super().finalize_response(request, response, *args, **kwargs)
        return add_cors_headers(request, response)


def source_and_body(request):
    """The request's source and JSON body, within the source's rate limit; the request's
    `admission` (see `key_limit.admit`) is left on it, for `storage.store` to count.

    A key in the Authorization header or the query string is checked before the body is read: a
    wrong or throttled key costs no decompression or parsing.
    """
    source = auth.source_from_header(request) or auth.source_from_query(request)
    if source is not None:
        request.admission = key_limit.admit(source)
    body = decoding.read_body(request)
    if source is None:
        source = auth.source_from_body(body)
        request.admission = key_limit.admit(source)
    return source, body


class BatchView(IngestionView):
    """POST /v1/batch (/v1/import, /v1/b, and RudderStack's /beacon/v1/batch?writeKey=…):
    `{batch: [...], context?, integrations?, sentAt?}`."""

    def post(self, request):
        received_at = timezone.now()
        source, body = source_and_body(request)
        accepted, rejected = validation.batch_messages(body, received_at=received_at, ip=client_ip(request))
        storage.store(source, accepted, rejected, received_at=received_at, admission=request.admission)
        return Response({"success": True})


class MessageView(IngestionView):
    """POST /v1/<type> (and /v1/<t>): one message; an invalid one is a 400 and a rejected row."""

    message_type = None

    def post(self, request):
        received_at = timezone.now()
        source, body = source_and_body(request)
        result = validation.single_message(body, self.message_type, received_at=received_at, ip=client_ip(request))
        if isinstance(result, validation.Rejected):
            storage.store(source, [], [result], received_at=received_at, admission=request.admission)
            raise IngestionError(400, result.code, result.reason)
        storage.store(source, [result], [], received_at=received_at, admission=request.admission)
        return Response({"success": True})


class SettingsView(IngestionView):
    """GET /v1/projects/<writeKey>/settings for analytics.js."""

    def get(self, request, write_key):
        if Source.authenticate(write_key) is None:
            raise invalid_write_key(auth.BAD_KEY)
        return Response(browser.settings_document(request, write_key), headers={"Cache-Control": "max-age=300"})


class SourceConfigView(IngestionView):
    """GET /sourceConfig/ for RudderStack's browser SDK: the key as HTTP Basic user name or `?writeKey=`."""

    def get(self, request):
        source = auth.source_from_header_or_query(request)
        return Response(rudderstack.source_config_document(source), headers={"Cache-Control": "max-age=300"})


def health(request):
    """GET /health: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("health: database unavailable")
        return JsonResponse({"status": "unavailable", **UNAVAILABLE}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@csrf_exempt
def not_found(request, *args, **kwargs):
    """Any other API path (/v1/…, /beacon/…), including a trailing slash: a JSON 404, never a redirect,
    that a browser client may read from any origin."""
    response = JsonResponse({"code": "not_found", "message": f"No API route {request.path[:200]}."}, status=404)
    return add_cors_headers(request, response)

"""A Host outside DJANGO_ALLOWED_HOSTS on an API path (/v1/, RudderStack's /beacon/ and /sourceConfig/):
a JSON 400 (`bad_host`) instead of Django's HTML page."""

import logging

from django.core.exceptions import DisallowedHost
from django.http import JsonResponse
from django.utils.log import log_response

from forwarding.ingestion.headers import add_cors_headers

# Where clients expect JSON (analytics.js's files are scripts: Django's page does as well there).
API_PREFIXES = ("/v1/", "/beacon/", "/sourceConfig")
# The logger Django itself reports a bad Host to, so that its log settings keep applying.
security_logger = logging.getLogger("django.security.DisallowedHost")


class JSONBadHostMiddleware:
    """First in MIDDLEWARE: checks the Host of API requests before any other middleware asks for it.

    Clients log the JSON `message`; Django's page would be an HTML body they cannot read. Other
    paths (the dashboard, /health) keep Django's own answer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIXES):
            try:
                request.get_host()
            except DisallowedHost as exc:
                return self._refuse(request, exc)
        return self.get_response(request)

    def _refuse(self, request, exc):
        host = request.META.get("HTTP_HOST", "")[:200]
        message = f"The Host {host!r} is not one of this relay's host names (DJANGO_ALLOWED_HOSTS)."
        response = JsonResponse({"code": "bad_host", "message": message}, status=400)
        log_response(str(exc), request=request, response=response, level="error", logger=security_logger, exception=exc)
        return add_cors_headers(request, response)

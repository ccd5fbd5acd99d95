"""What ingestion reads from and writes to HTTP headers: the client's IP, CORS."""

import ipaddress

from django.conf import settings

# Sent by analytics-next (Authorization, X-Retry-Count) and RudderStack's browser SDK (AnonymousId).
DEFAULT_ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, X-Retry-Count, AnonymousId"


def client_ip(request):
    """The caller's IP: X-Forwarded-For only behind a proxy (SECURE_PROXY_SSL_HEADER set), else REMOTE_ADDR.

    The first X-Forwarded-For entry is the original client. A client can forge it, but it only
    ever lands in that client's own context.ip, so nothing depends on it being true.
    """
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        if _is_ip(forwarded):
            return forwarded
    remote = request.META.get("REMOTE_ADDR", "")
    return remote if _is_ip(remote) else ""


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def add_cors_headers(request, response):
    """Let browsers on any origin call the API, without credentials: `Access-Control-Allow-Origin: *`.

    Safe to open wide: the ingestion API only takes data in and never exposes stored data. It needs
    no cookie (the write key travels in the Authorization header or the body; analytics-next and
    RudderStack's SDK send their calls without credentials), so `Allow-Credentials` is never sent:
    it would let any page read answers to requests made with the visitor's cookies for this host,
    the dashboard's session among them. The same answer for every origin needs no `Vary: Origin`.
    """
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
    response["Access-Control-Allow-Headers"] = (
        request.headers.get("Access-Control-Request-Headers") or DEFAULT_ALLOWED_HEADERS
    )
    response["Access-Control-Max-Age"] = "600"
    # So that a browser client can honour a 429's wait.
    response["Access-Control-Expose-Headers"] = "Retry-After"
    return response

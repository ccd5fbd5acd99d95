"""The settings document analytics.js (analytics-next) fetches before it sends anything, and the relay's
public URL it and the snippets point browsers at."""

from urllib.parse import urlsplit

from django.conf import settings


def settings_document(request, write_key):
    """`GET /v1/projects/<writeKey>/settings`: send every call to this relay.

    apiHost comes from RELAY_PUBLIC_URL, else from the request's own host and scheme.
    """
    host, protocol = _public_host(request)
    return {
        "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": f"{host}/v1", "protocol": protocol}},
        "plan": {},
        # Otherwise analytics-next reports its own metrics to Segment's servers.
        "metrics": {"sampleRate": 0},
    }


def public_url(request):
    """The relay's URL as browsers reach it, without a trailing slash: `https://relay.example.com`.

    RELAY_PUBLIC_URL (a path in it kept: a relay behind a proxy at /relay), else the request's own.
    """
    host, protocol = _public_host(request)
    return f"{protocol}://{host}"


def _public_host(request):
    if settings.RELAY_PUBLIC_URL:
        url = urlsplit(settings.RELAY_PUBLIC_URL)
        return url.netloc + url.path.rstrip("/"), url.scheme or "https"
    return request.get_host(), request.scheme

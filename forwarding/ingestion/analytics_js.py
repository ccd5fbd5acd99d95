"""Self-hosted analytics.js: the vendored analytics-next standalone bundle and its chunks, as Segment's CDN
serves them, so that websites load it from the relay (offline too).

The files are those `bin/update-analytics-js` copied from the npm package into
forwarding/static/analytics-next/. They are listed once, at import: a request names a file of that
list or gets a JSON 404, so no path from a URL ever reaches the file system.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

from forwarding.ingestion.headers import add_cors_headers

VENDORED = Path(__file__).resolve().parent.parent / "static" / "analytics-next"
LOADER = "standalone.js"
# Chunks carry a content hash in their names: a new version never reuses a name.
IMMUTABLE = "public, max-age=31536000, immutable"
# The per-key URL of the loader never changes while its content does (on an update), so browsers
# keep it only briefly and then revalidate it with its ETag.
LOADER_CACHE = "public, max-age=300"
JAVASCRIPT = "text/javascript; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    """One vendored file, read once: its bytes, its gzip copy (b"" without one) and an ETag."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def read(cls, path):
        body = path.read_bytes()
        gz = path.with_name(path.name + ".gz")
        return cls(body, gz.read_bytes() if gz.is_file() else b"", f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def _read_assets():
    """{name: Asset} of the loader and every chunk; empty when nothing is vendored."""
    if not (VENDORED / LOADER).is_file():
        return None, {}
    chunks = {path.name: Asset.read(path) for path in sorted((VENDORED / "bundles").glob("*.js"))}
    return Asset.read(VENDORED / LOADER), chunks


LOADER_ASSET, CHUNKS = _read_assets()
VERSION = (VENDORED / "VERSION").read_text().strip() if (VENDORED / "VERSION").is_file() else ""


@require_safe
def loader(request, write_key):
    """GET /analytics.js/v1/<writeKey>/analytics.min.js: the standalone bundle, the same for every key.

    The key is not checked here: the bundle reads it from the snippet (or this URL) and fetches the
    settings document, which does check it.
    """
    if LOADER_ASSET is None:
        return not_found(request, "analytics.js is not vendored: run bin/update-analytics-js.")
    return _serve(request, LOADER_ASSET, LOADER_CACHE)


@require_safe
def chunk(request, name):
    """GET /analytics-next/bundles/<name>: a chunk the bundle loads on demand (trackLink, ?ajs_ links…)."""
    asset = CHUNKS.get(name)
    if asset is None:
        return not_found(request, f"No analytics.js file {name[:100]!r} (analytics.js {VERSION or 'not vendored'}).")
    return _serve(request, asset, IMMUTABLE)


def not_found(request, message):
    """A JSON 404 a browser may read from any origin, like every other answer of the API."""
    return add_cors_headers(request, JsonResponse({"code": "not_found", "message": message}, status=404))


def _serve(request, asset, cache_control):
    if asset.etag in _etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    else:
        gzip_ok = asset.gzipped and _accepts_gzip(request.headers.get("Accept-Encoding", ""))
        response = HttpResponse(asset.gzipped if gzip_ok else asset.body, content_type=JAVASCRIPT)
        if gzip_ok:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = asset.etag
    response["Cache-Control"] = cache_control
    patch_vary_headers(response, ["Accept-Encoding"])
    return add_cors_headers(request, response)


def _etags(header):
    # A weak validator (W/) matches too: a proxy that compressed the answer may have weakened it.
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def _accepts_gzip(header):
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False

"""Request bodies: read within a cap, gunzip within a cap, parse as JSON whatever the Content-Type.

The body is read from the request stream, never through `request.body`, so Django's
DATA_UPLOAD_MAX_MEMORY_SIZE (RequestDataTooBig, an HTML 400) never comes into play and the
caps below are the only ones.
"""

import json
import math
import zlib

from django.conf import settings

from forwarding.ingestion.errors import invalid_request, too_large

GZIP_ENCODINGS = {"gzip", "x-gzip"}
IDENTITY_ENCODINGS = {"", "identity"}


def read_body(request):
    """The request body as a JSON object (dict); raises IngestionError when it is not one."""
    limit = hard_limit()
    raw = _read_raw(request, limit)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in GZIP_ENCODINGS:
        data = gunzip(raw, limit)
    elif encoding in IDENTITY_ENCODINGS:
        data = raw
    else:
        raise invalid_request(f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding.")
    body = parse_json(data)
    check_request_size(body, len(data))
    return body


def hard_limit():
    """The most bytes ever read or decompressed for one request."""
    return max(settings.RELAY_MAX_REQUEST_BYTES, settings.RELAY_MAX_RUDDER_REQUEST_BYTES)


def _read_raw(request, limit):
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        # Refuse before reading a byte of it.
        raise too_large(f"The request body is over {limit} bytes.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large(f"The request body is over {limit} bytes.")
    return raw


def gunzip(data, limit):
    """Decompress gzip `data` (one or more members); never produces more than `limit` bytes."""
    parts, size = [], 0
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length bounds the output: a gzip bomb stops here, one byte past the limit.
            part = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise invalid_request(f"The body is not valid gzip ({exc}).") from None
        size += len(part)
        if size > limit:
            raise too_large(f"The decompressed request body is over {limit} bytes.")
        if not inflater.eof:
            raise invalid_request("The gzip body is truncated.")
        parts.append(part)
        data = inflater.unused_data
    return b"".join(parts)


def parse_json(data):
    """A dict from JSON bytes (UTF-8, or UTF-16/32 as detected by `json`); the charset label is ignored."""
    if not data.strip():
        raise invalid_request("The body is empty; send a JSON object.")
    try:
        body = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise invalid_request("The body is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and the two hooks below
        raise invalid_request(f"The body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid_request(f"The body must be a JSON object, not {type(body).__name__}.")
    return body


def check_request_size(body, size):
    """Refuse a body over RELAY_MAX_REQUEST_BYTES unless it comes from a RudderStack client.

    RudderStack clients are told apart by the `channel` field every one of their messages
    carries; the User-Agent cannot do it (rudder-sdk-python says `analytics-python/...`, as
    Segment's library does).
    """
    if size <= settings.RELAY_MAX_REQUEST_BYTES:
        return
    if size <= settings.RELAY_MAX_RUDDER_REQUEST_BYTES and is_rudderstack(body):
        return
    raise too_large(f"The request body is {size} bytes, over the limit of {settings.RELAY_MAX_REQUEST_BYTES}.")


def is_rudderstack(body):
    """True when every message of the body carries RudderStack's `channel` field."""
    messages = body.get("batch") if isinstance(body.get("batch"), list) else [body]
    return bool(messages) and all(isinstance(message, dict) and "channel" in message for message in messages)


def _refuse_constant(name):
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number

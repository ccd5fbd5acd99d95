"""Write keys: HTTP Basic (the key as the user name) first, then `writeKey` in the query string (where
RudderStack's browser SDK puts it for beacons and its source configuration), then `writeKey` in the body."""

import base64
import binascii

from forwarding.ingestion.errors import invalid_write_key
from forwarding.models import Source

NO_KEY = "No write key: send it as the HTTP Basic user name, as writeKey in the query string or in the body."
BAD_KEY = "The write key is unknown or its source is inactive."


def basic_auth_key(request):
    """The user name of an HTTP Basic Authorization header; "" without one, IngestionError when malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    credentials = credentials.strip()
    try:
        # Some clients drop the base64 padding.
        decoded = base64.b64decode(credentials + "=" * (-len(credentials) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_write_key("The Authorization header is not valid HTTP Basic credentials.") from None
    # The password is ignored; a value without a colon is the key itself.
    return decoded.partition(":")[0]


def source_from_header(request):
    """The source of the Basic Authorization header, None without one; IngestionError when it is not valid.

    Checked before the body is read, so a wrong key costs no decompression or parsing.
    """
    key = basic_auth_key(request)
    if not key:
        return None
    return _authenticate(key)


def source_from_query(request):
    """The source named by `?writeKey=`, None without one; IngestionError when it is not valid.

    Request logs never show it: config.logfilters.RedactWriteKeys blanks it out.
    """
    key = request.GET.get("writeKey", "")
    if not key:
        return None
    return _authenticate(key)


def source_from_header_or_query(request):
    """The source of the Basic Authorization header, else of `?writeKey=`; IngestionError without either."""
    source = source_from_header(request) or source_from_query(request)
    if source is None:
        raise invalid_write_key(NO_KEY)
    return source


def source_from_body(body):
    """The source named by the body's top-level `writeKey`; IngestionError when missing or not valid."""
    key = body.get("writeKey")
    if not isinstance(key, str) or not key:
        raise invalid_write_key(NO_KEY)
    return _authenticate(key)


def _authenticate(key):
    source = Source.authenticate(key)
    if source is None:
        raise invalid_write_key(BAD_KEY)
    return source

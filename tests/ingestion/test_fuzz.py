"""Whatever arrives, the answer is a JSON 200 or 4xx, never a 500: bodies, and (below) headers,
encodings, lying lengths and query strings on every /v1/ route."""

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingestion.conftest import basic

pytestmark = pytest.mark.django_db

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)
field_values = st.sampled_from(["", "x", "2024-01-02T03:04:05Z", "not a date", 7, None, "track", "identify", "\u0000"])
messages = st.fixed_dictionaries(
    {},
    optional={
        name: field_values | values
        for name in [
            "type",
            "userId",
            "anonymousId",
            "event",
            "groupId",
            "previousId",
            "messageId",
            "timestamp",
            "originalTimestamp",
            "sentAt",
            "context",
            "integrations",
            "traits",
            "properties",
            "name",
        ]
    },
)
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_clean(response):
    assert response.status_code in (200, 400), response.content
    body = response.json()
    assert body == {"success": True} or set(body) == {"code", "message"}


@fuzz
@given(
    batch=st.lists(messages | values, max_size=5),
    envelope=st.dictionaries(st.sampled_from(["context", "integrations", "sentAt"]), field_values | values),
)
def test_it_never_fails_on_any_batch(post, source, batch, envelope):
    _, key = source
    assert_clean(post("/v1/batch", {**envelope, "batch": batch}, key=key))


@fuzz
@given(body=messages, route=st.sampled_from(["/v1/track", "/v1/i", "/v1/group", "/v1/a", "/v1/page"]))
def test_it_never_fails_on_any_single_message(post, source, body, route):
    _, key = source
    assert_clean(post(route, body, key=key))


@fuzz
@given(data=st.binary(max_size=200))
def test_it_never_fails_on_any_bytes(post, source, data):
    _, key = source
    assert_clean(post("/v1/batch", data, key=key))
    assert_clean(post("/v1/batch", data, key=key, HTTP_CONTENT_ENCODING="gzip"))


# -- odd headers, bodies and query strings on every /v1/ route --------------------------------

ROUTES = ["/v1/batch", "/v1/b", "/v1/import", "/v1/track", "/v1/i", "/v1/page", "/v1/s", "/v1/group", "/v1/alias"]
API = [("POST", route) for route in ROUTES] + [
    ("GET", "/v1/projects/{key}/settings"),
    ("OPTIONS", "/v1/batch"),
    ("POST", "/v1/unknown"),
    ("GET", "/v1/batch"),
]
latin1 = st.text(alphabet=st.characters(max_codepoint=255), max_size=30)
encodings = st.sampled_from(
    ["gzip", "GZIP", " gzip ", "x-gzip", "identity", "gzip, gzip", "gzip;q=1", "deflate", "br", "*", "\x00", "\xff\xfe"]
)
content_lengths = st.sampled_from(["", "0", "-1", "abc", "1e3", " 12", "0x10", "99999999999999999999", "5242880"])
VALID_BODY = b'{"batch": [{"type": "track", "userId": "u", "event": "E\xc3\xa9"}], "type": "track", "userId": "u"}'
bodies = st.sampled_from(
    [
        VALID_BODY,
        VALID_BODY.replace(b"\xc3\xa9", b"\xe9"),  # Latin-1, not UTF-8
        VALID_BODY.decode().encode("utf-16"),  # UTF-16 with a BOM: `json` reads it
        VALID_BODY.decode().encode("utf-16-le"),
        b"\xef\xbb\xbf" + VALID_BODY,  # a UTF-8 BOM
        b"\xff\xfe\xfd",
        b"",
    ]
) | st.binary(max_size=100)
queries = st.sampled_from(["", "%ff%fe", "a=%00", "a=%E0%A4%A", "\xff\xfe=\x00", "writeKey=%ZZ", "a" * 3000]) | latin1


def assert_json_answer(response):
    """Never a 5xx, never HTML: JSON `{"code", "message"}` for an error, or a success."""
    assert response.status_code < 500, response.content[:300]
    if response.status_code == 204:  # a CORS preflight
        assert response.content == b""
        return
    assert response["Content-Type"] == "application/json", (response.status_code, response.content[:300])
    body = response.json()
    if response.status_code >= 400:
        assert set(body) == {"code", "message"}, body


@fuzz
@given(
    call=st.sampled_from(API),
    data=bodies,
    encoding=st.none() | encodings | latin1,
    length=st.none() | content_lengths | st.integers(0, 300).map(str),
    query=queries,
)
def test_every_route_answers_json_to_odd_headers_bodies_and_queries(
    client, source, call, data, encoding, length, query
):
    _, key = source
    method, path = call
    headers = {"HTTP_AUTHORIZATION": basic(key), "QUERY_STRING": query}
    if encoding is not None:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    if length is not None:
        # A lie in either direction: the stream gives what there is (a server does the same when the
        # client stops sending), never more than the declared length.
        headers["CONTENT_LENGTH"] = length
        headers["wsgi.input"] = io.BytesIO(data)
    response = client.generic(method, path.format(key=key), data, content_type="text/plain", **headers)
    assert_json_answer(response)

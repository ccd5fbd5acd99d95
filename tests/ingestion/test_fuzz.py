"""Whatever arrives, the answer is a JSON 200 or 4xx, never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

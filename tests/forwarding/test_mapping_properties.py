"""Properties of the mapping under arbitrary messages: for anything ingestion accepts (a stored
payload always has a timestamp string), `map_call` does not raise, and every request body it
produces is one the OpenAPI description allows, checked by the sandbox's own validator (with the
two relaxations of docs/architecture.md, "Intercom's description" and nothing else)."""

import datetime as dt
import json
import time

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from forwarding.ingestion import decoding, validation
from forwarding.ingestion.errors import IngestionError
from forwarding.mapping import map_call, planned_requests
from forwarding.models import Call, Source
from forwarding.sandbox.openapi import OpenAPIValidator
from tests.ingestion.conftest import basic
from tests.ingestion.strategies import envelopes, messages, storable_text

HEADERS = {"content-type": "application/json", "accept": "application/json", "intercom-version": "2.16"}
CONTACT_ID = "6745a1b2c3d4e5f601234567"
RECEIVED_AT = dt.datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=dt.UTC)
mapping_settings = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
options = st.fixed_dictionaries(
    {},
    optional={
        # What the engine passes: a renamed event name and an attributed userId come from its own rows.
        "event_name": storable_text,
        "page_event_name": st.sampled_from(["viewed-page", ""]) | storable_text,
        "user_id": storable_text,
    },
)


def accepted(raw, envelope=None):
    """(payload as stored and read back, Call.user_id) for `raw` sent in a batch; None when refused."""
    text = json.dumps({**(envelope or {}), "batch": [raw]}).encode()
    try:
        body = decoding.parse_json(text)
        calls, _ = validation.batch_messages(body, received_at=RECEIVED_AT, ip="203.0.113.7")
    except IngestionError:
        return None
    if not calls:
        return None
    return json.loads(json.dumps(calls[0].payload, allow_nan=False)), calls[0].user_id[:255]


def violations(mapped):
    """What the OpenAPI description says against each request the engine would send for `mapped`."""
    found = []
    validator = OpenAPIValidator.default()
    # With no contact cached (lookup, then create) and with one (update), companies known or not.
    for contact_id in (None, CONTACT_ID):
        for method, path, body in planned_requests(mapped, contact_id=contact_id, company_id="c0ffee"):
            data = b"" if body is None else json.dumps(body, allow_nan=False).encode()
            checked = validator.check(method, path, "", HEADERS, data)
            found += [f"{method} {path}: {problem}" for problem in checked.violations]
    return found


def note(text):
    """Count `text` in Hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(text[:50])


def assert_maps_cleanly(payload, call_user_id, *, user_id=None, **kwargs):
    """Map `payload` as the engine does and check what it would send.

    The engine sends nothing for a call with no user: neither its own userId nor one attributed
    through its anonymousId (`user_id`, which then replaces the userId of track, page and group).
    """
    assert isinstance(payload["timestamp"], str)
    user_id = user_id or call_user_id
    mapped = map_call(payload, user_id=user_id or None, **kwargs)
    for warning in mapped.warnings:
        assert isinstance(warning, str) and warning
    if mapped.skip_reason or not user_id:
        note(f"not sent: {mapped.skip_reason or 'anonymous'}")
        return mapped
    note("sent")
    assert violations(mapped) == []
    return mapped


@mapping_settings
@given(raw=messages, envelope=envelopes, kwargs=options)
@example(
    raw={"type": "track", "userId": "u", "event": "e", "properties": {"a": {"b": {"c": [1, {"d": None}]}}}},
    envelope={},
    kwargs={},
)
@example(
    raw={"type": "identify", "userId": "u", "traits": {"company": {"id": 7, "size": 1e300, "monthly_spend": -(2**70)}}},
    envelope={},
    kwargs={},
)
@example(
    raw={"type": "track", "userId": "u", "event": "e", "properties": {"revenue": "1e400", "currency": "eur"}},
    envelope={},
    kwargs={},
)
@example(raw={"type": "page", "userId": "u", "timestamp": "0001-01-01T00:00:00Z"}, envelope={}, kwargs={})
def test_whatever_ingestion_accepts_maps_to_requests_the_openapi_description_allows(raw, envelope, kwargs):
    stored = accepted(raw, envelope)
    if stored is None:
        note("refused by ingestion")
        return
    assert_maps_cleanly(*stored, **kwargs)


@pytest.mark.parametrize("text", ["1e999999999", "-1e999999999", "1e999999", "1e-999999999", "9" * 5000, "sNaN"])
@pytest.mark.parametrize(
    "message",
    [
        {"type": "track", "event": "e", "properties": {"revenue": "TEXT"}},
        {"type": "group", "groupId": "g", "traits": {"size": "TEXT", "monthly_spend": "TEXT", "createdAt": "TEXT"}},
        {"type": "identify", "traits": {"company": {"id": "c", "size": "TEXT"}, "createdAt": "TEXT"}},
    ],
)
def test_numbers_written_as_huge_exponents_are_dropped_or_capped_at_once(message, text):
    # Both hung or raised: int(Decimal("1e999999999")) builds a billion-digit integer, and
    # Decimal("1e999999") * 100 overflows.
    raw = json.loads(json.dumps({**message, "userId": "u"}).replace("TEXT", text))
    started = time.monotonic()
    mapped = assert_maps_cleanly(*accepted(raw))
    assert time.monotonic() - started < 1
    assert mapped.warnings


def nested(depth):
    value = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("message_type", ["track", "page", "identify", "group"])
def test_the_deepest_message_ingestion_accepts_maps(message_type):
    key = "title" if message_type == "page" else "x"  # a page event keeps only its page fields
    deep = {key: nested(validation.MAX_DEPTH - 2)}  # with the message and this object: MAX_DEPTH levels
    raw = {"type": message_type, "userId": "u", "event": "e", "groupId": "g", "properties": deep, "traits": deep}
    stored = accepted(raw)
    assert stored is not None
    mapped = assert_maps_cleanly(*stored)
    assert any("nested object flattened" in warning for warning in mapped.warnings)
    assert accepted({**raw, "properties": {"x": deep}}) is None


@pytest.mark.parametrize("message_type", ["track", "page", "identify", "group"])
def test_ten_thousand_properties_map_to_valid_bodies(settings, message_type):
    settings.RELAY_MAX_MESSAGE_BYTES = 1024 * 1024
    bag = {f"p.{index}$": index * 1.5 for index in range(10_000)}
    raw = {"type": message_type, "userId": "u", "event": "e", "groupId": "g", "properties": bag, "traits": bag}
    mapped = assert_maps_cleanly(*accepted(raw))
    if message_type == "track":
        assert len(mapped.event["metadata"]) == 10
    if message_type == "page":  # none of them is a page field
        assert "metadata" not in mapped.event
        assert len(mapped.warnings) == 10_000


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=messages, kwargs=options)
def test_what_the_database_gives_back_maps_too(client, raw, kwargs):
    """Through the API and the database: PostgreSQL's jsonb gives numbers back in its own form."""
    source, key = Source.create_with_key("Mapping")
    response = client.generic(
        "POST",
        "/v1/batch",
        json.dumps({"batch": [{**raw, "messageId": "m"}]}).encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(key),
    )
    assert response.status_code in (200, 400)
    for call in Call.objects.filter(source=source):
        assert_maps_cleanly(call.payload, call.user_id, **kwargs)

"""Properties of the ingestion API under arbitrary input (docs/architecture.md: bad input gets a clear 4xx
JSON error and never a 500; nothing half-stored).

Whatever arrives: the answer is a 200 `{"success": true}` or a 400 `{"code", "message"}`; a refused
request stores no call; an accepted message is stored whole (every field it sent, with its delivery),
and every message of an accepted batch is either a call or a recorded rejection.
"""

import base64
import datetime as dt
import json
import math
import zlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from forwarding.ingestion.validation import MAX_DEPTH
from forwarding.models import Call, Delivery, RejectedMessage, Source
from tests.ingestion.conftest import basic
from tests.ingestion.strategies import envelopes, messages, mostly, values

pytestmark = pytest.mark.django_db

fuzz = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ROUTES = {"track": "/v1/track", "identify": "/v1/i", "page": "/v1/page", "screen": "/v1/s", "group": "/v1/g"}
ROUTES["alias"] = "/v1/alias"
VALID = {"type": "track", "userId": "u-1", "event": "Order Completed", "properties": {"note": "PLACE"}}
# Rewritten during validation; each is checked on its own below.
NORMALISED = {
    "writeKey",
    "messageId",
    "type",
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "context",
    "integrations",
    "traits",
}


def send(client, path, data, key, **headers):
    """POST raw bytes, or a value as JSON (NaN and Infinity as the bare literals `json` writes)."""
    if not isinstance(data, bytes):
        data = json.dumps(data).encode()
    return client.generic("POST", path, data, content_type="application/json", HTTP_AUTHORIZATION=basic(key), **headers)


def fresh_source():
    """A source of its own for each example: Hypothesis runs them all in one test transaction."""
    return Source.create_with_key("Fuzz")


def assert_clean_answer(response):
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.status_code == 200:
        assert body == {"success": True}
    else:
        assert set(body) == {"code", "message"}, body
        assert isinstance(body["code"], str) and body["code"]
        assert isinstance(body["message"], str) and body["message"]
    return body


def canonical(value):
    """A value as its JSON text means it: numbers as Decimals (PostgreSQL's jsonb gives 1e300 back as
    an integer of 301 digits, which is the same number)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return {key: canonical(item) for key, item in value.items()}


def id_text(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def assert_stored_whole(call, sent):
    """Every field the message sent is in the stored payload, as sent or normalised as documented."""
    payload = call.payload
    assert "writeKey" not in payload
    assert payload["messageId"] == call.message_id
    assert payload["type"] == call.type
    assert isinstance(payload["timestamp"], str) and isinstance(payload["receivedAt"], str)
    for key, value in sent.items():
        if key not in NORMALISED:
            assert canonical(payload[key]) == canonical(value), key
    # Ids become strings; groupId and previousId only where their type needs them.
    normalised_ids = {"userId", "anonymousId", {"group": "groupId", "alias": "previousId"}.get(call.type)}
    for name in ("userId", "anonymousId", "groupId", "previousId"):
        if sent.get(name) is not None:
            expected = id_text(sent[name]) if name in normalised_ids else sent[name]
            assert canonical(payload[name]) == canonical(expected), name
    if sent.get("traits"):
        assert canonical(payload["traits"]) == canonical(sent["traits"])
    for name in ("context", "integrations"):
        for key, value in (sent.get(name) or {}).items():
            if not (name == "context" and key == "ip" and not value):
                assert canonical(payload[name][key]) == canonical(value), f"{name}.{key}"
    assert Delivery.objects.filter(call=call).count() == 1


def stored(source):
    calls = {call.message_id: call for call in Call.objects.filter(source=source)}
    return calls, RejectedMessage.objects.filter(source=source).count()


@fuzz
@given(items=st.lists(mostly(messages, values), min_size=1, max_size=6), envelope=envelopes)
def test_a_batch_is_answered_cleanly_and_each_message_stored_whole_or_rejected(client, items, envelope):
    source, key = fresh_source()
    # Unique messageIds, so that each item can be found again (dedup has its own tests).
    items = [
        {**item, "messageId": f"p-{index}"} if isinstance(item, dict) else item for index, item in enumerate(items)
    ]
    response = send(client, "/v1/batch", {**envelope, "batch": items}, key)
    assert_clean_answer(response)
    calls, rejected = stored(source)
    if response.status_code == 400:
        assert (len(calls), rejected) == (0, 0)
        return
    assert len(calls) + rejected == len(items)
    event(f"batch: {min(len(calls), 3)}+ calls stored")
    for message_id, call in calls.items():
        assert_stored_whole(call, items[int(message_id[2:])])


@fuzz
@given(
    body=messages, message_type=st.sampled_from(sorted(ROUTES)), typed=st.sampled_from(["route", "absent", "as sent"])
)
@example(body={**VALID, "timestamp": "0001-01-01T00:00:00+01:00"}, message_type="track", typed="as sent")
@example(body={**VALID, "sentAt": "9999-12-31T23:59:59-01:00"}, message_type="track", typed="as sent")
def test_a_single_message_is_stored_whole_or_refused_with_nothing_stored(client, body, message_type, typed):
    source, key = fresh_source()
    if typed == "route":
        body = {**body, "type": message_type}
    elif typed == "absent":
        body = {name: value for name, value in body.items() if name != "type"}
    response = send(client, ROUTES[message_type], body, key)
    assert_clean_answer(response)
    calls, rejected = stored(source)
    if response.status_code == 400:
        event(f"single: refused ({response.json()['code']})")
        assert len(calls) == 0
        assert rejected <= 1
    else:
        event("single: stored")
        assert (len(calls), rejected) == (1, 0)
        assert_stored_whole(next(iter(calls.values())), body)


# Ways to spoil the raw text of a valid message: bytes that are not UTF-8, escapes that are not
# Unicode, literals that are not JSON.
SPOILERS = [
    b"\xff",
    b"\xc0\x80",  # an over-long NUL
    b"\xed\xa0\x80",  # a surrogate encoded as UTF-8
    b"\xe2\x82",  # a cut multi-byte character
    b"\\ud800",
    b"\\udfff",
    b"\\ud800\\u0041",
    b"\\u0000",
    b"\\\\u0000",  # an escaped backslash then u0000: fine
    b"\\ud83d\\ude00",  # a valid pair: fine
    b'", "x": NaN, "y": "',
    b'", "x": -Infinity, "y": "',
    b'", "x": 1e999, "y": "',
    b'", "x": ' + b"9" * 5000 + b', "y": "',
    b'", "x": ' + b"9" * 4000 + b', "y": "',
]
ACCEPTED = {b"\\\\u0000", b"\\ud83d\\ude00", b'", "x": ' + b"9" * 4000 + b', "y": "'}


@fuzz
@given(spoiler=st.sampled_from(SPOILERS), route=st.sampled_from(["/v1/track", "/v1/batch"]), gzipped=st.booleans())
@example(spoiler=b"\\ud800", route="/v1/track", gzipped=False)
def test_raw_text_that_is_not_json_or_not_unicode_is_refused_or_stored_whole(client, spoiler, route, gzipped):
    source, key = fresh_source()
    text = json.dumps(VALID).encode().replace(b"PLACE", spoiler)
    if route == "/v1/batch":
        text = b'{"batch": [' + text + b"]}"
    headers = {}
    if gzipped:
        text = zlib.compress(text, wbits=16 + zlib.MAX_WBITS)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    response = send(client, route, text, key, **headers)
    assert_clean_answer(response)
    calls, _ = stored(source)
    assert len(calls) == (1 if spoiler in ACCEPTED else 0)


def nested(depth, kind):
    """JSON text nesting `depth` levels of objects or arrays."""
    if kind == "object":
        return b'{"a": ' * depth + b"1" + b"}" * depth
    return b"[" * depth + b"1" + b"]" * depth


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.one_of(st.integers(1, MAX_DEPTH + 2), st.integers(1, 3000)),
    kind=st.sampled_from(["object", "array"]),
    where=st.sampled_from(["properties", "context", "timestamp", "batch context", "batch item"]),
)
@example(depth=MAX_DEPTH - 2, kind="object", where="properties")
@example(depth=MAX_DEPTH - 1, kind="array", where="properties")
@example(depth=990, kind="object", where="properties")
@example(depth=990, kind="array", where="batch context")
def test_deep_nesting_is_refused_past_the_limit_and_never_fails(client, depth, kind, where):
    source, key = fresh_source()
    message = b'{"type": "track", "userId": "u", "event": "e", "messageId": "deep", "properties": {"x": %s}}'
    if where == "properties":
        route, body = "/v1/track", message % nested(depth, kind)
        # The message, its properties and the value: two levels above the nested text.
        fits = depth + 2 <= MAX_DEPTH
    elif where == "context":
        route, body = "/v1/track", message.replace(b'"properties"', b'"context"') % nested(depth, kind)
        fits = depth + 2 <= MAX_DEPTH
    elif where == "timestamp":
        route, body = "/v1/track", message.replace(b'"properties": {"x": %s}', b'"timestamp": %s') % nested(depth, kind)
        fits = False  # not a date whatever its depth
    elif where == "batch context":
        route, body = "/v1/batch", b'{"batch": [%s], "context": {"x": %s}}' % (message % b"1", nested(depth, kind))
        fits = depth + 2 <= MAX_DEPTH
    else:
        route, body = "/v1/batch", b'{"batch": [%s]}' % (message % nested(depth, kind))
        fits = depth + 2 <= MAX_DEPTH
    response = send(client, route, body, key)
    assert_clean_answer(response)
    calls, _ = stored(source)
    assert len(calls) == (1 if fits else 0)
    if fits:
        assert response.status_code == 200


def test_ten_thousand_properties_are_refused_by_the_message_limit_with_nothing_stored(client):
    source, key = fresh_source()
    body = {**VALID, "properties": {f"p{index}": index for index in range(10_000)}}
    response = send(client, "/v1/track", body, key)
    assert assert_clean_answer(response)["code"] == "message_too_large"
    assert stored(source)[0] == {}


def test_ten_thousand_properties_under_a_raised_limit_are_stored_whole(client, settings):
    settings.RELAY_MAX_MESSAGE_BYTES = 1024 * 1024
    source, key = fresh_source()
    properties = {f"p.{index}$": index * 1.5 for index in range(10_000)}
    body = {**VALID, "messageId": "big", "properties": properties}
    data = zlib.compress(json.dumps({"batch": [body]}).encode(), wbits=16 + zlib.MAX_WBITS)
    response = send(client, "/v1/batch", data, key, HTTP_CONTENT_ENCODING="gzip")
    assert assert_clean_answer(response) == {"success": True}
    call = Call.objects.get(source=source)
    assert len(call.payload["properties"]) == 10_000
    assert_stored_whole(call, body)


@pytest.mark.parametrize(
    "timestamp",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00.5+00:30"],
)
def test_a_timestamp_without_a_utc_form_is_refused_not_a_500(client, timestamp):
    source, key = fresh_source()
    response = send(client, "/v1/track", {**VALID, "timestamp": timestamp}, key)
    assert assert_clean_answer(response)["code"] == "invalid_timestamp"
    assert stored(source)[0] == {}


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "0001-01-01T00:30:00+00:30"])
def test_the_first_and_last_representable_moments_are_stored(client, timestamp):
    source, key = fresh_source()
    response = send(client, "/v1/track", {**VALID, "timestamp": timestamp}, key)
    assert assert_clean_answer(response) == {"success": True}
    call = Call.objects.get(source=source)
    assert call.payload["timestamp"].startswith(timestamp[:4])


def test_a_key_made_of_every_forbidden_character_is_stored_as_sent(client):
    source, key = fresh_source()
    forbidden = ".$~`!@#%^&*'{}|\\\""
    body = {**VALID, "properties": {forbidden: 1, **{char: char for char in forbidden}}}
    response = send(client, "/v1/track", body, key)
    assert assert_clean_answer(response) == {"success": True}
    assert_stored_whole(Call.objects.get(source=source), body)


def test_a_nul_in_a_key_is_refused(client):
    source, key = fresh_source()
    response = send(client, "/v1/track", {**VALID, "properties": {"a\u0000b": 1}}, key)
    assert assert_clean_answer(response)["code"] == "invalid_message"
    assert stored(source)[0] == {}


def test_a_basic_header_of_any_bytes_is_a_clean_401(client):
    Source.create_with_key("Fuzz")
    for raw in [b"\xff\xfe", b"\x00", "é:".encode("latin-1"), b":" * 3]:
        header = "Basic " + base64.b64encode(raw).decode()
        response = client.generic("POST", "/v1/track", json.dumps(VALID), HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_write_key"


def test_the_canonical_form_treats_numbers_as_their_json_text():
    assert canonical(1e300) == canonical(10**300)
    assert canonical([0.1, 2]) == canonical([0.1, 2.0])
    assert not math.isnan(float(canonical(5e-324)))


@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp", "sentAt"])
@pytest.mark.parametrize("value", [{}, [], 0, False])
def test_a_falsy_timestamp_that_is_not_empty_is_refused_not_ignored(client, field, value):
    # Found by schemathesis: {} and 0 were taken for "absent" and the call stored as received now.
    source, key = fresh_source()
    response = send(client, "/v1/track", {**VALID, field: value}, key)
    assert assert_clean_answer(response)["code"] == "invalid_timestamp"
    assert stored(source)[0] == {}


@pytest.mark.parametrize("value", [None, ""])
def test_an_empty_timestamp_is_absent(client, value):
    source, key = fresh_source()
    response = send(client, "/v1/track", {**VALID, "timestamp": value, "sentAt": value}, key)
    assert assert_clean_answer(response) == {"success": True}
    call = Call.objects.get(source=source)
    assert call.timestamp == call.received_at


def iso(moment):
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@fuzz
@given(
    offset=st.timedeltas(min_value=-dt.timedelta(days=30), max_value=dt.timedelta(days=30)),
    fractions=st.tuples(st.integers(0, 999_999), st.integers(0, 999_999)),
    seconds_apart=st.integers(1, 3),
    skew=st.one_of(
        st.timedeltas(min_value=-dt.timedelta(days=400), max_value=dt.timedelta(days=400)),
        st.timedeltas(min_value=-dt.timedelta(minutes=6), max_value=dt.timedelta(minutes=6)),
    ),
)
@example(offset=dt.timedelta(0), fractions=(900_000, 100_000), seconds_apart=1, skew=dt.timedelta(hours=1, seconds=0.2))
def test_two_calls_of_a_batch_in_different_seconds_stay_in_different_seconds(
    client, offset, fractions, seconds_apart, skew
):
    # Intercom keeps one event per user, name and second: calls made in different seconds of the
    # device's clock must reach it in different seconds, whatever the skew correction does.
    source, key = fresh_source()
    base = (dt.datetime.now(dt.UTC) + offset).replace(microsecond=0)
    made = [
        base.replace(microsecond=fractions[0]),
        (base + dt.timedelta(seconds=seconds_apart)).replace(microsecond=fractions[1]),
    ]
    batch = [{**VALID, "messageId": f"s-{n}", "originalTimestamp": iso(moment)} for n, moment in enumerate(made)]
    sent_at = dt.datetime.now(dt.UTC) + skew
    response = send(client, "/v1/batch", {"batch": batch, "sentAt": iso(sent_at)}, key)
    assert assert_clean_answer(response) == {"success": True}
    first, second = (Call.objects.get(source=source, message_id=f"s-{n}") for n in range(2))
    assert first.original_timestamp - first.timestamp == second.original_timestamp - second.timestamp
    assert (first.original_timestamp - first.timestamp) % dt.timedelta(seconds=1) == dt.timedelta(0)
    apart = second.timestamp.replace(microsecond=0) - first.timestamp.replace(microsecond=0)
    assert apart == dt.timedelta(seconds=seconds_apart)

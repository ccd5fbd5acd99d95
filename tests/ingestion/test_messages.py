"""Accepted messages: what is stored, normalised, merged and deduplicated."""

import datetime as dt
import uuid

import pytest
from django.db import OperationalError
from django.utils import timezone

from forwarding import services
from forwarding.ingestion import storage
from forwarding.mapping import map_call
from forwarding.models import Call, Delivery, RejectedMessage
from tests.ingestion.conftest import message

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def iso(value):
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_it_stores_an_identify_field_by_field(post, source):
    src, key = source
    body = message(
        "identify",
        messageId="id-1",
        traits={"email": "ada@example.com", "name": "Ada"},
        timestamp="2024-01-02T03:04:05.123Z",
        sentAt="2024-01-02T03:04:06.123Z",
        context={"library": {"name": "test", "version": "1"}},
        _metadata={"bundled": []},
    )
    before = timezone.now()
    response = post("/v1/identify", body, key=key)
    assert response.status_code == 200
    assert response.json() == {"success": True}

    call = Call.objects.get()
    assert call.source == src
    assert (call.message_id, call.type, call.user_id, call.anonymous_id) == ("id-1", "identify", "user-1", "")
    assert call.email == "ada@example.com"
    assert (call.event, call.group_id) == ("", "")
    assert call.original_timestamp == dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert call.sent_at == dt.datetime(2024, 1, 2, 3, 4, 6, 123000, tzinfo=UTC)
    assert before <= call.received_at <= timezone.now()
    # The device sent it a second after making it; its clock is years behind, so the call moves by
    # that skew, in whole seconds.
    assert (call.original_timestamp - call.timestamp) % dt.timedelta(seconds=1) == dt.timedelta(0)
    assert abs(call.timestamp - (call.received_at - dt.timedelta(seconds=1))) <= dt.timedelta(milliseconds=500)

    payload = call.payload
    assert payload["traits"] == {"email": "ada@example.com", "name": "Ada"}
    assert payload["context"]["library"] == {"name": "test", "version": "1"}
    assert payload["_metadata"] == {"bundled": []}  # unknown fields are kept
    assert payload["messageId"] == "id-1"
    assert payload["timestamp"] == iso(call.timestamp)
    assert payload["receivedAt"] == iso(call.received_at)
    assert payload["originalTimestamp"] == "2024-01-02T03:04:05.123Z"
    assert payload["sentAt"] == "2024-01-02T03:04:06.123Z"
    assert Delivery.objects.get(call=call).user_id == "user-1"


def test_it_corrects_a_device_clock_an_hour_ahead(post, source):
    _, key = source
    device_now = timezone.now() + dt.timedelta(hours=1)
    body = message(timestamp=iso(device_now - dt.timedelta(seconds=30)), sentAt=iso(device_now))
    assert post("/v1/track", body, key=key).status_code == 200
    call = Call.objects.get()
    # Moved back by the hour (sentAt - receivedAt, which also holds the transit), in whole seconds.
    gap = call.sent_at - call.received_at
    assert call.original_timestamp - call.timestamp == dt.timedelta(seconds=round(gap.total_seconds()))
    assert abs(call.timestamp - (call.received_at - dt.timedelta(seconds=30))) < dt.timedelta(seconds=1)
    assert abs(call.original_timestamp - call.timestamp - dt.timedelta(hours=1)) <= dt.timedelta(seconds=1)


def test_it_keeps_the_device_time_when_the_request_was_only_delayed(post, source):
    # sentAt 40 s before the arrival (a queue, an outage): transit, not a wrong clock.
    _, key = source
    sent = (timezone.now() - dt.timedelta(seconds=40)).replace(microsecond=0)
    made = sent - dt.timedelta(seconds=2.5)
    assert post("/v1/track", message(timestamp=iso(made), sentAt=iso(sent)), key=key).status_code == 200
    call = Call.objects.get()
    assert call.timestamp == call.original_timestamp == made


def test_it_corrects_any_gap_with_a_threshold_of_zero(post, source, settings):
    _, key = source
    settings.RELAY_CLOCK_SKEW_THRESHOLD = 0
    sent = (timezone.now() - dt.timedelta(seconds=40)).replace(microsecond=0)
    made = sent - dt.timedelta(seconds=2.5)
    assert post("/v1/track", message(timestamp=iso(made), sentAt=iso(sent)), key=key).status_code == 200
    call = Call.objects.get()
    # Moved by the whole 40-odd seconds between sentAt and the arrival, rounded to the second.
    gap = call.received_at - call.sent_at
    assert call.timestamp == made + dt.timedelta(seconds=round(gap.total_seconds()))
    assert dt.timedelta(seconds=40) <= call.timestamp - made <= dt.timedelta(seconds=41)


def test_it_uses_the_batch_sent_at_for_every_message(post, source):
    _, key = source
    batch = [
        message(messageId="a", timestamp="2030-05-05T10:00:00+02:00"),
        message(messageId="b", originalTimestamp="2030-05-05T07:59:00.000001Z", timestamp="2000-01-01T00:00:00Z"),
    ]
    assert post("/v1/batch", {"batch": batch, "sentAt": "2030-05-05T08:00:00Z"}, key=key).status_code == 200
    a, b = Call.objects.order_by("message_id")
    assert a.sent_at == b.sent_at == dt.datetime(2030, 5, 5, 8, tzinfo=UTC)
    # Made when sent: at the arrival, to the whole second (the skew is moved in whole seconds).
    assert abs(a.timestamp - a.received_at) <= dt.timedelta(milliseconds=500)
    assert a.timestamp.microsecond == 0
    # originalTimestamp wins over timestamp; microseconds are kept, and so is the calls' distance.
    assert b.original_timestamp == dt.datetime(2030, 5, 5, 7, 59, 0, 1, tzinfo=UTC)
    assert b.timestamp == a.timestamp - dt.timedelta(seconds=59, microseconds=999999)


def test_it_keeps_the_original_timestamp_without_sent_at(post, source):
    _, key = source
    assert post("/v1/track", message(timestamp="2024-01-02T03:04:05-05:00"), key=key).status_code == 200
    call = Call.objects.get()
    assert call.timestamp == call.original_timestamp == dt.datetime(2024, 1, 2, 8, 4, 5, tzinfo=UTC)
    assert call.sent_at is None
    assert "sentAt" not in call.payload


def test_it_uses_the_arrival_time_without_any_timestamp(post, source):
    _, key = source
    assert post("/v1/track", message(), key=key).status_code == 200
    call = Call.objects.get()
    assert call.timestamp == call.received_at
    assert call.original_timestamp is None
    assert "originalTimestamp" not in call.payload


def test_it_assigns_a_message_id_when_absent(post, source):
    _, key = source
    body = message()
    del body["messageId"]
    assert post("/v1/track", body, key=key).status_code == 200
    call = Call.objects.get()
    assert uuid.UUID(call.message_id).version == 4
    assert call.payload["messageId"] == call.message_id


def test_it_stringifies_numeric_ids_and_allows_null(post, source):
    _, key = source
    body = message("group", userId=None, anonymousId=42, groupId=7.0, messageId=123)
    assert post("/v1/group", body, key=key).status_code == 200
    call = Call.objects.get()
    assert (call.user_id, call.anonymous_id, call.group_id, call.message_id) == ("", "42", "7", "123")
    assert call.payload["anonymousId"] == "42"
    assert call.payload["userId"] is None


def test_it_takes_the_type_from_the_route_when_missing(post, source):
    _, key = source
    body = message("page", name="Pricing")
    del body["type"]
    assert post("/v1/p", body, key=key).status_code == 200
    call = Call.objects.get()
    assert (call.type, call.event) == ("page", "Pricing")
    assert call.payload["type"] == "page"


def test_it_records_the_screen_name_and_the_email_of_context_traits(post, source):
    _, key = source
    body = message("screen", properties={"name": "Home"}, context={"traits": {"email": "bo@example.com"}})
    assert post("/v1/screen", body, key=key).status_code == 200
    call = Call.objects.get()
    assert (call.event, call.email) == ("Home", "bo@example.com")


def test_it_merges_batch_context_and_integrations_underneath_each_message(post, source):
    _, key = source
    batch = [
        message(messageId="a", context={"locale": "fr-FR"}, integrations={"Intercom": False}),
        message(messageId="b"),
    ]
    body = {
        "batch": batch,
        "context": {"locale": "en-US", "library": {"name": "batch-lib"}},
        "integrations": {"All": True, "Intercom": True},
    }
    assert post("/v1/batch", body, key=key).status_code == 200
    a, b = Call.objects.order_by("message_id")
    assert a.payload["context"]["locale"] == "fr-FR"
    assert a.payload["context"]["library"] == {"name": "batch-lib"}
    assert a.payload["integrations"] == {"All": True, "Intercom": False}
    assert b.payload["context"]["locale"] == "en-US"
    assert b.payload["integrations"] == {"All": True, "Intercom": True}


def test_it_fills_context_ip_from_the_connection(post, source):
    _, key = source
    post("/v1/batch", {"batch": [message(messageId="a"), message(messageId="b", context={"ip": "9.9.9.9"})]}, key=key)
    a, b = Call.objects.order_by("message_id")
    assert a.payload["context"]["ip"] == "127.0.0.1"
    assert b.payload["context"]["ip"] == "9.9.9.9"


def test_it_ignores_x_forwarded_for_unless_behind_a_proxy(post, source, settings):
    _, key = source
    settings.SECURE_PROXY_SSL_HEADER = None
    post("/v1/track", message(messageId="a"), key=key, HTTP_X_FORWARDED_FOR="203.0.113.9")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    post("/v1/track", message(messageId="b"), key=key, HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1")
    a, b = Call.objects.order_by("message_id")
    assert a.payload["context"]["ip"] == "127.0.0.1"
    assert b.payload["context"]["ip"] == "203.0.113.9"


def test_it_cuts_over_long_values_in_columns_and_keeps_them_in_the_payload(post, source):
    _, key = source
    long = "u" * 400
    body = message(userId=long, event="e" * 300, context={"traits": {"email": "x" * 300 + "@example.com"}})
    assert post("/v1/track", body, key=key).status_code == 200
    call = Call.objects.get()
    assert call.user_id == long[:255]
    assert len(call.event) == 255 and len(call.email) == 255
    assert call.payload["userId"] == long


def test_it_never_stores_the_write_key(post, source):
    _, key = source
    assert post("/v1/track", {**message(), "writeKey": key}).status_code == 200
    call = Call.objects.get()
    assert "writeKey" not in call.payload


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/json;charset=UTF-8", ""],
)
def test_it_reads_json_whatever_the_content_type(post, source, content_type):
    _, key = source
    response = post("/v1/batch", {"batch": [message()]}, key=key, gzipped=True, content_type=content_type)
    assert response.status_code == 200, response.content
    assert Call.objects.count() == 1


def test_it_takes_the_key_from_the_body(post, source):
    _, key = source
    assert post("/v1/batch", {"batch": [message()], "writeKey": key}).status_code == 200
    assert Call.objects.count() == 1


def test_it_takes_a_basic_key_without_colon_or_padding(post, source):
    import base64

    _, key = source
    header = "Basic " + base64.b64encode(key.encode()).decode().rstrip("=")
    assert post("/v1/batch", {"batch": [message()]}, HTTP_AUTHORIZATION=header).status_code == 200
    assert Call.objects.count() == 1


def test_it_stores_a_retry_once(post, source):
    _, key = source
    body = {"batch": [message(messageId="retry-1")], "sentAt": "2024-01-01T00:00:00Z"}
    assert post("/v1/batch", body, key=key).status_code == 200
    second = post("/v1/batch", body, key=key, HTTP_X_RETRY_COUNT="1")
    assert second.status_code == 200
    assert second.json() == {"success": True}
    assert Call.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_it_stores_a_message_repeated_within_a_batch_once(post, source):
    _, key = source
    batch = [message(messageId="same", event="First"), message(messageId="same", event="Second")]
    assert post("/v1/batch", {"batch": batch}, key=key).status_code == 200
    assert list(Call.objects.values_list("event", flat=True)) == ["First"]
    assert Delivery.objects.count() == 1


def test_it_keeps_message_ids_apart_per_source(post, source):
    from forwarding.models import Source

    _, key = source
    _, other_key = Source.create_with_key("Backend")
    assert post("/v1/track", message(messageId="shared"), key=key).status_code == 200
    assert post("/v1/track", message(messageId="shared"), key=other_key).status_code == 200
    assert Call.objects.count() == 2


def test_it_hands_the_new_calls_with_their_ids_to_the_delivery_engine(post, source, monkeypatch):
    _, key = source
    post("/v1/track", message(messageId="old"), key=key)
    handed = []
    real_accept = services.accept

    def spy(calls):
        handed.append(list(calls))
        return real_accept(calls)

    monkeypatch.setattr(services, "accept", spy)
    batch = [message(messageId="old"), message(messageId="new-1"), message(messageId="new-2")]
    assert post("/v1/batch", {"batch": batch}, key=key).status_code == 200
    [calls] = handed
    assert [call.message_id for call in calls] == ["new-1", "new-2"]
    assert all(call.pk is not None for call in calls)
    assert set(Delivery.objects.values_list("call__message_id", flat=True)) == {"old", "new-1", "new-2"}


def test_it_survives_a_race_with_a_concurrent_request(post, source, monkeypatch):
    _, key = source
    post("/v1/track", message(messageId="raced"), key=key)
    lookups = []
    real_lookup = storage.existing_message_ids

    def stale_first_time(src, ids):
        # The first lookup misses the row the "other request" committed, as a race would.
        lookups.append(ids)
        return set() if len(lookups) == 1 else real_lookup(src, ids)

    monkeypatch.setattr(storage, "existing_message_ids", stale_first_time)
    batch = [message(messageId="raced"), message(messageId="fresh")]
    response = post("/v1/batch", {"batch": batch}, key=key)
    assert response.status_code == 200
    assert len(lookups) == 2
    assert sorted(Call.objects.values_list("message_id", flat=True)) == ["fresh", "raced"]
    assert Delivery.objects.count() == 2


def test_it_stores_nothing_and_answers_503_when_the_database_fails(post, source, monkeypatch):
    _, key = source

    def broken(calls):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "accept", broken)
    batch = [message(messageId="a"), message(messageId="b", event="")]
    response = post("/v1/batch", {"batch": batch}, key=key)
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response["Retry-After"]
    assert Call.objects.count() == 0
    assert RejectedMessage.objects.count() == 0


def test_it_lifts_rudderstack_identify_traits_from_the_context(post, source):
    _, key = source
    body = message("identify", context={"traits": {"email": "r@example.com", "plan": "pro"}})
    assert post("/v1/identify", body, key=key).status_code == 200
    call = Call.objects.get()
    assert call.payload["traits"] == {"email": "r@example.com", "plan": "pro"}
    assert call.email == "r@example.com"


NOW = dt.datetime(2030, 5, 5, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "batch_sent_at", "expected"),
    [
        pytest.param({}, None, "arrival", id="no-time-the-arrival"),
        pytest.param({"timestamp": "2030-05-05T07:00:00Z"}, None, "2030-05-05T07:00:00Z", id="timestamp-alone"),
        pytest.param(
            {"originalTimestamp": "2030-05-05T07:00:00Z", "sentAt": "2030-05-05T07:59:59Z"},
            None,
            "2030-05-05T07:00:00Z",
            id="device-clock-right-transit-kept",
        ),
        pytest.param(
            {"timestamp": "2030-05-05T09:00:00Z", "sentAt": "2030-05-05T10:00:00Z"},
            None,
            "2030-05-05T07:00:00Z",
            id="client-timestamp-two-hours-ahead-corrected",
        ),
        pytest.param(
            {"originalTimestamp": "2030-05-05T09:00:00Z"},
            "2030-05-05T10:00:00Z",
            "2030-05-05T07:00:00Z",
            id="batch-sent-at-corrects",
        ),
        pytest.param(
            {"timestamp": "2000-01-01T00:00:00Z", "originalTimestamp": "2030-05-05T09:00:00Z"},
            "2030-05-05T10:00:00Z",
            "2030-05-05T07:00:00Z",
            id="original-timestamp-wins-without-its-own-sent-at",
        ),
        pytest.param(
            {
                "timestamp": "2029-01-01T12:00:00Z",
                "originalTimestamp": "2029-01-01T13:00:00Z",
                "sentAt": "2029-01-01T13:00:02Z",
            },
            None,
            "2029-01-01T12:00:00Z",
            id="replayed-keeps-its-original-time",
        ),
        pytest.param(
            {
                "timestamp": "2029-01-01T12:00:00Z",
                "originalTimestamp": "2029-01-01T12:00:00Z",
                "sentAt": "2029-01-01T12:00:01Z",
            },
            "2030-05-05T07:59:59Z",
            "2029-01-01T12:00:00Z",
            id="replayed-in-a-fresh-batch",
        ),
    ],
)
def test_the_timestamp_rule(post, source, monkeypatch, fields, batch_sent_at, expected):
    """docs/delivery.md, "Timestamps": the time a call gets, and so its event's created_at in Intercom."""
    _, key = source
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    body = {"batch": [message(messageId="m", **fields)]}
    if batch_sent_at:
        body["sentAt"] = batch_sent_at
    assert post("/v1/batch", body, key=key).status_code == 200
    call = Call.objects.get()
    assert call.received_at == NOW
    assert call.timestamp == (NOW if expected == "arrival" else dt.datetime.fromisoformat(expected))
    assert map_call(call.payload, user_id="u").event["created_at"] == int(call.timestamp.timestamp())

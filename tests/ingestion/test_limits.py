"""Size limits at their edges (test_bad_input.py has the basic cases): gzip that expands past a
limit however it is packed, and one over-size message inside an otherwise good batch."""

import gzip
import json
import zlib

import pytest

from forwarding.ingestion.decoding import hard_limit
from forwarding.models import Call, RejectedMessage
from tests.ingestion.conftest import message

pytestmark = pytest.mark.django_db


def batch_of(size):
    """A batch body of exactly `size` bytes of JSON."""
    body = json.dumps({"batch": [message()], "padding": ""}).encode()
    return json.dumps({"batch": [message()], "padding": "x" * (size - len(body))}).encode()


def test_a_gzip_bomb_split_into_many_members_stops_at_the_cap(post, source):
    # Each member is small when inflated; together they are far past the cap.
    _, key = source
    member = gzip.compress(b" " * (1024 * 1024))
    data = gzip.compress(b'{"batch": []') + member * 8
    response = post("/v1/batch", data, key=key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["code"] == "request_too_large"
    assert Call.objects.count() == 0


def test_gzip_expanding_past_the_request_limit_is_refused_unless_rudderstack_sent_it(post, source, settings):
    _, key = source
    data = batch_of(settings.RELAY_MAX_REQUEST_BYTES + 1)
    response = post("/v1/batch", gzip.compress(data), key=key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["code"] == "request_too_large"
    assert str(settings.RELAY_MAX_REQUEST_BYTES) in response.json()["message"]
    assert Call.objects.count() == 0


def test_a_body_exactly_at_the_request_limit_is_accepted(post, source, settings):
    _, key = source
    data = batch_of(settings.RELAY_MAX_REQUEST_BYTES)
    assert len(data) == settings.RELAY_MAX_REQUEST_BYTES
    for body, headers in ((data, {}), (gzip.compress(data), {"HTTP_CONTENT_ENCODING": "gzip"})):
        response = post("/v1/batch", body, key=key, **headers)
        assert response.status_code == 200, response.content


def test_the_hard_cap_holds_for_gzip_from_rudderstack_too(post, source):
    _, key = source
    batch = [message(messageId=f"m{i}", channel="server", properties={"blob": "x" * 20_000}) for i in range(300)]
    data = json.dumps({"batch": batch}).encode()
    assert len(data) > hard_limit()
    response = post("/v1/batch", zlib.compress(data, wbits=16 + zlib.MAX_WBITS), key=key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["code"] == "request_too_large"
    assert Call.objects.count() == 0


def test_one_oversize_message_in_a_batch_is_rejected_and_the_others_stored(post, source, settings):
    _, key = source
    batch = [
        message(messageId="small-1"),
        message(messageId="big", properties={"blob": "x" * settings.RELAY_MAX_MESSAGE_BYTES}),
        message(messageId="small-2"),
    ]
    response = post("/v1/batch", {"batch": batch}, key=key)
    assert response.status_code == 200
    assert sorted(Call.objects.values_list("message_id", flat=True)) == ["small-1", "small-2"]
    rejected = RejectedMessage.objects.get()
    assert (rejected.message_id, rejected.code) == ("big", "message_too_large")
    # The excerpt of a rejected message is cut: an over-size message is not stored whole anywhere.
    assert len(rejected.excerpt) <= 2000


def test_a_message_exactly_at_the_message_limit_is_accepted(post, source, settings):
    _, key = source
    body = message(messageId="edge", properties={"blob": ""})
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    body["properties"]["blob"] = "x" * (settings.RELAY_MAX_MESSAGE_BYTES - size)
    assert post("/v1/track", body, key=key).status_code == 200
    body["messageId"], body["properties"]["blob"] = "over", body["properties"]["blob"] + "x"
    response = post("/v1/track", body, key=key)
    assert (response.status_code, response.json()["code"]) == (400, "message_too_large")

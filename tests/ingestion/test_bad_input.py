"""Bad input: a clear 4xx JSON error, and nothing stored."""

import gzip
import json
import socket
import zlib
from urllib.parse import urlsplit

import pytest

from forwarding.models import Call, Delivery, RejectedMessage, Source
from tests.ingestion.conftest import basic, message

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def assert_nothing_stored():
    assert Call.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_it_refuses_a_request_without_a_key(post):
    response = post("/v1/batch", {"batch": [message()]})
    assert_error(response, 401, "invalid_write_key")
    assert_nothing_stored()
    assert RejectedMessage.objects.count() == 0


def test_it_refuses_a_wrong_key(post, source):
    response = post("/v1/batch", {"batch": [message()]}, key="wk_wrong-key-wrong-key")
    assert_error(response, 401, "invalid_write_key")
    assert_nothing_stored()


def test_it_refuses_a_wrong_key_in_the_body(post, source):
    response = post("/v1/batch", {"batch": [message()], "writeKey": "wk_wrong-key-wrong-key"})
    assert_error(response, 401, "invalid_write_key")
    assert_nothing_stored()


def test_it_refuses_the_key_of_an_inactive_source(post, source):
    src, key = source
    Source.objects.filter(pk=src.pk).update(is_active=False)
    response = post("/v1/batch", {"batch": [message()]}, key=key)
    assert_error(response, 401, "invalid_write_key")
    assert_nothing_stored()


def test_it_refuses_a_malformed_authorization_header(post, source):
    response = post("/v1/batch", {"batch": [message()]}, HTTP_AUTHORIZATION="Basic %%%not-base64")
    assert_error(response, 401, "invalid_write_key")
    assert_nothing_stored()


def test_it_refuses_malformed_json(post, source):
    _, key = source
    response = post("/v1/batch", b'{"batch": [', key=key)
    assert_error(response, 400, "invalid_request")
    assert_nothing_stored()


def test_it_refuses_a_body_that_is_not_an_object(post, source):
    _, key = source
    response = post("/v1/batch", b"[1, 2, 3]", key=key)
    body = assert_error(response, 400, "invalid_request")
    assert "object" in body["message"]
    assert_nothing_stored()


def test_it_refuses_an_empty_body(post, source):
    _, key = source
    assert_error(post("/v1/track", b"", key=key), 400, "invalid_request")
    assert_nothing_stored()


def test_it_refuses_nan_which_is_not_json(post, source):
    _, key = source
    response = post("/v1/track", b'{"type": "track", "userId": "u", "event": "e", "properties": {"x": NaN}}', key=key)
    assert_error(response, 400, "invalid_request")
    assert_nothing_stored()


def test_it_refuses_json_nested_too_deeply(post, source):
    _, key = source
    response = post("/v1/track", b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", key=key)
    assert_error(response, 400, "invalid_request")
    assert_nothing_stored()


def test_it_refuses_gzip_that_is_not_gzip(post, source):
    _, key = source
    response = post("/v1/batch", b'{"batch": []}', key=key, HTTP_CONTENT_ENCODING="gzip")
    body = assert_error(response, 400, "invalid_request")
    assert "gzip" in body["message"]
    assert_nothing_stored()


def test_it_refuses_truncated_gzip(post, source):
    _, key = source
    data = gzip.compress(json.dumps({"batch": [message()]}).encode())[:-12]
    response = post("/v1/batch", data, key=key, HTTP_CONTENT_ENCODING="gzip")
    assert_error(response, 400, "invalid_request")
    assert_nothing_stored()


def test_it_refuses_an_unsupported_content_encoding(post, source):
    _, key = source
    data = zlib.compress(json.dumps({"batch": [message()]}).encode())
    response = post("/v1/batch", data, key=key, HTTP_CONTENT_ENCODING="br")
    assert_error(response, 400, "invalid_request")
    assert_nothing_stored()


def test_it_stops_a_gzip_bomb_at_the_cap(post, source, settings):
    _, key = source
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"0" * (1024 * 1024)
    data = bomb.compress(b'{"batch": [], "padding": "') + b"".join(bomb.compress(zeros) for _ in range(50))
    data += bomb.flush()
    assert len(data) < 100_000  # 50 MB of zeros on the wire as a few KB
    response = post("/v1/batch", data, key=key, HTTP_CONTENT_ENCODING="gzip")
    body = assert_error(response, 400, "request_too_large")
    assert "decompressed" in body["message"]
    assert_nothing_stored()


def test_it_refuses_an_oversize_message(post, source):
    _, key = source
    response = post("/v1/track", message(properties={"blob": "x" * 33 * 1024}), key=key)
    assert_error(response, 400, "message_too_large")
    assert_nothing_stored()
    assert RejectedMessage.objects.get().code == "message_too_large"


def test_it_refuses_an_oversize_batch(post, source):
    _, key = source
    batch = [message(messageId=f"m{i}", properties={"blob": "x" * 20_000}) for i in range(30)]
    response = post("/v1/batch", {"batch": batch}, key=key)
    body = assert_error(response, 400, "request_too_large")
    assert "512000" in body["message"]
    assert_nothing_stored()
    assert RejectedMessage.objects.count() == 0


def test_it_refuses_a_body_over_the_hard_cap_without_reading_it(post, source):
    _, key = source
    response = post("/v1/batch", b" " * (5 * 1024 * 1024), key=key)
    assert_error(response, 400, "request_too_large")
    assert_nothing_stored()


def test_it_accepts_a_large_batch_from_a_rudderstack_client(post, source):
    _, key = source
    batch = [message(messageId=f"m{i}", channel="server", properties={"blob": "x" * 20_000}) for i in range(30)]
    response = post("/v1/batch", {"batch": batch}, key=key, gzipped=True)
    assert response.status_code == 200, response.content
    assert Call.objects.count() == 30


def test_it_refuses_a_batch_that_is_not_a_list(post, source):
    _, key = source
    assert_error(post("/v1/batch", {"batch": {"type": "track"}}, key=key), 400, "invalid_request")
    assert_nothing_stored()


def test_it_refuses_a_message_without_user_id_and_anonymous_id(post, source):
    _, key = source
    response = post("/v1/track", message(userId=None, anonymousId=""), key=key)
    assert_error(response, 400, "no_user_anon_id")
    assert_nothing_stored()
    rejected = RejectedMessage.objects.get()
    assert rejected.code == "no_user_anon_id"
    assert rejected.message_id == "m-track"
    assert rejected.source == source[0]


def test_it_refuses_a_track_without_event(post, source):
    _, key = source
    response = post("/v1/track", message(event=""), key=key)
    assert_error(response, 400, "missing_event")
    assert_nothing_stored()


def test_it_refuses_a_group_without_group_id(post, source):
    _, key = source
    response = post("/v1/group", message("group", groupId=None), key=key)
    assert_error(response, 400, "missing_group_id")
    assert_nothing_stored()


def test_it_refuses_an_alias_without_previous_id(post, source):
    _, key = source
    response = post("/v1/alias", message("alias", previousId=""), key=key)
    assert_error(response, 400, "missing_alias_ids")
    assert_nothing_stored()


def test_it_refuses_an_unknown_type(post, source):
    _, key = source
    response = post("/v1/batch", {"batch": [message("purchase")]}, key=key)
    assert response.status_code == 200
    assert_nothing_stored()
    rejected = RejectedMessage.objects.get()
    assert rejected.code == "invalid_type"
    assert "purchase" in rejected.reason


def test_it_refuses_a_type_that_contradicts_the_route(post, source):
    _, key = source
    assert_error(post("/v1/track", message("identify"), key=key), 400, "invalid_type")
    assert_nothing_stored()


def test_it_refuses_an_over_long_message_id(post, source):
    _, key = source
    assert_error(post("/v1/track", message(messageId="m" * 101), key=key), 400, "invalid_message_id")
    assert_nothing_stored()


def test_it_refuses_an_unparseable_timestamp(post, source):
    _, key = source
    response = post("/v1/track", message(timestamp="yesterday"), key=key)
    body = assert_error(response, 400, "invalid_timestamp")
    assert "yesterday" in body["message"]
    assert_nothing_stored()


def test_it_refuses_a_nul_character_which_postgresql_cannot_store(post, source):
    _, key = source
    response = post("/v1/track", message(properties={"note": "a\u0000b"}), key=key)
    assert_error(response, 400, "invalid_message")
    assert_nothing_stored()


def test_it_refuses_text_that_is_not_unicode(post, source):
    _, key = source
    response = post("/v1/track", b'{"type": "track", "userId": "\\ud800", "event": "e"}', key=key)
    assert_error(response, 400, "invalid_message")
    assert_nothing_stored()


def test_it_keeps_the_good_messages_of_a_batch_and_records_the_bad_one(post, source):
    src, key = source
    batch = [
        message(messageId="good-1"),
        message(messageId="bad-1", event=None),
        message("identify", messageId="good-2", traits={"email": "ada@example.com"}),
        "not a message",
    ]
    response = post("/v1/batch", {"batch": batch}, key=key)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert sorted(Call.objects.values_list("message_id", flat=True)) == ["good-1", "good-2"]
    assert Delivery.objects.count() == 2
    rejected = {r.message_id: r for r in RejectedMessage.objects.all()}
    assert rejected["bad-1"].code == "missing_event"
    assert rejected["bad-1"].source == src
    assert json.loads(rejected["bad-1"].excerpt)["messageId"] == "bad-1"
    assert rejected[""].code == "invalid_message"


def test_it_refuses_a_batch_over_the_message_limit_whole(post, source, settings):
    _, key = source
    settings.RELAY_MAX_BATCH_MESSAGES = 3
    batch = [message(messageId=f"m{i}") for i in range(4)]
    body = assert_error(post("/v1/batch", {"batch": batch}, key=key), 400, "too_many_messages")
    assert "4 messages" in body["message"] and "3" in body["message"]
    assert_nothing_stored()
    assert RejectedMessage.objects.count() == 0
    # At the limit, the batch is taken.
    assert post("/v1/batch", {"batch": batch[:3]}, key=key).status_code == 200
    assert Call.objects.count() == 3


def test_it_never_stores_the_write_key_of_a_rejected_message(post, source):
    _, key = source
    post("/v1/track", {**message(event=""), "writeKey": key})
    rejected = RejectedMessage.objects.get()
    assert key not in rejected.excerpt


def test_it_records_a_rejected_message_whatever_text_it_holds(post, source):
    _, key = source
    batch = [{"type": "track", "messageId": "nul\u0000id", "userId": "u"}]
    assert post("/v1/batch", {"batch": batch}, key=key).status_code == 200
    rejected = RejectedMessage.objects.get()
    assert rejected.code == "missing_event"
    assert "\x00" not in rejected.message_id


def raw_request(url, head, body):
    """Send bytes as they are over a socket, stop sending, and read the whole answer: (status, headers, body)."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)  # a client that stops sending, whatever it declared
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_text, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_text.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, content


LIES = {
    "longer than the body": b"Content-Length: 400",
    "shorter than the body": b"Content-Length: 10",
    "not a number": b"Content-Length: twelve",
    "negative": b"Content-Length: -5",
    "over the hard cap": b"Content-Length: 99999999",
    "junk encoding": b"Content-Length: 60\r\nContent-Encoding: gzip, br, \xff",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lie", LIES, ids=list(LIES))
def test_a_live_server_answers_json_to_lying_headers(live_server, lie):
    _, key = Source.create_with_key("Raw")
    body = b'{"type": "track", "userId": "u", "event": "Caf\xe9"}'  # Latin-1: not UTF-8 either
    head = b"POST /v1/track?q=%ff%00\xff HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    head += b"Authorization: " + basic(key).encode() + b"\r\n" + LIES[lie]
    status, headers, content = raw_request(live_server.url, head, body)
    assert status == 400, content[:300]
    assert headers["Content-Type"] == "application/json"
    assert set(json.loads(content)) == {"code", "message"}
    assert_nothing_stored()

"""One request cannot flood the database: a batch over the message limit is refused before anything
is stored, and rejected messages are stored one by one only up to RELAY_MAX_REJECTED_PER_MINUTE per
write key and minute, the rest counted in one summary row (concurrent requests: test_concurrency)."""

import gzip
import os
import time
from collections import Counter, defaultdict

import pytest
from django.db import connection

from forwarding.ingestion.rejections import SUMMARY_CODE, summary_counts
from forwarding.models import Call, Delivery, RejectedMessage, Source
from tests.ingestion.conftest import message

# Answered within this, on a slow CI machine too (a few tens of ms here; it was 11 s).
QUICKLY = 2.0
# What one refused request may add to SQLite's file and WAL: the rate-limit counter's row and
# index pages (the flood once added about 20 MB per request).
SMALL_GROWTH = 64 * 1024


def items(count, item=b"{}"):
    """A batch body of `count` copies of `item`, as compact as JSON gets."""
    return b'{"batch":[' + b",".join([item] * count) + b"]}"


def database_bytes():
    """SQLite's file and WAL on disk; None on other backends (their row counts are checked instead)."""
    if connection.vendor != "sqlite":
        return None
    name = connection.settings_dict["NAME"]
    return sum(os.path.getsize(path) for path in (name, f"{name}-wal") if os.path.exists(path))


def assert_nothing_stored():
    assert (Call.objects.count(), Delivery.objects.count(), RejectedMessage.objects.count()) == (0, 0, 0)


def per_minute(source):
    """{minute: (rows stored one by one, rejections counted in summaries, summary rows)} of `source`."""
    minutes = defaultdict(lambda: [0, 0, 0])
    for row in RejectedMessage.objects.filter(source=source):
        counts = minutes[row.received_at.replace(second=0, microsecond=0)]
        if row.code == SUMMARY_CODE:
            counts[1] += summary_counts(row).total()
            counts[2] += 1
        else:
            counts[0] += 1
    return {minute: tuple(counts) for minute, counts in minutes.items()}


FLOODS = {
    # The reported flood's 510 KB: 170,000 empty objects fit under the 512,000-byte request limit.
    "170,000 {} in 510 KB": (items(170_000), {}, "too_many_messages"),
    "250,000 messages in 500 KB": (items(250_000, b"0"), {}, "too_many_messages"),
    # 250,000 empty objects take 750 KB: over the request limit, refused before any message is counted.
    "250,000 {} in 750 KB": (items(250_000), {}, "request_too_large"),
    # RudderStack clients may send 4 MB: the most messages one request can carry, gzipped to a few KB.
    "250,000 RudderStack messages, 4 MB gzipped": (
        gzip.compress(items(250_000, b'{"channel":"x"}')),
        {"HTTP_CONTENT_ENCODING": "gzip"},
        "too_many_messages",
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("flood", FLOODS, ids=list(FLOODS))
def test_a_flood_batch_is_refused_at_once_and_stores_nothing(post, source, flood):
    _, key = source
    data, headers, code = FLOODS[flood]
    before = database_bytes()
    started = time.monotonic()
    response = post("/v1/batch", data, key=key, **headers)
    elapsed = time.monotonic() - started
    assert (response.status_code, response.json()["code"]) == (400, code), response.content[:300]
    assert elapsed < QUICKLY
    assert_nothing_stored()
    if before is not None:
        assert database_bytes() - before < SMALL_GROWTH


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_invalid_messages_at_the_limit_costs_a_bounded_number_of_rows(post, source, settings):
    src, key = source
    assert settings.RELAY_MAX_REJECTED_PER_MINUTE == 100  # the default
    before = database_bytes()
    response = post("/v1/batch", items(settings.RELAY_MAX_BATCH_MESSAGES), key=key)
    assert response.json() == {"success": True}  # as Segment answers a batch of invalid messages
    # One request, one minute: 100 rows stored one by one, one row counting the other 2,400.
    assert list(per_minute(src).values()) == [(100, 2400, 1)]
    summary = RejectedMessage.objects.get(code=SUMMARY_CODE)
    assert summary_counts(summary) == Counter({"invalid_type": 2400})
    assert "2400 more messages" in summary.reason and "invalid_type 2400" in summary.reason
    assert summary.source == src and summary.message_id == ""
    if before is not None:
        assert database_bytes() - before < 4 * SMALL_GROWTH


@pytest.mark.django_db
def test_the_cap_holds_across_requests_and_counts_every_rejection(post, source, settings):
    src, key = source
    settings.RELAY_MAX_REJECTED_PER_MINUTE = 5
    batch = [message(messageId=f"bad-{n}", event="") for n in range(4)] + [message(messageId="good")]
    for _ in range(3):
        assert post("/v1/batch", {"batch": batch}, key=key).status_code == 200
    assert post("/v1/track", message(messageId="single", userId=None), key=key).status_code == 400
    minutes = per_minute(src)
    # 13 rejections: 5 stored one by one, 8 counted (a minute may have turned between requests).
    assert sum(stored + counted for stored, counted, _ in minutes.values()) == 13
    for stored, _, summaries in minutes.values():
        assert stored <= 5 and summaries <= 1
    assert Call.objects.count() == 1  # "good", once: the others were retries of it


@pytest.mark.django_db
def test_each_write_key_has_a_cap_of_its_own(post, source, settings):
    settings.RELAY_MAX_REJECTED_PER_MINUTE = 2
    other, other_key = Source.create_with_key("Other")
    for key in (source[1], other_key):
        assert post("/v1/batch", {"batch": [message(event="")] * 3}, key=key).status_code == 200
    for src in (source[0], other):
        assert list(per_minute(src).values()) == [(2, 1, 1)]


@pytest.mark.django_db
def test_a_cap_of_zero_only_counts(post, source, settings):
    src, key = source
    settings.RELAY_MAX_REJECTED_PER_MINUTE = 0
    response = post("/v1/track", message(event=""), key=key)
    assert (response.status_code, response.json()["code"]) == (400, "missing_event")
    summary = RejectedMessage.objects.get()
    assert (summary.code, summary_counts(summary)) == (SUMMARY_CODE, Counter({"missing_event": 1}))

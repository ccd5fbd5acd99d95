"""The per-write-key rate limit: a 429 with Retry-After past RELAY_INGEST_RATE_LIMIT, counted
where every web process sees it (the database, or Redis with REDIS_URL), never in memory."""

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.env import envrate
from forwarding.ingestion import key_limit, storage, validation
from forwarding.ingestion.errors import IngestionError
from forwarding.models import Call, Delivery, IngestWindow, RejectedMessage, Source
from tests.ingestion.conftest import basic, message
from tests.processes import ROOT, relay_env, wait_until

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def redis_reachable():
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


BACKENDS = [
    pytest.param("", id="database"),
    pytest.param(
        REDIS_URL, id="redis", marks=pytest.mark.skipif(not redis_reachable(), reason=f"no Redis at {REDIS_URL}")
    ),
]


def within_one_window(seconds=3600, margin=20):
    """Wait, if need be, so that the next `margin` seconds fall in one fixed window."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left)


@pytest.fixture(params=BACKENDS)
def limited(request, settings):
    """Three requests per hour per key, counted in the backend of the parameter."""
    settings.RELAY_INGEST_RATE_LIMIT = (3, 3600)
    settings.REDIS_URL = request.param
    within_one_window()
    return request.param


def at(seconds):
    """A moment `seconds` into a fixed one-hour window."""
    return dt.datetime(2026, 5, 4, 3, 0, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


@pytest.mark.django_db
def test_it_answers_429_with_retry_after_once_a_key_is_over_its_limit(post, source, limited):
    src, key = source
    for index in range(3):
        assert post("/v1/track", message(messageId=f"m{index}"), key=key).status_code == 200
    response = post("/v1/track", message(messageId="over"), key=key, HTTP_ORIGIN="https://shop.example.com")
    assert response.status_code == 429
    assert response.json() == {"code": "rate_limited", "message": response.json()["message"]}
    assert "3 requests in 3600 s" in response.json()["message"]
    assert 1 <= int(response["Retry-After"]) <= 3600
    # A browser client may read the wait.
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in response["Access-Control-Expose-Headers"]
    assert sorted(Call.objects.values_list("message_id", flat=True)) == ["m0", "m1", "m2"]
    assert not RejectedMessage.objects.exists()


@pytest.mark.django_db
def test_it_counts_each_write_key_on_its_own_and_a_key_in_the_body_too(post, source, limited):
    _, key = source
    _, other = Source.create_with_key("Backend")
    for index in range(3):
        assert post("/v1/track", {**message(messageId=f"a{index}"), "writeKey": key}).status_code == 200
    assert post("/v1/track", {**message(messageId="a3"), "writeKey": key}).status_code == 429
    assert post("/v1/batch", {"batch": [message(messageId="b0")]}, key=other).status_code == 200


@pytest.mark.django_db
def test_it_counts_no_request_with_a_wrong_key(post, source, limited):
    _, key = source
    for _ in range(5):
        assert post("/v1/track", message(), key="wk_not-a-key-not-a-key").status_code == 401
    assert post("/v1/track", message(), key=key).status_code == 200


@pytest.mark.django_db
def test_it_lets_a_key_through_again_in_the_next_window(source, limited):
    src, _ = source
    for second in (0, 10, 3599):
        key_limit.take(src, now=at(second))
    with pytest.raises(IngestionError) as refused:
        key_limit.take(src, now=at(3599.5))
    assert (refused.value.status, refused.value.code) == (429, "rate_limited")
    assert refused.value.headers == {"Retry-After": "1"}
    key_limit.take(src, now=at(3600))
    if not limited:
        # The database keeps one counter per source: the past window's row is gone.
        assert list(IngestWindow.objects.values_list("started_at", "requests")) == [(at(3600), 1)]


@pytest.mark.django_db
def test_it_says_how_long_to_wait(source, limited):
    src, _ = source
    for _ in range(3):
        key_limit.take(src, now=at(12.2))
    with pytest.raises(IngestionError) as refused:
        key_limit.take(src, now=at(12.2))
    assert refused.value.headers == {"Retry-After": "3588"}


@pytest.mark.django_db
def test_a_request_answered_400_still_counts(post, source, limited):
    _, key = source
    assert post("/v1/track", b"{not json", key=key).status_code == 400
    assert post("/v1/track", {"type": "track", "userId": "u"}, key=key).status_code == 400  # no event
    assert post("/v1/track", message(messageId="m0"), key=key).status_code == 200
    assert post("/v1/track", message(messageId="m1"), key=key).status_code == 429
    assert list(Call.objects.values_list("message_id", flat=True)) == ["m0"]
    if not limited:
        assert IngestWindow.objects.get().requests == 3


@pytest.mark.django_db
def test_a_window_that_fills_while_the_body_is_read_refuses_and_stores_nothing(source, limited):
    src, _ = source
    now = timezone.now()
    admission = key_limit.admit(src)
    for _ in range(3):  # other requests of the same key, meanwhile
        with contextlib.suppress(IngestionError):
            key_limit.take(src)
    accepted = validation.single_message(message(messageId="late"), "track", received_at=now, ip="")
    if limited or connection.vendor != "sqlite":
        assert not admission.pending  # counted at once, before the others
        storage.store(src, [accepted], [], received_at=now, admission=admission)
        assert Call.objects.count() == 1
        return
    with pytest.raises(IngestionError) as refused:
        storage.store(src, [accepted], [], received_at=now, admission=admission)
    assert (refused.value.status, refused.value.code) == (429, "rate_limited")
    assert not Call.objects.exists() and not Delivery.objects.exists()
    assert IngestWindow.objects.get().requests == 3


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_request_is_counted_in_the_transaction_that_stores_it(post, source, settings):
    """SQLite has one write lock: a count committed on its own took it twice per request."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL locks rows: the count commits on its own there, and holds no lock meanwhile")
    settings.RELAY_INGEST_RATE_LIMIT = (100, 3600)
    settings.REDIS_URL = ""
    within_one_window()
    _, key = source
    assert post("/v1/track", message(messageId="first"), key=key).status_code == 200  # the window exists
    with CaptureQueriesContext(connection) as captured:
        assert post("/v1/track", message(messageId="second"), key=key).status_code == 200
    statements = [query["sql"].split()[0].upper() for query in captured]
    assert statements.count("BEGIN") == 1 and statements.count("COMMIT") == 1
    inside = statements[statements.index("BEGIN") : statements.index("COMMIT")]
    writes = [verb for verb in statements if verb in ("INSERT", "UPDATE", "DELETE")]
    assert writes and writes == [verb for verb in inside if verb in ("INSERT", "UPDATE", "DELETE")]
    assert IngestWindow.objects.get().requests == 2


@pytest.mark.django_db
def test_it_counts_in_the_database_without_redis(post, source, settings):
    settings.RELAY_INGEST_RATE_LIMIT = (100, 3600)
    settings.REDIS_URL = ""
    within_one_window()
    src, key = source
    for index in range(4):
        post("/v1/track", message(messageId=f"m{index}"), key=key)
    window = IngestWindow.objects.get()
    assert (window.source, window.requests) == (src, 4)
    assert window.started_at.timestamp() % 3600 == 0


@pytest.mark.django_db
def test_it_counts_in_the_database_while_redis_is_unreachable(post, source, settings, caplog):
    settings.RELAY_INGEST_RATE_LIMIT = (2, 3600)
    settings.REDIS_URL = UNREACHABLE_REDIS
    within_one_window()
    key_limit._last_redis_warning = 0.0
    _, key = source
    with caplog.at_level(logging.WARNING, logger="forwarding.ingestion.key_limit"):
        statuses = [post("/v1/track", message(messageId=f"m{index}"), key=key).status_code for index in range(3)]
    assert statuses == [200, 200, 429]
    assert IngestWindow.objects.get().requests == 2
    # Said once, not once per request.
    assert [record.message for record in caplog.records].count(caplog.records[0].message) == 1
    assert "Redis unavailable" in caplog.records[0].message


@pytest.mark.django_db
def test_it_is_off_when_set_to_off(post, source, settings):
    settings.RELAY_INGEST_RATE_LIMIT = None
    _, key = source
    for index in range(5):
        assert post("/v1/track", message(messageId=f"m{index}"), key=key).status_code == 200
    assert not IngestWindow.objects.exists()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2000/10s", (2000, 10)),
        ("100/m", (100, 60)),
        ("5000 / 1h", (5000, 3600)),
        ("50/30", (50, 30)),
        ("off", None),
        ("0", None),
        ("", None),
    ],
)
def test_it_reads_the_rate_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("RELAY_INGEST_RATE_LIMIT", text)
    assert envrate("RELAY_INGEST_RATE_LIMIT", "2000/10s") == expected


def test_it_is_on_and_generous_by_default(monkeypatch):
    monkeypatch.delenv("RELAY_INGEST_RATE_LIMIT", raising=False)
    assert envrate("RELAY_INGEST_RATE_LIMIT", "2000/10s") == (2000, 10)


@pytest.mark.parametrize("text", ["2000", "2000/", "lots/10s", "10/0s", "0/10s", "10/fortnight", "-5/10s"])
def test_it_refuses_a_rate_it_cannot_read(monkeypatch, text):
    monkeypatch.setenv("RELAY_INGEST_RATE_LIMIT", text)
    with pytest.raises(ImproperlyConfigured, match="RELAY_INGEST_RATE_LIMIT"):
        envrate("RELAY_INGEST_RATE_LIMIT", "2000/10s")


# --- several web processes ----------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web(tmp_path, request):
    """gunicorn with two worker processes on the test database: start(redis_url) -> base URL."""
    started = []

    def start(redis_url):
        port = free_port()
        env = relay_env(RELAY_INGEST_RATE_LIMIT="10/1h", REDIS_URL=redis_url, DJANGO_ALLOWED_HOSTS="127.0.0.1")
        command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"]
        log = open(tmp_path / "gunicorn.log", "a")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append((process, log))
        url = f"http://127.0.0.1:{port}"

        def healthy():
            try:
                return requests.get(f"{url}/health", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 30, message="gunicorn to answer /health")
        return url

    yield start
    for process, log in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis_url", BACKENDS)
def test_every_web_process_counts_against_the_same_limit(web, client, settings, redis_url):
    settings.RELAY_INGEST_RATE_LIMIT = (10, 3600)
    settings.REDIS_URL = redis_url
    src, key = Source.create_with_key("Website")
    url = web(redis_url)
    within_one_window()
    # This test process takes four of the ten first...
    for index in range(4):
        response = client.post(
            "/v1/track",
            message(messageId=f"here-{index}"),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic(key),
        )
        assert response.status_code == 200
    # ...then twelve requests at once over two gunicorn workers get the six left between them.

    def send(index):
        body = message(messageId=f"there-{index}")
        return requests.post(f"{url}/v1/track", json=body, headers={"Authorization": basic(key)}, timeout=30)

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(send, range(12)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 6 + [429] * 6, [response.text for response in responses]
    for response in responses:
        if response.status_code == 429:
            assert response.json()["code"] == "rate_limited"
            assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert Call.objects.filter(source=src).count() == 10
    if not redis_url:
        assert IngestWindow.objects.get(source=src).requests == 10

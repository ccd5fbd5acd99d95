"""Access to the ingestion API: write keys stored hashed and compared in constant time, a revoked
source refused at once, and no route that gives stored data back."""

import hashlib

import pytest
import redis
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver

from forwarding.models import Call, IngestWindow, RejectedMessage, Source
from forwarding.models import calls as calls_module
from tests.ingestion.conftest import basic, message
from tests.ingestion.test_rate_limit import REDIS_URL, redis_reachable
from tests.ingestion.test_sources import assert_key_nowhere_in_database

KEY = "wk_access-test-key-0123456789abcdefghijkl"
# Values stored by the calls below: none may come back from the API.
STORED = ["user-4242", "anon-4242", "Secret Purchase", "ada@example.com", "org-4242", "Hidden Source", "m-4242"]


@pytest.fixture
def populated(db, client):
    """A source with calls, a rejection and a rate-limit counter."""
    source, key = Source.create_with_key("Hidden Source", KEY)
    auth = {"HTTP_AUTHORIZATION": basic(key)}
    batch = [
        message(
            "identify",
            userId="user-4242",
            anonymousId="anon-4242",
            messageId="m-4242",
            traits={"email": "ada@example.com"},
        ),
        message(userId="user-4242", event="Secret Purchase", messageId="m-4243"),
        message("group", userId="user-4242", groupId="org-4242", messageId="m-4244"),
        message(userId="user-4242", event="", messageId="m-4245"),
    ]
    assert client.post("/v1/batch", {"batch": batch}, content_type="application/json", **auth).status_code == 200
    assert (Call.objects.count(), RejectedMessage.objects.count()) == (3, 1)
    return source, key


# --- keys stored hashed, compared in constant time -----------------------------------------------


@pytest.mark.django_db
def test_the_database_holds_only_a_hash_of_each_key_and_a_short_prefix(populated, client, settings):
    source, key = populated
    settings.REDIS_URL = ""  # rate-limit counters in the database too (Redis has its own test)
    # The other places a request leaves rows: the key in the body, the settings document.
    client.post("/v1/track", {**message(messageId="body-key"), "writeKey": key}, content_type="application/json")
    client.get(f"/v1/projects/{key}/settings")
    assert IngestWindow.objects.filter(source=source).exists()
    source.refresh_from_db()
    assert source.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert len(source.key_prefix) == 8 and key.startswith(source.key_prefix)
    assert_key_nowhere_in_database(key)


@pytest.mark.django_db
@pytest.mark.skipif(not redis_reachable(), reason=f"no Redis at {REDIS_URL}")
def test_redis_holds_no_key_either(source, client, settings):
    settings.REDIS_URL = REDIS_URL
    src, key = source
    client.post("/v1/track", message(), content_type="application/json", HTTP_AUTHORIZATION=basic(key))
    names = [name.decode() for name in redis.Redis.from_url(REDIS_URL).scan_iter("relay:ingest-rate:*")]
    assert any(src.key_hash[:24] in name for name in names)
    assert not any(key in name or key[3:] in name for name in names)


@pytest.mark.django_db
def test_a_key_is_looked_up_by_its_hash_and_compared_in_constant_time(source, monkeypatch):
    src, key = source
    compared = []
    real = calls_module.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(calls_module.hmac, "compare_digest", spy)
    with CaptureQueriesContext(connection) as queries:
        assert Source.authenticate(key) == src
    assert compared == [(src.key_hash, src.key_hash)]
    # The key itself never reaches the database, not even in a query.
    assert all(key not in query["sql"] for query in queries.captured_queries)
    assert any(src.key_hash in query["sql"] for query in queries.captured_queries)


# --- a revoked source is refused at once ----------------------------------------------------------


@pytest.mark.django_db
def test_a_revoked_source_is_refused_from_the_next_request_on(source, post, client):
    src, key = source
    assert post("/v1/track", message(messageId="before"), key=key).status_code == 200
    src.is_active = False
    src.save()
    refused = [
        post("/v1/track", message(messageId="header"), key=key),
        post("/v1/batch", {"batch": [message(messageId="body")], "writeKey": key}),
        client.get(f"/v1/projects/{key}/settings"),
    ]
    for response in refused:
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_write_key"
    assert list(Call.objects.values_list("message_id", flat=True)) == ["before"]
    src.is_active = True
    src.save()
    assert post("/v1/track", message(messageId="after"), key=key).status_code == 200


@pytest.mark.slow
def test_a_revoked_source_is_refused_at_once_by_a_running_server(live_server, transactional_db):
    src, key = Source.create_with_key("Website")
    url, auth = f"{live_server.url}/v1/track", {"Authorization": basic(key)}
    assert requests.post(url, json=message(messageId="one"), headers=auth, timeout=10).status_code == 200
    Source.objects.filter(pk=src.pk).update(is_active=False)
    assert requests.post(url, json=message(messageId="two"), headers=auth, timeout=10).status_code == 401
    assert list(Call.objects.values_list("message_id", flat=True)) == ["one"]


# --- no stored data comes back ---------------------------------------------------------------------


def routes(resolver=None, prefix=""):
    """Every URL pattern outside the admin, as text."""
    found = []
    for pattern in (resolver or get_resolver()).url_patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if not text.startswith("admin/"):
                found += routes(pattern, text)
        elif isinstance(pattern, URLPattern):
            found.append(text)
    return found


def test_the_only_routes_outside_the_login_protected_dashboard_are_the_ingestion_api():
    # A new public route must be added here on purpose, after checking what it gives back.
    singles = [f"v1/{name}" for name in ["identify", "track", "page", "screen", "group", "alias"]]
    expected = {
        "health",
        "health/worker",  # status and since when only: no host names, nothing stored
        "api/schema/",
        "v1/batch",
        "v1/import",
        "v1/b",
        *singles,
        *[route[:4] for route in singles],
        "v1/projects/<str:write_key>/settings",
        "^v1/",
        # Websites' libraries: the vendored analytics.js, RudderStack's source configuration (the
        # key's prefix only) and its beacon batch, and their JSON 404s.
        "^sourceConfig/?$",
        "beacon/v1/batch",
        "analytics.js/v1/<str:write_key>/analytics.min.js",
        "analytics-next/bundles/<str:name>",
        r"^(beacon|sourceConfig|analytics\.js|analytics-next)(/|$)",
        "favicon.ico",  # a redirect to the static icon
        "metrics",  # off unless RELAY_METRICS_TOKEN or RELAY_METRICS_ALLOW is set (tests/forwarding/test_metrics.py)
    }
    public = {route for route in routes() if not route.startswith(("static/", "^static/"))}
    # The operator API: every route needs a staff user's token (tests/api).
    assert {route for route in public if not route.startswith("api/v1/")} == expected


@pytest.mark.django_db
def test_no_route_gives_stored_data_back_whatever_the_method(populated, client):
    _, key = populated
    auth = {"HTTP_AUTHORIZATION": basic(key), "HTTP_ORIGIN": "https://shop.example.com"}
    paths = ["/health", "/health/worker", "/api/schema/", "/v1/calls", "/v1/sources", f"/v1/projects/{key}/settings"]
    paths += ["/v1/batch", "/v1/import", "/v1/b", "/v1/track", "/v1/t", "/v1/identify", "/v1/i", "/v1/group"]
    for path in paths:
        for method in ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]:
            body = b'{"batch": [], "type": "track", "userId": "x", "event": "e"}' if method != "GET" else b""
            response = client.generic(method, path, body, content_type="application/json", **auth)
            assert response.status_code < 500, (method, path)
            text = response.content.decode(errors="replace")
            for value in STORED:
                assert value not in text, (method, path, value)


@pytest.mark.django_db
def test_the_settings_document_echoes_the_key_it_was_given_and_nothing_else(populated, client, settings):
    source, key = populated
    settings.RELAY_PUBLIC_URL = "https://events.example.com"
    document = client.get(f"/v1/projects/{key}/settings").json()
    assert document == {
        "integrations": {"Segment.io": {"apiKey": key, "apiHost": "events.example.com/v1", "protocol": "https"}},
        "plan": {},
        "metrics": {"sampleRate": 0},
    }


@pytest.mark.django_db
def test_the_settings_document_is_refused_for_a_revoked_or_unknown_key(populated, client):
    source, key = populated
    assert client.get(f"/v1/projects/{key[:-1]}/settings").status_code == 401
    assert client.get(f"/v1/projects/{source.key_prefix}/settings").status_code == 401
    assert client.get(f"/v1/projects/{source.key_hash}/settings").status_code == 401

"""Websites: analytics.js served by the relay, RudderStack's sourceConfig and beacon routes, the write
key in the query string (and never in a log line), and the snippets the Source admin hands out."""

import gzip
import io
import json
import logging
import re

import pytest
from django.contrib.auth import get_user_model

from config.logfilters import RedactWriteKeys
from forwarding.ingestion import analytics_js
from forwarding.ingestion.snippets import analytics_js_snippet, rudderstack_snippet
from forwarding.models import Call, Source, hash_key
from tests.ingestion.conftest import basic, message

pytestmark = pytest.mark.django_db

VENDORED = analytics_js.VENDORED
CHUNKS = sorted(path.name for path in (VENDORED / "bundles").glob("*.js"))
ORIGIN = "https://shop.example.com"


def assert_cors(response):
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response


def assert_json_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert_cors(response)


# -- analytics.js, self-hosted ------------------------------------------------------------------


def test_it_vendors_a_pinned_analytics_next_with_its_licence():
    assert (VENDORED / "VERSION").read_text().strip() == "1.84.3"
    assert "MIT License" in (VENDORED / "LICENSE.md").read_text()
    assert {"auto-track", "queryString"} <= {name.split(".")[0] for name in CHUNKS}


def test_the_loader_names_every_vendored_chunk_by_its_hash():
    # The webpack runtime in the loader maps chunk names to content hashes: the files must match.
    loader = (VENDORED / "standalone.js").read_text()
    for name in CHUNKS:
        chunk_hash = name.split(".")[-2]
        assert chunk_hash in loader, name


def test_it_serves_the_per_key_loader(client, source):
    _, key = source
    response = client.get(f"/analytics.js/v1/{key}/analytics.min.js", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert "Content-Encoding" not in response
    assert response.content == (VENDORED / "standalone.js").read_bytes()
    assert_cors(response)
    # The same file for any key: the settings document is where the key is checked.
    assert client.get("/analytics.js/v1/wk_someone_else/analytics.min.js").content == response.content


def test_the_loader_is_revalidated_with_its_etag_and_sent_gzipped_when_accepted(client, source):
    _, key = source
    path = f"/analytics.js/v1/{key}/analytics.min.js"
    first = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert first["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in first["Vary"]
    assert gzip.decompress(first.content) == (VENDORED / "standalone.js").read_bytes()
    again = client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert client.get(path, HTTP_ACCEPT_ENCODING="gzip;q=0").get("Content-Encoding") is None


@pytest.mark.parametrize("name", CHUNKS)
def test_it_serves_each_chunk_for_a_year(client, name):
    response = client.get(f"/analytics-next/bundles/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.content == (VENDORED / "bundles" / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/analytics-next/bundles/nothing.bundle.0123456789abcdef0123.js",
        "/analytics-next/bundles/standalone.js",
        "/analytics-next/bundles/..",
        "/analytics-next/bundles/../standalone.js",
        "/analytics-next/bundles/..%2fstandalone.js",
        "/analytics-next/bundles/%2e%2e%2f%2e%2e%2fLICENSE.md",
        "/analytics-next/bundles/..%2f..%2f..%2f..%2fconfig%2fsettings.py",
        "/analytics-next/bundles/",
        "/analytics-next/standalone.js",
        "/analytics-next/VERSION",
        "/analytics.js/v1/wk_key/analytics.classic.js",
        "/analytics.js/v1/wk_key/../../standalone.js",
    ],
)
def test_anything_else_is_a_json_404(client, path):
    response = client.get(path)
    assert_json_error(response, 404, "not_found")
    assert b"function" not in response.content


def test_the_files_are_read_only(client):
    assert client.post(f"/analytics-next/bundles/{CHUNKS[0]}", "x", content_type="text/plain").status_code == 405


# -- RudderStack: sourceConfig ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sourceConfig/", "/sourceConfig"])
def test_source_config_takes_the_key_as_basic_user_name(client, source, path):
    src, key = source
    response = client.get(f"{path}?p=npm&v=3.34.1&build=modern", HTTP_AUTHORIZATION=basic(key), HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200
    assert_cors(response)
    document = response.json()
    assert document["source"]["id"] == f"relay-{src.key_prefix}"
    assert document["source"]["enabled"] is True
    assert document["source"]["destinations"] == []
    assert document["source"]["config"]["statsCollection"]["metrics"]["enabled"] is False
    assert document["source"]["workspaceId"]
    # Nothing stored comes back: not the key, not the source's name.
    assert key not in response.content.decode()
    assert src.name not in response.content.decode()


def test_source_config_takes_the_key_from_the_query_string(client, source):
    src, key = source
    response = client.get("/sourceConfig/", {"writeKey": key, "lockIntegrationsVersion": "true"})
    assert response.status_code == 200
    assert response.json()["source"]["id"] == f"relay-{src.key_prefix}"


@pytest.mark.parametrize(
    "headers,query",
    [({"HTTP_AUTHORIZATION": basic("wk_unknown_unknown_key")}, ""), ({}, "?writeKey=wk_nope_nope_nope"), ({}, "")],
    ids=["unknown-basic", "unknown-query", "none"],
)
def test_source_config_refuses_a_missing_or_unknown_key_with_a_cors_401(client, source, headers, query):
    response = client.get(f"/sourceConfig/{query}", HTTP_ORIGIN=ORIGIN, **headers)
    assert_json_error(response, 401, "invalid_write_key")


def test_source_config_refuses_an_inactive_source(client, source):
    src, key = source
    Source.objects.filter(pk=src.pk).update(is_active=False)
    assert_json_error(client.get("/sourceConfig/", HTTP_AUTHORIZATION=basic(key)), 401, "invalid_write_key")


@pytest.mark.parametrize("path", ["/sourceConfig/?writeKey=x&p=npm", "/beacon/v1/batch?writeKey=x", "/v1/batch"])
def test_the_rudderstack_routes_answer_a_cors_preflight(client, path):
    response = client.options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,anonymousid",
    )
    assert response.status_code == 204
    assert_cors(response)
    assert response["Access-Control-Allow-Headers"] == "authorization,anonymousid"


@pytest.mark.parametrize("path", ["/beacon/v1/track", "/beacon/", "/sourceConfig/extra", "/sourceConfig/v2/"])
def test_other_rudderstack_paths_are_a_cors_json_404(client, path):
    assert_json_error(client.post(path, "{}", content_type="text/plain"), 404, "not_found")
    assert_json_error(client.options(path), 404, "not_found")


def test_a_bad_host_on_source_config_is_json(client, source, settings):
    settings.ALLOWED_HOSTS = ["relay.example.com"]
    _, key = source
    assert_json_error(client.get(f"/sourceConfig/?writeKey={key}", HTTP_HOST="evil.example.com"), 400, "bad_host")


# -- RudderStack: beacons, and the key in the query string -----------------------------------------


def rudder_message(type_="track", **fields):
    return message(type_, channel="web", anonymousId="anon-rs", **fields)


def test_a_beacon_batch_is_stored(post, source):
    _, key = source
    body = json.dumps({"batch": [rudder_message(messageId="b-1"), rudder_message("page", messageId="b-2")]})
    response = post(f"/beacon/v1/batch?writeKey={key}", body.encode(), content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert_cors(response)
    assert sorted(Call.objects.values_list("message_id", "type")) == [("b-1", "track"), ("b-2", "page")]


@pytest.mark.parametrize("query", ["?writeKey=wk_unknown_unknown", ""])
def test_a_beacon_without_a_valid_key_is_refused(post, source, query):
    response = post(f"/beacon/v1/batch{query}", {"batch": [rudder_message()]}, content_type="text/plain")
    assert_json_error(response, 401, "invalid_write_key")
    assert Call.objects.count() == 0


def test_v1_batch_takes_the_key_from_the_query_string_too(post, source):
    _, key = source
    assert post(f"/v1/batch?writeKey={key}", {"batch": [message()]}).status_code == 200
    assert post(f"/v1/track?writeKey={key}", message(messageId="single")).status_code == 200
    assert Call.objects.count() == 2


def test_the_basic_header_wins_over_the_query_string(post, source):
    _, key = source
    assert post("/v1/batch?writeKey=wk_wrong_wrong_wrong", {"batch": [message()]}, key=key).status_code == 200
    response = post(f"/v1/batch?writeKey={key}", {"batch": [message()]}, key="wk_wrong_wrong_wrong")
    assert_json_error(response, 401, "invalid_write_key")


# -- write keys never in a log line ----------------------------------------------------------------


@pytest.fixture
def relay_log():
    """What the relay's own log handler (LOGGING's stderr, with its filters) writes, as text."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactWriteKeys) for f in h.filters)]
    assert handlers, "LOGGING's handler has no RedactWriteKeys filter"
    stream = io.StringIO()
    previous = [handler.setStream(stream) for handler in handlers]
    yield stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def test_request_logs_never_show_a_write_key(client, post, source, relay_log, settings):
    _, key = source
    settings.DEBUG = True  # runserver logs its request lines with DEBUG on
    # Django's own 4xx lines name the path: the settings document's holds a key.
    client.get("/v1/projects/wk_unknown_but_secret/settings")
    client.get(f"/analytics.js/v1/{key}/analytics.classic.js")
    post(f"/beacon/v1/batch?writeKey={key}x", {"batch": [rudder_message()]}, content_type="text/plain")
    # runserver's request line (django.server), as its request handler logs it.
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"POST /beacon/v1/batch?writeKey={key}&x=1 HTTP/1.1", "200", "16"
    )
    logging.getLogger("django.server").info('"%s" %s %s', f"GET /sourceConfig/?p=npm&writeKey={key} HTTP/1.1", 200, 9)
    text = relay_log.getvalue()
    assert "Unauthorized: /v1/projects/[redacted]/settings" in text
    assert "Not Found: /analytics.js/v1/[redacted]/analytics.classic.js" in text
    assert '"POST /beacon/v1/batch?writeKey=[redacted]&x=1 HTTP/1.1" 200 16' in text
    assert "/sourceConfig/?p=npm&writeKey=[redacted] HTTP/1.1" in text
    assert key not in text
    assert "wk_unknown_but_secret" not in text


# -- the snippets ----------------------------------------------------------------------------------


def test_the_analytics_js_snippet_is_segments_pointed_at_the_relay():
    snippet = analytics_js_snippet("https://relay.example.com", "wk_abc")
    assert snippet.startswith("<script>\n") and snippet.endswith("\n</script>")
    # @segment/snippet 5.2.1 with host relay.example.com and useHostForBundles, unchanged.
    assert 't.src="https://relay.example.com/analytics.js/v1/" + key + "/analytics.min.js"' in snippet
    assert 'analytics._writeKey="wk_abc";analytics._cdn = "https://relay.example.com";' in snippet
    assert 'analytics.SNIPPET_VERSION="5.2.0";\nanalytics.load("wk_abc");\nanalytics.page();\n}}();' in snippet
    assert "cdn.segment.com" not in snippet
    # A relay on plain HTTP keeps its scheme (analytics.js then relies on _cdn for its chunks).
    assert 't.src="http://127.0.0.1:8000/analytics.js/v1/"' in analytics_js_snippet("http://127.0.0.1:8000", "k")


def test_a_snippet_cannot_end_its_script_whatever_the_key():
    snippet = analytics_js_snippet("https://relay.example.com", 'wk_"</script><script>alert(1)')
    assert snippet.count("</script>") == 1
    assert '"wk_\\"<\\/script><script>alert(1)"' in snippet


def test_the_rudderstack_snippet_loads_the_bundled_sdk_from_the_relay():
    snippet = rudderstack_snippet("https://relay.example.com", "wk_abc")
    assert 'from "@rudderstack/analytics-js/bundled"' in snippet
    assert (
        'rudderAnalytics.load("wk_abc", "https://relay.example.com", { configUrl: "https://relay.example.com" });'
        in snippet
    )


@pytest.fixture
def superuser_client(client):
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def page_text(response):
    assert response.status_code == 200
    return response.content.decode()


def test_a_source_page_shows_the_snippets_with_a_placeholder_and_the_prefix(superuser_client, source, settings):
    src, key = source
    settings.RELAY_PUBLIC_URL = "https://events.example.com"
    text = page_text(superuser_client.get(f"/admin/forwarding/source/{src.pk}/change/"))
    assert 'id="website-snippets"' in text
    assert "https://events.example.com/analytics.js/v1/" in text
    assert "analytics.load(&quot;YOUR_WRITE_KEY&quot;)" in text
    assert "configUrl: &quot;https://events.example.com&quot;" in text
    assert f"starting <code>{src.key_prefix}</code>" in text
    assert key not in text


def test_without_relay_public_url_the_snippets_use_the_requests_host(superuser_client, source, settings):
    src, _ = source
    settings.RELAY_PUBLIC_URL = ""
    text = page_text(superuser_client.get(f"/admin/forwarding/source/{src.pk}/change/", HTTP_HOST="relay.test"))
    assert "http://relay.test/analytics.js/v1/" in text


def test_adding_a_source_shows_its_new_key_once_in_the_snippets(superuser_client, settings):
    settings.RELAY_PUBLIC_URL = "https://events.example.com"
    response = superuser_client.post("/admin/forwarding/source/add/", {"name": "Marketing site", "is_active": "on"})
    text = page_text(response)
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    [key] = set(re.findall(r'<code id="write-key">([^<]+)</code>', text))
    source = Source.objects.get(name="Marketing site")
    assert (source.key_hash, source.key_prefix) == (hash_key(key), key[:8])
    assert Source.authenticate(key) == source
    assert f"analytics.load(&quot;{key}&quot;)" in text
    assert f"rudderAnalytics.load(&quot;{key}&quot;" in text
    # Afterwards, only the placeholder.
    assert key not in page_text(superuser_client.get(f"/admin/forwarding/source/{source.pk}/change/"))


def test_a_viewer_cannot_add_a_source(client, source):
    from tests.dashboard.conftest import make_user

    client.force_login(make_user("vera", "Viewers"))
    assert client.get("/admin/forwarding/source/add/").status_code == 403
    assert client.post("/admin/forwarding/source/add/", {"name": "Nope"}).status_code == 403
    assert Source.objects.count() == 1

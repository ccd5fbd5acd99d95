"""Routes exactly as clients send them: aliases, short forms, CORS, settings, health, no redirects."""

import pytest
from django.db import OperationalError, connection

from forwarding.models import Call
from tests.ingestion.conftest import message

pytestmark = pytest.mark.django_db

BATCH_ROUTES = ["/v1/batch", "/v1/import", "/v1/b"]
MESSAGE_ROUTES = [
    (route, message_type)
    for message_type in ["identify", "track", "page", "screen", "group", "alias"]
    for route in (f"/v1/{message_type}", f"/v1/{message_type[0]}")
]
ALL_ROUTES = BATCH_ROUTES + [route for route, _ in MESSAGE_ROUTES]


@pytest.mark.parametrize("route", BATCH_ROUTES)
def test_it_takes_batches_on_every_batch_route(post, source, route):
    _, key = source
    response = post(route, {"batch": [message(), message("identify")]}, key=key)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert Call.objects.count() == 2


@pytest.mark.parametrize("route,message_type", MESSAGE_ROUTES)
def test_it_takes_single_calls_on_every_route_and_short_form(post, source, route, message_type):
    _, key = source
    body = message(message_type)
    del body["type"]
    response = post(route, body, key=key)
    assert response.status_code == 200, response.content
    assert Call.objects.get().type == message_type


@pytest.mark.parametrize("route", ALL_ROUTES + ["/v1/projects/wk_anything/settings"])
def test_it_answers_a_cors_preflight(client, route):
    response = client.options(
        route,
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )
    assert response.status_code == 204
    assert response.content == b""
    # Any origin, never with credentials: the API needs no cookie (see headers.add_cors_headers).
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    assert response["Access-Control-Allow-Methods"] == "POST, GET, OPTIONS"
    assert response["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert response["Access-Control-Max-Age"] == "600"


def test_it_allows_the_usual_headers_and_any_origin_by_default(client):
    response = client.options("/v1/t")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    for header in ["Authorization", "Content-Type", "Content-Encoding", "X-Retry-Count", "AnonymousId"]:
        assert header in response["Access-Control-Allow-Headers"]


def test_it_sends_cors_headers_on_posts_and_errors(post, source):
    _, key = source
    ok = post("/v1/t", message(), key=key, HTTP_ORIGIN="http://localhost:3000")
    refused = post("/v1/t", message(), HTTP_ORIGIN="http://localhost:3000")
    invalid = post("/v1/t", message(event=""), key=key, HTTP_ORIGIN="http://localhost:3000")
    assert (ok.status_code, refused.status_code, invalid.status_code) == (200, 401, 400)
    for response in (ok, refused, invalid):
        assert response["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response
        # The same answer for every origin: nothing to vary on.
        assert "Origin" not in response.get("Vary", "")


@pytest.mark.parametrize("route", ["/v1/batch/", "/v1/track/", "/v1/unknown"])
def test_it_never_redirects_an_unknown_path(post, source, route):
    _, key = source
    response = post(route, {"batch": [message()]}, key=key)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Call.objects.count() == 0


def test_it_answers_a_get_on_an_ingest_route_with_a_json_405(client):
    response = client.get("/v1/batch")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_it_answers_json_whatever_the_client_accepts(post, source):
    _, key = source
    response = post("/v1/track", message(), key=key, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response.json() == {"success": True}


def test_it_serves_the_analytics_js_settings_document(client, source, settings):
    _, key = source
    settings.RELAY_PUBLIC_URL = ""
    response = client.get(f"/v1/projects/{key}/settings", HTTP_HOST="relay.example.com", HTTP_ORIGIN="https://a.b")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    document = response.json()
    assert document["integrations"]["Segment.io"] == {
        "apiKey": key,
        "apiHost": "relay.example.com/v1",
        "protocol": "http",
    }
    assert document["metrics"]["sampleRate"] == 0


def test_it_takes_the_settings_host_from_relay_public_url(client, source, settings):
    _, key = source
    settings.RELAY_PUBLIC_URL = "https://events.example.com/relay/"
    document = client.get(f"/v1/projects/{key}/settings").json()
    assert document["integrations"]["Segment.io"]["apiHost"] == "events.example.com/relay/v1"
    assert document["integrations"]["Segment.io"]["protocol"] == "https"


def test_it_refuses_settings_for_an_unknown_key(client, source):
    response = client.get("/v1/projects/wk_unknown_key_unknown/settings")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_write_key"


def test_it_reports_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_it_reports_a_database_outage_as_503(client, monkeypatch):
    def broken():
        raise OperationalError("unable to open database file")

    monkeypatch.setattr(connection, "cursor", broken)
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["code"] == "unavailable"

"""A Host the relay does not serve: a JSON 400 (`bad_host`) on every /v1/ route, before anything is
read or stored; the dashboard and /health keep Django's own answer."""

import logging

import pytest

from forwarding.models import Call, RejectedMessage
from tests.ingestion.conftest import basic, message

pytestmark = pytest.mark.django_db

API_REQUESTS = [
    ("post", "/v1/batch"),
    ("post", "/v1/t"),
    ("post", "/v1/identify"),
    ("get", "/v1/projects/wk_anything/settings"),
    ("options", "/v1/batch"),
    ("post", "/v1/no-such-route"),
]


@pytest.fixture
def served_hosts(settings):
    settings.ALLOWED_HOSTS = ["relay.example.com"]


def send(client, method, path, key, host):
    body = '{"batch": [{}]}' if path.endswith("batch") else "{}"
    return client.generic(
        method.upper(),
        path,
        body.encode(),
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_AUTHORIZATION=basic(key),
        HTTP_ORIGIN="https://shop.example.com",
    )


def assert_bad_host(response):
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "bad_host"
    assert "DJANGO_ALLOWED_HOSTS" in body["message"]
    # A browser client can read it too.
    assert response["Access-Control-Allow-Origin"] == "*"
    return body


@pytest.mark.parametrize("method,path", API_REQUESTS)
def test_a_host_outside_allowed_hosts_gets_json_400_on_every_api_route(
    client, source, served_hosts, method, path, caplog
):
    _, key = source
    with caplog.at_level(logging.ERROR, logger="django.security.DisallowedHost"):
        response = send(client, method, path, key, "evil.example.com")
    body = assert_bad_host(response)
    assert "evil.example.com" in body["message"]
    assert [record.name for record in caplog.records] == ["django.security.DisallowedHost"]
    assert (Call.objects.count(), RejectedMessage.objects.count()) == (0, 0)


@pytest.mark.parametrize("host", ["exa mple.com", "bad_host!", "[::1", "relay.example.com:port", "\xff\xfe", ""])
def test_a_malformed_host_gets_json_400_even_when_every_host_is_allowed(client, source, settings, host):
    settings.ALLOWED_HOSTS = ["*"]
    assert_bad_host(send(client, "post", "/v1/batch", source[1], host))


def test_an_allowed_host_is_served(client, source, served_hosts):
    _, key = source
    response = client.post(
        "/v1/track",
        message(),
        content_type="application/json",
        HTTP_HOST="relay.example.com",
        HTTP_AUTHORIZATION=basic(key),
    )
    assert response.json() == {"success": True}
    assert Call.objects.count() == 1


@pytest.mark.parametrize("path", ["/admin/login/", "/health"])
def test_other_paths_keep_djangos_answer(client, served_hosts, path):
    response = client.get(path, HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")

"""The Intercom client over real sockets: answers become Response values, failures become errors
the retry policy reads, and the environment's proxy is used."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from forwarding.delivery import policy
from forwarding.intercom import Client


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with its `answer` and remembers what it was asked."""

    answer = (200, "application/json", b'{"type": "admin"}')
    seen = []

    def do_GET(self):
        self.seen.append((self.command, self.path, dict(self.headers)))
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-RateLimit-Remaining", "99")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client_for(base):
    return Client(base, "secret-token", "2.16", (2, 2))


def test_an_answer_becomes_a_response_with_the_kept_headers(server):
    base = f"http://127.0.0.1:{server.server_port}"
    response = client_for(base).me()
    assert (response.status, response.body, response.ok) == (200, {"type": "admin"}, True)
    assert response.headers == {"Content-Type": "application/json", "X-RateLimit-Remaining": "99"}
    method, path, headers = Recorder.seen[0]
    assert (method, path) == ("GET", "/me")
    assert headers["Authorization"] == "Bearer secret-token" and headers["Intercom-Version"] == "2.16"


def test_a_body_that_is_not_json_is_kept_as_text(server, monkeypatch):
    monkeypatch.setattr(Recorder, "answer", (502, "text/html", b"<html>Bad gateway</html>"))
    response = client_for(f"http://127.0.0.1:{server.server_port}").me()
    assert (response.status, response.body) == (502, "<html>Bad gateway</html>")


def test_a_refused_connection_is_a_network_error_that_is_retried():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    response = client_for(f"http://127.0.0.1:{port}").me()
    assert response.status is None and response.error.startswith("network: ")
    verdict = policy.judge(response)
    assert (verdict.outcome, verdict.cause) == ("retry", "network")


def test_a_silent_server_is_a_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts the connection, never answers
        client = Client(f"http://127.0.0.1:{listener.getsockname()[1]}", "t", "2.16", (1, 1))
        response = client.me()
    assert response.error.startswith("timeout: ") and policy.judge(response).cause == "timeout"


def test_the_environments_proxy_is_used_and_no_proxy_is_honoured(server, monkeypatch):
    proxy = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    response = client_for("http://intercom.invalid").me()
    assert response.status == 200
    assert Recorder.seen[-1][1] == "http://intercom.invalid/me"  # asked of the proxy, in full
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client_for(f"http://127.0.0.1:{server.server_port}").me()
    assert Recorder.seen[-1][1] == "/me"  # straight to the server


def test_the_token_never_reaches_the_kept_request_headers():
    kept = client_for("http://127.0.0.1:9").kept_request_headers()
    assert "Authorization" not in kept and json.dumps(kept).find("secret-token") == -1

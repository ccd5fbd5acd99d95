import re

import requests

from forwarding.sandbox import SandboxConfig
from forwarding.sandbox.state import SandboxState
from forwarding.sandbox.testing import running_sandbox
from tests.sandbox.conftest import Api, error


def test_it_refuses_a_request_without_a_token(api, sandbox):
    response = requests.get(sandbox.url + "/me", timeout=5)

    assert error(response) == (401, "unauthorized", "Access Token Invalid")


def test_it_refuses_a_wrong_token(api):
    response = api.get("/me", headers={"Authorization": "Bearer not-the-token"})

    assert error(response) == (401, "unauthorized", "Access Token Invalid")


def test_it_refuses_the_token_while_told_to_and_recovers(api, sandbox):
    sandbox.configure(refuse_token=True)
    assert api.get("/me").status_code == 401

    sandbox.configure(refuse_token=False)
    assert api.get("/me").status_code == 200
    assert sandbox.violations == []


def test_it_accepts_every_configured_token():
    with running_sandbox(tokens=("first", "second")) as sandbox:
        for token in ("first", "second"):
            response = requests.get(sandbox.url + "/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            assert response.status_code == 200


def test_it_answers_me_with_the_admin_and_its_workspace(api, sandbox):
    response = api.get("/me")

    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "admin"
    assert body["id"]
    assert body["app"]["type"] == "app"
    assert body["app"]["id_code"] == sandbox.state.workspace_id
    assert body["app"]["region"] == "US"
    assert sandbox.violations == []


def test_each_workspace_has_its_own_id_code_and_keeps_it(api, sandbox):
    other = SandboxState(SandboxConfig())
    id_code = api.get("/me").json()["app"]["id_code"]

    assert re.fullmatch(r"[a-z0-9]{8}", id_code)
    assert other.me()["app"]["id_code"] != id_code
    assert api.get("/me").json()["app"]["id_code"] == id_code
    assert api.contact("u1")["workspace_id"] == id_code
    assert api.post("/companies", {"company_id": "acme"}).json()["app_id"] == id_code
    # A reset starts a new workspace: nothing of the old one is kept, its id_code neither.
    sandbox.reset()
    assert api.get("/me").json()["app"]["id_code"] not in (id_code, "")
    assert sandbox.violations == []


def test_it_never_stores_the_token(api, sandbox):
    api.get("/me")

    logged = sandbox.requests[-1]["request_headers"]
    assert logged["authorization"] == "Bearer [redacted]"
    assert "test-sandbox-token" not in repr(sandbox.requests)


def test_it_serves_keep_alive_connections(sandbox):
    client = Api(sandbox)

    for _ in range(20):
        assert client.get("/me").status_code == 200

    assert sandbox.counters["requests"] == 20
    assert sandbox.server.connection_count == 1


def test_a_client_hanging_up_early_prints_no_traceback_and_a_bug_does(sandbox, capsys):
    for problem in (BrokenPipeError("gone"), ConnectionResetError("reset"), ValueError("a sandbox bug")):
        try:
            raise problem
        except Exception:
            sandbox.server.handle_error(None, ("127.0.0.1", 1))

    printed = capsys.readouterr().err
    assert "gone" not in printed and "reset" not in printed
    assert "ValueError: a sandbox bug" in printed

import requests

from tests.sandbox.conftest import error


def control(sandbox, method, action, **kwargs):
    return requests.request(method, f"{sandbox.url}/_sandbox/{action}", timeout=5, **kwargs)


def test_it_reports_its_state_over_http_without_a_token(api, sandbox):
    api.contact("u1", email="ada@example.com")
    api.post("/events", {"event_name": "a", "created_at": 1, "user_id": "u1"})

    state = control(sandbox, "GET", "state", params={"requests": 1}).json()

    assert [c["external_id"] for c in state["contacts"]] == ["u1"]
    assert [e["event_name"] for e in state["events"]] == ["a"]
    assert state["event_names"]["active"] == ["a"]
    assert state["counters"]["events.stored"] == 1
    assert state["violations"] == []
    assert [r["path"] for r in state["requests"]] == ["/events"]
    assert state["config"]["event_name_limit"] == 120
    assert "tokens" not in state["config"]


def test_it_lists_requests_and_violations_over_http(api, sandbox):
    api.get("/me")
    api.post("/events", {"bogus": True})

    events = control(sandbox, "GET", "requests", params={"path": "/events"}).json()
    violations = control(sandbox, "GET", "violations").json()

    assert [(r["method"], r["status"]) for r in events] == [("POST", 400)]
    assert events[0]["request_body"] == {"bogus": True}
    assert [v["path"] for v in violations] == ["/events"]


def test_it_changes_settings_and_queues_failures_over_http(api, sandbox):
    answer = control(
        sandbox,
        "POST",
        "config",
        json={"rate_limit": 50, "event_name_limit": 2, "prefill_event_names": ["theirs"], "fail_next": {"count": 1}},
    )

    assert answer.status_code == 200
    assert (answer.json()["rate_limit"], answer.json()["event_name_limit"]) == (50, 2)
    assert api.get("/me").status_code == 503
    assert api.get("/me").headers["X-RateLimit-Limit"] == "50"
    assert sandbox.state.event_names["foreign"] == ["theirs"]


def test_it_refuses_the_token_over_http_and_recovers(api, sandbox):
    control(sandbox, "POST", "config", json={"refuse_token": True})
    assert error(api.get("/me")) == (401, "unauthorized", "Access Token Invalid")

    control(sandbox, "POST", "config", json={"refuse_token": False})
    assert api.get("/me").status_code == 200


def test_it_queues_failures_for_some_requests_over_http(api, sandbox):
    queued = control(sandbox, "POST", "fail", json={"count": 2, "status": 500, "path": "/events"})

    assert queued.json()["queued_failures"] == [{"remaining": 2, "status": 500, "method": None, "path": "/events"}]
    assert api.get("/me").status_code == 200


def test_it_refuses_unknown_or_bad_settings(sandbox):
    unknown = control(sandbox, "POST", "config", json={"error_rat": 0.5})
    bad = control(sandbox, "POST", "config", json={"error_rate": 2})
    not_an_object = control(sandbox, "POST", "config", json=[1])

    assert (unknown.status_code, unknown.json()) == (400, {"error": "unknown sandbox setting 'error_rat'"})
    assert (bad.status_code, bad.json()) == (400, {"error": "error_rate: must be between 0 and 1"})
    assert not_an_object.status_code == 400
    assert sandbox.sandbox.config.error_rate == 0.0


def test_it_resets_over_http(api, sandbox):
    api.contact("u1")
    control(sandbox, "POST", "config", json={"latency_ms": 5})

    control(sandbox, "POST", "reset")
    assert sandbox.state.contacts == []
    assert sandbox.requests == []
    assert sandbox.sandbox.config.latency_ms == 5

    control(sandbox, "POST", "reset", json={"config": True})
    assert sandbox.sandbox.config.latency_ms == 0
    assert api.get("/me").status_code == 200  # the token survives a reset


def test_it_answers_404_and_405_for_unknown_control_requests(sandbox):
    assert control(sandbox, "GET", "nothing").status_code == 404
    wrong_method = control(sandbox, "DELETE", "state")
    assert (wrong_method.status_code, wrong_method.headers["Allow"]) == (405, "GET")
    assert control(sandbox, "GET", "health").json() == {"ok": True}


def test_it_archives_a_data_attribute_over_http(api, sandbox):
    api.post("/data_attributes", {"name": "plan", "model": "company", "data_type": "string"})

    archived = control(sandbox, "POST", "archive_data_attribute", json={"name": "plan", "model": "company"})

    assert archived.status_code == 200
    assert (archived.json()["name"], archived.json()["model"], archived.json()["archived"]) == ("plan", "company", True)
    refused = api.post("/companies", {"company_id": "acme", "custom_attributes": {"plan": "pro"}})
    assert error(refused) == (400, "parameter_invalid", "Custom attribute 'plan' does not exist")
    unknown = control(sandbox, "POST", "archive_data_attribute", json={"name": "plan"})  # model: contact
    assert (unknown.status_code, unknown.json()) == (404, {"error": "no custom contact data attribute named 'plan'"})
    assert control(sandbox, "POST", "archive_data_attribute", json={}).status_code == 400
    assert sandbox.violations == []


def test_it_deletes_a_contact_over_http_so_that_its_id_goes_stale(api, sandbox):
    contact = api.contact("u1")
    company = api.post("/companies", {"company_id": "acme"}).json()
    api.post(f"/contacts/{contact['id']}/companies", {"id": company["id"]})
    api.post("/events", {"event_name": "ordered", "created_at": 1, "user_id": "u1"})
    archived = api.contact("u2")
    api.post(f"/contacts/{archived['id']}/archive")

    deleted = control(sandbox, "POST", "delete_contact", json={"external_id": "u1"})

    assert deleted.status_code == 200
    assert deleted.json() == {"type": "contact", "id": contact["id"], "external_id": "u1", "deleted": True}
    assert error(api.put(f"/contacts/{contact['id']}", {"name": "Ada"})) == (404, "not_found", "User Not Found")
    assert api.get("/contacts/find_by_external_id/u1").status_code == 404
    assert api.get(f"/companies/{company['id']}").json()["user_count"] == 0
    assert sandbox.state.events == []
    assert api.contact("u1")["id"] != contact["id"]  # the external_id is free again
    assert control(sandbox, "POST", "delete_contact", json={"external_id": "u2"}).status_code == 200
    assert [c["external_id"] for c in sandbox.state.contacts] == ["u1"]
    unknown = control(sandbox, "POST", "delete_contact", json={"external_id": "nobody"})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "no contact with external_id 'nobody'"})
    assert sandbox.violations == []

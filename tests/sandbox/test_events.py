import pytest

from tests.sandbox.conftest import error


def event(name="signed-up", created_at=1700000000, user_id="u1", **extra):
    return {"event_name": name, "created_at": created_at, "user_id": user_id, **extra}


def test_it_accepts_an_event_with_202_and_an_empty_body(api, sandbox):
    api.contact("u1")

    response = api.post("/events", event(metadata={"plan": "pro"}))

    assert response.status_code == 202
    assert response.content == b""
    [stored] = sandbox.state.events
    assert (stored["event_name"], stored["created_at"], stored["user_id"]) == ("signed-up", 1700000000, "u1")
    assert stored["metadata"] == {"plan": "pro"}
    assert sandbox.violations == []


@pytest.mark.parametrize(
    "identifier", [{"user_id": "nobody"}, {"id": "000000000000000000000000"}, {"email": "nobody@example.com"}]
)
def test_it_answers_404_user_not_found_for_an_unknown_user(api, sandbox, identifier):
    body = {"event_name": "signed-up", "created_at": 1700000000, **identifier}

    response = api.post("/events", body)

    assert error(response) == (404, "not_found", "User Not Found")
    assert sandbox.state.events == []
    assert sandbox.violations == []


def test_it_finds_the_user_by_intercom_id_or_email(api, sandbox):
    contact = api.contact("u1", email="ada@example.com")

    assert api.post("/events", {"event_name": "a", "created_at": 1, "id": contact["id"]}).status_code == 202
    assert api.post("/events", {"event_name": "b", "created_at": 1, "email": "ada@example.com"}).status_code == 202
    assert [e["intercom_user_id"] for e in sandbox.state.events] == [contact["id"], contact["id"]]


def test_it_stores_a_duplicate_once_but_counts_every_request(api, sandbox):
    api.contact("u1")

    answers = [
        api.post("/events", event("Signed-Up", 1700000000)).status_code,
        api.post("/events", event("signed-up", 1700000000)).status_code,
        api.post("/events", event("signed-up", 1700000001)).status_code,
    ]

    # Same user, name (case-insensitively) and second: Intercom collapses them.
    assert answers == [202, 202, 202]
    assert [e["created_at"] for e in sandbox.state.events] == [1700000000, 1700000001]
    assert sandbox.counters["events.received"] == 3
    assert sandbox.counters["events.duplicate"] == 1
    assert sandbox.counters["operation.createDataEvent"] == 3


def test_it_refuses_a_new_name_beyond_120_active_names(api, sandbox):
    api.contact("u1")
    for n in range(120):
        assert api.post("/events", event(f"event-{n}")).status_code == 202

    refused = api.post("/events", event("event-120"))

    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"code": "422", "message": "Cannot have more than 120 active event names"}]
    assert len(sandbox.state.event_names["active"]) == 120
    assert api.post("/events", event("EVENT-7", 1700000005)).status_code == 202  # an existing name, other case
    assert sandbox.violations == []


def test_it_counts_names_other_senders_used_against_the_limit(api, sandbox):
    sandbox.configure(event_name_limit=3, prefill_event_names=["their-one", "their-two"])
    api.contact("u1")

    assert api.post("/events", event("ours")).status_code == 202
    refused = api.post("/events", event("ours-too"))

    assert error(refused) == (422, "422", "Cannot have more than 3 active event names")
    assert sandbox.state.event_names["foreign"] == ["their-one", "their-two"]
    assert api.post("/events", event("THEIR-ONE")).status_code == 202


def test_it_frees_a_slot_when_a_name_is_archived(api, sandbox):
    sandbox.configure(event_name_limit=1)
    api.contact("u1")
    api.post("/events", event("old"))
    assert api.post("/events", event("new")).status_code == 422

    sandbox.configure(archive_event_names=["OLD"])

    assert api.post("/events", event("new")).status_code == 202
    assert sandbox.state.event_names == {"active": ["new"], "archived": ["old"], "foreign": []}


def test_it_accepts_every_documented_metadata_type(api, sandbox):
    api.contact("u1")
    metadata = {
        "source": "desktop",
        "load": 3.67,
        "seats": 3,
        "trial": True,
        "contact_date": 1392036272,
        "article": "https://example.org/ab1de.html",
        "link": {"url": "https://example.org/ab1de.html", "value": "the dude abides"},
        "price": {"amount": 34999, "currency": "eur"},
    }

    response = api.post("/events", event(metadata=metadata))

    assert response.status_code == 202
    assert sandbox.state.events[0]["metadata"] == metadata
    assert sandbox.violations == []


def test_it_keeps_only_the_first_ten_metadata_keys(api, sandbox):
    api.contact("u1")
    metadata = {f"key_{n}": n for n in range(12)}

    api.post("/events", event(metadata=metadata))

    assert list(sandbox.state.events[0]["metadata"]) == [f"key_{n}" for n in range(10)]


def test_it_lists_a_users_events_newest_first_and_summarised(api, sandbox):
    contact = api.contact("u1", email="ada@example.com")
    api.post("/events", event("viewed-page", 1700000000))
    api.post("/events", event("viewed-page", 1700000060))
    api.post("/events", event("ordered", 1700000120))

    listed = api.get("/events", params={"type": "user", "user_id": "u1"})
    summary = api.get("/events", params={"type": "user", "intercom_user_id": contact["id"], "summary": "true"})

    assert listed.status_code == 200
    assert listed.json()["type"] == "event.summary"
    assert [e["event_name"] for e in listed.json()["events"]] == ["ordered", "viewed-page", "viewed-page"]
    assert {s["name"]: s["count"] for s in summary.json()["events"]} == {"viewed-page": 2, "ordered": 1}
    assert api.get("/events", params={"type": "user", "user_id": "nobody"}).status_code == 404
    assert sandbox.violations == []

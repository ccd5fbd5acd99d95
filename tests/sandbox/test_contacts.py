import re

from tests.sandbox.conftest import error


def test_it_answers_404_when_no_contact_has_the_external_id(api, sandbox):
    response = api.get("/contacts/find_by_external_id/nobody")

    assert error(response) == (404, "not_found", "User Not Found")
    assert sandbox.violations == []


def test_it_creates_a_contact_and_answers_the_full_object(api, sandbox):
    response = api.post(
        "/contacts",
        {
            "role": "user",
            "external_id": "u1",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "phone": "+44 20 7946 0000",
            "avatar": "https://example.com/ada.png",
            "signed_up_at": 1700000000,
            "last_seen_at": 1700000100,
            "unsubscribed_from_emails": True,
        },
    )

    assert response.status_code == 200
    contact = response.json()
    assert re.fullmatch(r"[0-9a-f]{24}", contact["id"])
    assert contact["type"] == "contact"
    assert contact["workspace_id"]
    assert (contact["external_id"], contact["role"], contact["email"]) == ("u1", "user", "ada@example.com")
    assert contact["avatar"] == {"type": "avatar", "image_url": "https://example.com/ada.png"}
    assert (contact["signed_up_at"], contact["last_seen_at"]) == (1700000000, 1700000100)
    assert contact["unsubscribed_from_emails"] is True
    assert contact["custom_attributes"] == {}
    assert contact["companies"]["data"] == []
    assert contact["location"]["type"] == "location"
    assert sandbox.state.contact_by_external_id("u1")["id"] == contact["id"]
    found = api.get("/contacts/find_by_external_id/u1")
    assert found.status_code == 200
    assert found.json()["id"] == contact["id"]
    assert sandbox.violations == []


def test_it_finds_an_external_id_with_url_special_characters(api):
    created = api.contact("user/with spaces@x")

    found = api.get("/contacts/find_by_external_id/user%2Fwith%20spaces%40x")

    assert found.json()["id"] == created["id"]


def test_it_answers_409_with_the_existing_id_for_a_duplicate_external_id(api, sandbox):
    first = api.contact("u1")

    response = api.post("/contacts", {"role": "user", "external_id": "u1", "email": "other@example.com"})

    assert error(response) == (
        409,
        "conflict",
        f"A contact matching those details already exists with id={first['id']}",
    )
    assert len(sandbox.state.contacts) == 1


def test_it_hides_an_archived_contact_and_answers_the_archived_409(api, sandbox):
    contact = api.contact("u1", email="ada@example.com")

    archived = api.post(f"/contacts/{contact['id']}/archive")
    assert archived.status_code == 200
    assert archived.json() == {"type": "contact", "id": contact["id"], "external_id": "u1", "archived": True}

    assert api.get("/contacts/find_by_external_id/u1").status_code == 404
    search = api.post("/contacts/search", {"query": {"field": "external_id", "operator": "=", "value": "u1"}})
    assert search.json()["total_count"] == 0
    duplicate = api.post("/contacts", {"role": "user", "external_id": "u1"})
    assert error(duplicate) == (
        409,
        "conflict",
        f"An archived contact matching those details already exists with id={contact['id']}",
    )
    assert api.put(f"/contacts/{contact['id']}", {"name": "Ada"}).status_code == 404

    unarchived = api.post(f"/contacts/{contact['id']}/unarchive")
    assert unarchived.json()["archived"] is False
    assert api.get("/contacts/find_by_external_id/u1").json()["id"] == contact["id"]
    assert sandbox.violations == []


def test_it_updates_a_contact(api, sandbox):
    contact = api.contact("u1", email="old@example.com")

    response = api.put(f"/contacts/{contact['id']}", {"email": "new@example.com", "name": "Ada", "last_seen_at": 5})

    assert response.status_code == 200
    updated = response.json()
    assert (updated["id"], updated["email"], updated["name"], updated["last_seen_at"]) == (
        contact["id"],
        "new@example.com",
        "Ada",
        5,
    )
    assert api.get(f"/contacts/{contact['id']}").json()["email"] == "new@example.com"
    assert sandbox.counters["contacts.updated"] == 1
    assert sandbox.violations == []


def test_it_answers_404_when_updating_an_unknown_contact(api):
    response = api.put("/contacts/000000000000000000000000", {"name": "Nobody"})

    assert error(response) == (404, "not_found", "User Not Found")


def test_it_refuses_an_unknown_custom_attribute_then_stores_it_once_created(api, sandbox):
    contact = api.contact("u1")

    refused = api.put(f"/contacts/{contact['id']}", {"custom_attributes": {"plan_name": "pro"}})
    assert error(refused) == (400, "parameter_invalid", "Custom attribute 'plan_name' does not exist")
    assert sandbox.state.contact_by_external_id("u1")["custom_attributes"] == {}

    created = api.post("/data_attributes", {"name": "plan_name", "model": "contact", "data_type": "string"})
    assert created.status_code == 200

    stored = api.put(f"/contacts/{contact['id']}", {"custom_attributes": {"plan_name": "pro"}})
    assert stored.status_code == 200
    assert stored.json()["custom_attributes"] == {"plan_name": "pro"}
    assert sandbox.state.contact_by_external_id("u1")["custom_attributes"] == {"plan_name": "pro"}
    assert sandbox.violations == []


def test_it_refuses_unknown_custom_attributes_on_create_without_storing_anything(api, sandbox):
    response = api.post("/contacts", {"role": "user", "external_id": "u1", "custom_attributes": {"nope": 1}})

    assert error(response) == (400, "parameter_invalid", "Custom attribute 'nope' does not exist")
    assert sandbox.state.contacts == []


def test_it_refuses_a_nested_custom_attribute_value(api, sandbox):
    sandbox.state.add_data_attribute("address")
    contact = api.contact("u1")

    response = api.put(f"/contacts/{contact['id']}", {"custom_attributes": {"address": {"city": "London"}}})

    assert error(response)[:2] == (400, "parameter_invalid")


def test_it_searches_contacts_by_external_id_and_email(api, sandbox):
    ada = api.contact("u1", email="ada@example.com")
    api.contact("u2", email="grace@example.com")

    by_id = api.post("/contacts/search", {"query": {"field": "external_id", "operator": "=", "value": "u1"}})
    by_email = api.post(
        "/contacts/search",
        {
            "query": {
                "operator": "AND",
                "value": [
                    {"field": "email", "operator": "=", "value": "ada@example.com"},
                    {"field": "role", "operator": "=", "value": "user"},
                ],
            },
            "pagination": {"per_page": 5},
        },
    )

    assert by_id.status_code == 200
    assert by_id.json()["type"] == "list"
    assert by_id.json()["total_count"] == 1
    assert [c["id"] for c in by_id.json()["data"]] == [ada["id"]]
    assert [c["id"] for c in by_email.json()["data"]] == [ada["id"]]
    assert sandbox.violations == []


def test_it_pages_search_results(api):
    for n in range(5):
        api.contact(f"u{n}")

    first = api.post(
        "/contacts/search",
        {"query": {"field": "role", "operator": "=", "value": "user"}, "pagination": {"per_page": 2}},
    ).json()
    second = api.post(
        "/contacts/search",
        {
            "query": {"field": "role", "operator": "=", "value": "user"},
            "pagination": {"per_page": 2, "starting_after": first["pages"]["next"]["starting_after"]},
        },
    ).json()

    assert first["total_count"] == 5
    assert [c["external_id"] for c in first["data"] + second["data"]] == ["u0", "u1", "u2", "u3"]


def test_it_leaves_new_contacts_out_of_search_during_the_configured_lag(api, sandbox):
    sandbox.configure(search_lag_seconds=60)
    api.contact("u1")

    search = api.post("/contacts/search", {"query": {"field": "external_id", "operator": "=", "value": "u1"}})

    # Intercom's search is eventually consistent; find_by_external_id is not.
    assert search.json()["total_count"] == 0
    assert api.get("/contacts/find_by_external_id/u1").status_code == 200


def test_it_deletes_a_contact_archived_or_not_and_answers_404_after(api, sandbox):
    kept = api.contact("u1")
    archived = api.contact("u2")
    api.post(f"/contacts/{archived['id']}/archive")

    deleted = api.delete(f"/contacts/{archived['id']}")
    again = api.delete(f"/contacts/{archived['id']}")

    assert deleted.status_code == 200
    assert deleted.json() == {"type": "contact", "id": archived["id"], "external_id": "u2", "deleted": True}
    assert again.status_code == 404
    assert [c["id"] for c in sandbox.state.contacts] == [kept["id"]]
    assert sandbox.violations == []

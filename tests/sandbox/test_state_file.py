"""The state file: a workspace saved and loaded whole, written atomically and privately, and a
file that cannot be read moved aside instead of stopping the sandbox."""

import json
import logging
import os
import stat

import pytest

from forwarding.sandbox import Sandbox, SandboxConfig
from forwarding.sandbox.errors import ApiError
from forwarding.sandbox.persistence import StateFile
from forwarding.sandbox.state import SandboxState
from tests.processes import wait_until

VIEWS = ("workspace_id", "contacts", "companies", "attachments", "events", "event_names", "data_attributes", "tags")
LOGGER = "forwarding.sandbox.persistence"


def views(state):
    return {name: getattr(state, name) for name in VIEWS}


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def new_state():
    return SandboxState(SandboxConfig())


def populate(api, sandbox):
    """A bit of everything a workspace holds, through the API where it has a way."""
    sandbox.state.add_data_attribute("plan")
    sandbox.state.add_data_attribute("old")
    sandbox.state.archive_data_attribute("old")
    api.post("/data_attributes", {"name": "seats", "model": "company", "data_type": "integer"})
    ada = api.contact("u1", email="ada@example.com", custom_attributes={"plan": "pro"})
    gone = api.contact("u2")
    api.post(f"/contacts/{gone['id']}/archive")
    api.post("/contacts", {"role": "lead", "email": "lead@example.com"})
    acme = api.post("/companies", {"company_id": "acme", "custom_attributes": {"seats": 3}}).json()
    api.post(f"/contacts/{ada['id']}/companies", {"id": acme["id"]})
    api.post("/tags", {"name": "vip", "companies": [{"id": acme["id"]}]})
    api.post("/events", {"event_name": "Ordered", "created_at": 1, "user_id": "u1", "metadata": {"n": 1}})
    sandbox.state.prefill_event_names(["theirs"])
    sandbox.state.archive_event_names(["theirs"])
    assert sandbox.violations == []


def test_a_saved_workspace_loads_whole_and_gives_new_ids_after_its_own(api, sandbox, tmp_path):
    populate(api, sandbox)
    path = tmp_path / "state.json"
    assert StateFile(sandbox.state, path).save()
    loaded = new_state()

    assert StateFile(loaded, path).load()

    saved = sandbox.state
    assert views(loaded) == views(saved)
    assert [c["archived"] for c in loaded.contacts] == [False, True, False]
    # The indexes work: lookups, the archived 409, event deduplication.
    assert loaded.find_contact_by_external_id("u1")["email"] == "ada@example.com"
    with pytest.raises(ApiError, match="An archived contact matching those details"):
        loaded.create_contact({"role": "user", "external_id": "u2"})
    loaded.create_event({"event_name": "ordered", "created_at": 1, "user_id": "u1"})
    assert len(loaded.events) == 1
    assert loaded.find_companies({"company_id": "acme"})["data"][0]["id"] == saved.companies[0]["id"]
    # New ids come after the loaded ones: a relay's cached id never names another contact.
    old_ids = {c["id"] for c in saved.contacts} | {c["id"] for c in saved.companies} | {e["id"] for e in saved.events}
    new_id = loaded.create_contact({"role": "user", "external_id": "u3"})["id"]
    assert new_id not in old_ids
    assert int(new_id[-8:], 16) > max(int(i[-8:], 16) for i in old_ids)
    attribute = loaded.create_data_attribute({"name": "tier", "model": "company", "data_type": "string"})
    assert attribute["id"] > max(a["id"] for a in saved.data_attributes)
    assert loaded.create_tag({"name": "VIP"})["id"] == saved.tags[0]["id"]  # one tag per name, as before


def test_it_saves_after_changes_only_privately_and_without_settings(tmp_path):
    sandbox = Sandbox(tokens=("secret-token",), error_rate=0.5)
    path = tmp_path / "state.json"
    state_file = StateFile(sandbox.state, path)

    assert state_file.save()  # the new workspace, so that its id_code is kept from the start
    assert not state_file.save()
    sandbox.state.add_data_attribute("plan")
    assert state_file.save()

    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left
    text = path.read_text()
    assert json.loads(text)["data_attributes"][0]["name"] == "plan"
    assert "secret-token" not in text
    assert "error_rate" not in text


def test_it_saves_from_its_thread_within_an_interval(tmp_path):
    state, path = new_state(), tmp_path / "state.json"
    state_file = StateFile(state, path, interval=0.05)
    state_file.start()
    try:
        state.add_data_attribute("plan")
        wait_until(lambda: path.exists() and "plan" in path.read_text(), timeout=5, message="a save")
    finally:
        state_file.stop()


def test_it_saves_what_is_left_when_stopped(tmp_path):
    state, path = new_state(), tmp_path / "state.json"
    state_file = StateFile(state, path, interval=60)
    state_file.start()
    state.add_contact(role="user", external_id="u1")

    state_file.stop()

    assert [c["data"]["external_id"] for c in json.loads(path.read_text())["contacts"]] == ["u1"]


def broken_document():
    state = new_state()
    state.add_contact(role="user", external_id="u1")
    document = state.document()
    del document["contacts"][0]["data"]["id"]
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[]", b'{"format": 99}', broken_document()],
    ids=["not json", "not utf-8", "not an object", "another format", "a contact without id"],
)
def test_an_unreadable_file_is_moved_aside_and_the_workspace_starts_empty(tmp_path, caplog, content):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    state = new_state()
    state_file = StateFile(state, path)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not state_file.load()

    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [content]
    assert "is unreadable" in caplog.text and f"moved it to {aside[0]}" in caplog.text
    assert state.contacts == []
    assert state_file.save()
    assert json.loads(path.read_text())["workspace"]["id_code"] == state.workspace_id


def test_it_never_overwrites_an_unreadable_file_it_could_not_move_aside(tmp_path, caplog, monkeypatch):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state = new_state()
    state_file = StateFile(state, path)

    def refuse(*args):
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "rename", refuse)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not state_file.load()
    state.add_data_attribute("plan")

    assert not state_file.save()
    assert path.read_text() == "{not json"
    assert "could not be moved aside" in caplog.text


def test_a_failed_save_is_logged_once_and_retried(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    state_file = StateFile(new_state(), blocker / "state.json")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not state_file.save()
        assert not state_file.save()
        blocker.unlink()
        assert state_file.save()

    assert caplog.text.count("Could not save") == 1
    assert "again" in caplog.text

"""Fidelity (docs/fidelity.md), one worker in this process against the sandbox: what a client sent
reaches Intercom, under an alias when it must, or the call says what was dropped; every cache of
Intercom's state heals from Intercom's answer."""

import logging

import pytest

from forwarding import intercom
from forwarding.delivery import attributes, connection, loop, queue, workspace
from forwarding.models import ContactLink, DataAttribute, Delivery, IntercomStatus, State, Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_workspace():
    """Each sandbox reset is a new workspace: this process asks GET /me again."""
    workspace.forget()
    yield
    workspace.forget()


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch):
    """This test is the only worker: what would be enqueued is delivered by the test."""
    monkeypatch.setattr(queue, "enqueue_tasks", lambda tasks: True)


def deliver(*pks):
    loop.deliver_many(list(pks))
    return [Delivery.objects.get(pk=pk) for pk in pks]


def identify(user_id, **traits):
    return {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com", **traits}}


def group(user_id, group_id, **traits):
    return {"type": "group", "userId": user_id, "groupId": group_id, "traits": {"name": group_id, **traits}}


def test_it_uses_the_attribute_another_worker_has_just_created(store, sandbox, monkeypatch):
    # Another worker creates "tier" between this worker's listing and its own creation.
    real_create = intercom.Client.create_data_attribute

    def racing_create(self, model, name, data_type):
        if name == "tier":
            sandbox.state.add_data_attribute("tier")
        return real_create(self, model, name, data_type)

    monkeypatch.setattr(intercom.Client, "create_data_attribute", racing_create)
    [first] = deliver(*store(identify("ann", tier="gold")))
    monkeypatch.setattr(intercom.Client, "create_data_attribute", real_create)
    [second] = deliver(*store(identify("bob", tier="silver")))

    assert (first.state, first.warnings, second.state, second.warnings) == (State.DELIVERED, [], State.DELIVERED, [])
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"] == {"tier": "gold"}
    assert sandbox.state.contact_by_external_id("bob")["custom_attributes"] == {"tier": "silver"}
    row = DataAttribute.objects.get(model="contact", name="tier")
    assert (row.usable, row.refusal, row.alias, row.calls_written) == (True, "", "", 2)


def test_a_name_the_other_model_holds_is_written_under_its_alias(store, sandbox):
    sandbox.state.add_data_attribute("tier", "contact")
    identified, grouped = deliver(*store(identify("ann", tier="gold"), group("ann", "acme", tier="enterprise")))

    assert (identified.state, grouped.state) == (State.DELIVERED, State.DELIVERED)
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"] == {"tier": "gold"}
    [company] = sandbox.state.companies
    assert company["custom_attributes"] == {"company_tier": "enterprise"}
    assert grouped.warned
    assert grouped.warnings == [
        "custom attribute 'tier' written as 'company_tier': "
        "Intercom's attribute names are shared by contacts and companies, and contacts have it"
    ]
    # The alias is created once, and used from then on without asking again.
    before = sandbox.counters["data_attributes.created"]
    [again] = deliver(*store(group("ann", "initech", tier="smb")))
    assert again.state == State.DELIVERED
    assert sandbox.counters["data_attributes.created"] == before
    assert {c["company_id"]: c["custom_attributes"] for c in sandbox.state.companies}["initech"] == {
        "company_tier": "smb"
    }
    row = DataAttribute.objects.get(model="company", name="tier")
    assert (row.alias, row.usable, row.calls_written) == ("company_tier", True, 2)


def test_an_attribute_archived_in_intercom_is_created_again_or_said_to_be_archived(store, sandbox):
    [first] = deliver(*store(identify("ann", seats=3)))
    assert first.state == State.DELIVERED
    sandbox.state.archive_data_attribute("seats")

    [second] = deliver(*store(identify("ann", seats=4, team="blue")))

    # The cached attribute was gone: the relay re-listed, and the call is delivered at once; the
    # archived name cannot be created again, so its value is dropped, and said so.
    assert second.state == State.DELIVERED
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"] == {"seats": 3, "team": "blue"}
    assert len(second.warnings) == 1 and second.warnings[0].startswith("custom attribute 'seats' dropped: archived")
    row = DataAttribute.objects.get(model="contact", name="seats")
    assert (row.usable, row.refusal, row.calls_dropped) == (False, DataAttribute.Refusal.OTHER, 1)


def test_an_attribute_deleted_under_the_cache_is_created_again_and_the_call_retried_once(store, sandbox):
    [first] = deliver(*store(identify("ann", seats=3)))
    assert first.state == State.DELIVERED
    # Another workspace's cache (the sandbox restarted without its state): the cache says
    # "seats" exists, Intercom answers that it does not.
    sandbox_attributes = sandbox.state._attributes
    sandbox_attributes.clear()

    [second] = deliver(*store(identify("ann", seats=5)))

    assert (second.state, second.warnings) == (State.DELIVERED, [])
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"]["seats"] == 5
    statuses = [(r["method"], r["path"], r["status"]) for r in sandbox.requests][-4:]
    assert statuses == [
        ("PUT", f"/contacts/{sandbox.state.contact_by_external_id('ann')['id']}", 400),
        ("GET", "/data_attributes", 200),
        ("POST", "/data_attributes", 200),
        ("PUT", f"/contacts/{sandbox.state.contact_by_external_id('ann')['id']}", 200),
    ]


def test_a_refusal_for_the_limit_is_tried_again_once_the_workspace_has_room(store, sandbox, monkeypatch):
    sandbox.sandbox.configure(data_attribute_limit=1)
    deliver(*store(identify("ann", seats=3)))
    [first] = deliver(*store(identify("ann", team="blue")))
    assert first.state == State.DELIVERED
    assert first.warnings == [
        "custom attribute 'team' dropped: You have reached the limit of 1 custom data attributes. "
        "Archive attributes you no longer need to create new ones."
    ]
    assert DataAttribute.objects.get(name="team").refusal == DataAttribute.Refusal.LIMIT

    sandbox.state.archive_data_attribute("seats")
    monkeypatch.setattr(attributes, "LIMIT_RECHECK_SECONDS", 0)
    [second] = deliver(*store(identify("ann", team="red")))

    assert (second.state, second.warnings) == (State.DELIVERED, [])
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"]["team"] == "red"
    assert DataAttribute.objects.get(name="team").usable


def test_an_ignored_attribute_is_dropped_without_a_warning_and_a_retried_one_is_created(store, sandbox):
    sandbox.sandbox.configure(data_attribute_limit=1)
    deliver(*store(identify("ann", seats=3)), *store(identify("ann", team="blue")))
    team = DataAttribute.objects.get(name="team")
    assert team.refusal == DataAttribute.Refusal.LIMIT
    attributes.ignore(team)
    [quiet] = deliver(*store(identify("ann", team="red")))
    assert (quiet.state, quiet.warnings, quiet.warned) == (State.DELIVERED, [], False)

    sandbox.sandbox.configure(data_attribute_limit=5)
    attributes.retry(team)
    [retried] = deliver(*store(identify("ann", team="green")))
    assert (retried.state, retried.warnings) == (State.DELIVERED, [])
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"]["team"] == "green"


def test_an_operator_alias_is_created_and_used(store, sandbox):
    deliver(*store(identify("ann", team="blue")))
    attributes.set_alias(DataAttribute.objects.get(name="team"), "squad")
    [aliased] = deliver(*store(identify("ann", team="red")))
    assert aliased.state == State.DELIVERED
    assert aliased.warnings == ["custom attribute 'team' written as 'squad': an operator set this alias"]
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"] == {"team": "blue", "squad": "red"}


def test_a_cached_contact_intercom_lost_is_looked_up_again_and_the_event_sent(store, sandbox):
    identified, tracked = deliver(*store(identify("ann"), {"type": "track", "userId": "ann", "event": "Signed Up"}))
    assert (identified.state, tracked.state) == (State.DELIVERED, State.DELIVERED)
    link = ContactLink.objects.get(user_id="ann")
    ContactLink.objects.filter(pk=link.pk).update(contact_id="0123456789abcdef01234567")  # stale

    [grouped] = deliver(*store(group("ann", "acme")))

    assert grouped.state == State.DELIVERED
    contact = sandbox.state.contact_by_external_id("ann")
    assert ContactLink.objects.get(user_id="ann").contact_id == contact["id"]
    assert sandbox.state.attachments == [{"contact_id": contact["id"], "company_id": sandbox.state.companies[0]["id"]}]


def test_a_user_intercom_no_longer_has_is_identified_again_then_their_calls_follow(store, sandbox):
    [identified] = deliver(*store(identify("ann", plan_name="pro")))
    Delivery.objects.filter(pk=identified.pk).update(delivered_at=identified.delivered_at.replace(year=2025))
    sandbox.sandbox.reset()  # a new workspace behind the same URL and token (a restarted sandbox)

    # The track waits and the identify is sent again; the task goes on with both, in that order.
    [tracked] = deliver(*store({"type": "track", "userId": "ann", "event": "Signed Up"}))

    again = Delivery.objects.get(pk=identified.pk)
    assert (again.state, again.attempt_count) == (State.DELIVERED, 2)
    assert again.attempts.order_by("pk").last().trigger == Trigger.RELEASE
    assert tracked.state == State.DELIVERED
    assert list(tracked.attempts.order_by("pk").values_list("outcome", flat=True)) == ["waiting", "delivered"]
    assert again.delivered_at < tracked.delivered_at
    assert sandbox.state.contact_by_external_id("ann")["custom_attributes"] == {"plan_name": "pro"}
    assert [e["event_name"] for e in sandbox.state.events_for("ann")] == ["Signed Up"]


def test_ids_of_another_workspace_are_never_used(store, sandbox):
    ContactLink.objects.create(workspace="another", user_id="ann", contact_id="0123456789abcdef01234567")
    DataAttribute.objects.create(workspace="another", model="contact", name="tier")

    [identified] = deliver(*store(identify("ann", tier="gold")))

    assert identified.state == State.DELIVERED
    paths = [r["path"] for r in sandbox.requests]
    assert "/contacts/0123456789abcdef01234567" not in paths
    current = workspace.current()
    assert current == sandbox.state.me()["app"]["id_code"]
    assert (
        ContactLink.objects.get(workspace=current, user_id="ann").contact_id
        == (sandbox.state.contact_by_external_id("ann")["id"])
    )
    assert DataAttribute.objects.filter(workspace=current, name="tier", usable=True).exists()
    assert IntercomStatus.objects.get().workspace_id == current


def test_caches_of_before_workspaces_are_adopted_by_the_first_workspace_learned(store, sandbox):
    [identified] = deliver(*store(identify("ann")))
    ContactLink.objects.update(workspace="")
    workspace.forget()
    IntercomStatus.objects.all().delete()
    workspace.current()
    assert ContactLink.objects.get(user_id="ann").workspace == sandbox.state.me()["app"]["id_code"]
    assert identified.state == State.DELIVERED


# -- the connection's status ------------------------------------------------------------------


def test_the_status_says_connected_only_while_the_last_request_succeeded(store, sandbox, settings):
    deliver(*store(identify("ann")))
    status = connection.current()
    assert status.last_success_at and status.unreachable_since is None
    assert status.base_url == sandbox.url

    sandbox.sandbox.configure(error_rate=1.0, error_statuses=[503])
    deliver(*store(identify("bob")))  # three 503 in a row (the task retries in its budget)
    status = connection.current()
    assert status.failures >= 1
    for _ in range(3):
        connection.note(intercom.client().me())
    status = connection.current()
    assert status.unreachable_since is not None and status.failure_error.startswith("503")

    sandbox.sandbox.configure(error_rate=0.0)
    connection.note(intercom.client().me())
    status = connection.current()
    assert (status.unreachable_since, status.failures) == (None, 0)

    # Another base URL: nothing of this status is shown as its own.
    settings.INTERCOM_API_BASE = "http://127.0.0.1:9"
    intercom.reset_client()
    assert connection.current() is None
    connection.note(intercom.client().me())  # refused: nothing listens there
    status = connection.current()
    assert (status.base_url, status.last_success_at) == ("http://127.0.0.1:9", None)
    assert status.unreachable_since is not None and status.failure_error.startswith("network")


def test_failed_and_retried_deliveries_are_logged_at_warning(store, sandbox, caplog):
    sandbox.sandbox.configure(error_rate=1.0, error_statuses=[503])
    [pk] = store(identify("ann"))
    with caplog.at_level(logging.WARNING, logger="forwarding"):
        deliver(pk)
    assert f"call {pk} will be tried again at " in caplog.text
    assert "http_503" in caplog.text

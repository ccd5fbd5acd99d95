"""Forgetting a user (docs/operations.md): their stored data expunged at once, their Intercom
contact deleted (archived ones too, retried until done), a tombstone with a hash, and their later
calls suppressed when asked."""

import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from forwarding import privacy
from forwarding.delivery import loop
from forwarding.models import Call, Delivery, Forgotten, IntercomDeletion, State, hash_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("one_worker")]
ANN = "ann-42"
EMAIL = "ann@example.com"


def deliver(pks):
    loop.deliver_many(list(pks))


def anns_history(store):
    """Ann's calls, one anonymous before her identify, all delivered; and Bea's, who stays."""
    return store(
        {"type": "page", "anonymousId": "anon-7", "properties": {"path": "/pricing"}},
        {"type": "identify", "userId": ANN, "anonymousId": "anon-7", "traits": {"email": EMAIL, "name": "Ann"}},
        {"type": "track", "userId": ANN, "event": "Ordered", "properties": {"note": EMAIL}},
        {"type": "identify", "userId": "bea", "traits": {"email": "bea@example.com"}},
    )


def stored_anywhere(text):
    """Every table of the relay (and django-q2's) that still holds `text`, as 'model: field'."""
    found = []
    for model in [*apps.get_app_config("forwarding").get_models(), *apps.get_app_config("django_q").get_models()]:
        for row in model.objects.values():
            for name, value in row.items():
                if text in json.dumps(value, default=str):
                    found.append(f"{model.__name__}: {name}")
    return found


def test_forgetting_expunges_every_trace_deletes_the_contact_and_keeps_a_tombstone(store, sandbox, admin_user):
    pks = anns_history(store)
    deliver(pks)
    deliver(pks[:1])  # the anonymous page, released by the identify
    assert sandbox.state.contact_by_external_id(ANN) is not None

    tombstone = privacy.forget(ANN, admin_user)
    privacy.delete_in_intercom(tombstone)

    assert sandbox.state.contact_by_external_id(ANN) is None
    assert [
        r["method"] for r in sandbox.requests if r["path"].startswith("/contacts/") and r["method"] == "DELETE"
    ] == ["DELETE"]
    assert stored_anywhere(ANN) == [] and stored_anywhere(EMAIL) == [] and stored_anywhere("anon-7") == []
    tombstone.refresh_from_db()
    assert (tombstone.user_hash, tombstone.requested_by, tombstone.calls_expunged) == (hash_user(ANN), "admin", 3)
    assert (tombstone.intercom, tombstone.anonymous_ids, tombstone.contact_ids) == (IntercomDeletion.DELETED, 1, [])
    bea = Call.objects.get(pk=pks[3])
    assert bea.payload["traits"]["email"] == "bea@example.com"  # nobody else's data is touched


def test_an_archived_contact_is_deleted_too(store, sandbox, admin_user):
    deliver(store({"type": "identify", "userId": ANN, "traits": {"email": EMAIL}}))
    sandbox.state.archive_contact(sandbox.state.contact_by_external_id(ANN)["id"])

    tombstone = privacy.delete_in_intercom(privacy.forget(ANN, admin_user))

    assert tombstone.intercom == IntercomDeletion.DELETED
    assert sandbox.state.contacts == []


def test_a_user_intercom_never_knew_needs_nothing_there(store, sandbox, admin_user):
    tombstone = privacy.delete_in_intercom(privacy.forget("never-sent", admin_user))
    assert tombstone.intercom == IntercomDeletion.ABSENT


def test_a_failed_deletion_is_shown_and_retried_until_done(store, sandbox, admin_user):
    deliver(store({"type": "identify", "userId": ANN, "traits": {"email": EMAIL}}))
    sandbox.fail_next(2, 503, method="DELETE")

    tombstone = privacy.delete_in_intercom(privacy.forget(ANN, admin_user))
    assert tombstone.intercom == IntercomDeletion.PENDING
    assert tombstone.intercom_error.startswith("HTTP 503")
    assert tombstone.pending_external_id == ANN  # kept only until done
    assert privacy.delete_due() == 0  # not due yet

    privacy.delete_due(now=timezone.now() + privacy.RETRY_AFTER)  # the second 503
    tombstone.refresh_from_db()
    assert (tombstone.intercom, tombstone.intercom_attempts) == (IntercomDeletion.PENDING, 2)
    assert tombstone.next_attempt_at - timezone.now() > privacy.RETRY_AFTER  # backing off

    privacy.delete_due(now=timezone.now() + privacy.RETRY_AT_MOST)
    tombstone.refresh_from_db()
    assert (tombstone.intercom, tombstone.pending_external_id) == (IntercomDeletion.DELETED, "")
    assert sandbox.state.contact_by_external_id(ANN) is None


def test_suppressed_later_calls_are_stored_without_payload_and_never_sent(store, sandbox, admin_user):
    privacy.delete_in_intercom(privacy.forget(ANN, admin_user, suppress=True))

    pks = store(
        {"type": "identify", "userId": ANN, "traits": {"email": EMAIL}},
        {"type": "identify", "userId": "bea", "traits": {"email": "bea@example.com"}},
    )
    deliver(pks)

    forgotten, kept = (Delivery.objects.get(pk=pk) for pk in pks)
    assert (forgotten.state, forgotten.error_cause) == (State.SUPPRESSED, "forgotten")
    assert Call.objects.get(pk=pks[0]).payload is None
    assert stored_anywhere(ANN) == [] and stored_anywhere(EMAIL) == []
    assert kept.state == State.DELIVERED
    assert sandbox.state.contact_by_external_id(ANN) is None


def test_a_pending_call_of_the_user_is_suppressed_not_sent_empty(store, sandbox, admin_user):
    [waiting] = store({"type": "track", "userId": ANN, "event": "Ordered"})

    privacy.forget(ANN, admin_user)
    deliver([waiting])

    delivery = Delivery.objects.get(pk=waiting)
    assert delivery.state == State.SUPPRESSED
    assert not [r for r in sandbox.requests if r["path"] == "/events"]


def test_the_command_forgets_and_says_what_it_did(store, sandbox, capsys):
    deliver(store({"type": "identify", "userId": ANN, "traits": {"email": EMAIL}}))

    call_command("forget_user", ANN, "--suppress")

    out = capsys.readouterr().out
    assert "1 calls expunged; later calls suppressed" in out
    assert "Intercom contact: deleted" in out
    assert Forgotten.objects.get().requested_by == "manage.py forget_user"

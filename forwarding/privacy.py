"""Forget a user (a privacy request; docs/operations.md): their stored data expunged at once,
their Intercom contact deleted (retried until done), a tombstone kept, and optionally their
later calls suppressed."""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from forwarding import intercom, rawsql
from forwarding.delivery import exchanges, limiter
from forwarding.models import (
    Attempt,
    Call,
    ContactLink,
    Delivery,
    Forgotten,
    IntercomDeletion,
    State,
    SuppressedUser,
    hash_user,
)

logger = logging.getLogger(__name__)

REASON = "user forgotten (privacy request)"
SLICE = 500  # calls expunged per UPDATE: bounded statements whatever the user's history
RETRY_AFTER = timedelta(seconds=30)
RETRY_AT_MOST = timedelta(hours=1)
# Deliveries that would still send something: they are suppressed, never sent without a payload.
UNFINISHED = (State.PENDING, State.WAITING, State.HELD, State.FAILED)


def forget(user_id, by, suppress=False):
    """Expunge everything stored of `user_id` (their calls, and the anonymous calls attributed to
    them), keep a tombstone, and suppress their later calls when asked; returns the tombstone. The
    Intercom contact is deleted by `delete_in_intercom` (the caller's next step, and the sweeper's)."""
    if not user_id:
        raise ValueError("a userId is needed")
    now = timezone.now()
    with transaction.atomic():
        anonymous = set(
            Call.objects.filter(user_id=user_id).exclude(anonymous_id="").values_list("anonymous_id", flat=True)
        )
        anonymous |= set(
            Delivery.objects.filter(user_id=user_id).exclude(anonymous_id="").values_list("anonymous_id", flat=True)
        )
        calls = Call.objects.filter(Q(user_id=user_id) | Q(anonymous_id__in=anonymous) | Q(delivery__user_id=user_id))
        pks = sorted(set(calls.values_list("pk", flat=True)))
        for start in range(0, len(pks), SLICE):
            expunge(pks[start : start + SLICE], now)
        links = ContactLink.objects.filter(user_id=user_id)
        contact_ids = sorted(set(links.values_list("contact_id", flat=True)))
        links.delete()
        tombstone = Forgotten.objects.create(
            user_hash=hash_user(user_id),
            requested_by=getattr(by, "username", None) or str(by or ""),
            requested_at=now,
            suppress=suppress,
            calls_expunged=len(pks),
            anonymous_ids=len(anonymous),
            pending_external_id=user_id,
            contact_ids=contact_ids,
            next_attempt_at=now,
        )
        if suppress:
            SuppressedUser.objects.update_or_create(user_hash=tombstone.user_hash, defaults={"forgotten": tombstone})
    logger.warning("user forgotten by %s: %d calls expunged", tombstone.requested_by, len(pks))
    return tombstone


def expunge(pks, now):
    """Remove the personal data of these calls: payload, ids, email, exchange bodies, warnings."""
    Call.objects.filter(pk__in=pks).update(
        payload=None,
        email="",
        user_id="",
        anonymous_id="",
        payload_removed_at=now,
        payload_removed_reason=REASON,
    )
    Delivery.objects.filter(call_id__in=pks, state__in=UNFINISHED).update(
        state=State.SUPPRESSED, last_error=REASON, error_cause="forgotten", updated_at=now
    )
    Delivery.objects.filter(call_id__in=pks).update(user_id="", anonymous_id="", warnings=[], updated_at=now)
    Attempt.objects.filter(delivery_id__in=pks).update(warnings=[])
    exchanges.clear_bodies(pks, "", path="(forgotten)")


def suppressed(user_ids):
    """The userIds among `user_ids` whose calls are suppressed (forgotten with suppression)."""
    hashes = {hash_user(user_id): user_id for user_id in user_ids if user_id}
    if not hashes:
        return set()
    found = rawsql.values_in(SuppressedUser, "user_hash", list(hashes))
    return {hashes[user_hash] for user_hash in found}


def delete_in_intercom(tombstone, client=None):
    """Delete the forgotten user's Intercom contacts (archived ones too): the cached ids, then the
    one Intercom finds by external_id. Done, or left pending with the error and the next try."""
    client = client or intercom.client()
    ids = list(tombstone.contact_ids)
    problem = None
    if tombstone.pending_external_id:
        limiter.wait()
        found = client.find_contact(tombstone.pending_external_id)
        limiter.observe(found)
        if found.ok and isinstance(found.body, dict) and found.body.get("id"):
            ids.append(found.body["id"])
        elif found.status != 404:
            problem = found
    deleted = 0
    for contact_id in dict.fromkeys(ids):
        limiter.wait()
        response = client.delete_contact(contact_id)
        limiter.observe(response)
        if response.ok:
            deleted += 1
        elif response.status != 404:  # a contact already gone needs nothing
            problem = problem or response
    now = timezone.now()
    tombstone.intercom_attempts += 1
    if problem is None:
        tombstone.intercom = IntercomDeletion.DELETED if deleted else IntercomDeletion.ABSENT
        tombstone.intercom_error, tombstone.next_attempt_at, tombstone.intercom_done_at = "", None, now
        tombstone.pending_external_id, tombstone.contact_ids = "", []
    else:
        wait = min(RETRY_AFTER * 2 ** (tombstone.intercom_attempts - 1), RETRY_AT_MOST)
        tombstone.intercom_error = (
            f"HTTP {problem.status}: {problem.error_message}"[:500]
            if problem.status
            else (f"no answer: {problem.error_message}"[:500])
        )
        tombstone.next_attempt_at = now + wait
    tombstone.save()
    return tombstone


def delete_due(now=None, limit=10):
    """The sweeper's part: try the Intercom deletions that are due; returns how many were tried."""
    now = now or timezone.now()
    due = Forgotten.objects.filter(intercom=IntercomDeletion.PENDING, next_attempt_at__lte=now).order_by("pk")
    tried = 0
    for tombstone in due[:limit]:
        delete_in_intercom(tombstone)
        tried += 1
    return tried

"""Storing a request's calls and rejections: one transaction, calls deduplicated on (source, messageId)."""

import logging

from django.db import IntegrityError, transaction

from forwarding import rawsql, services
from forwarding.ingestion import rejections
from forwarding.ingestion.columns import cut
from forwarding.models import Call

logger = logging.getLogger(__name__)

# A unique-constraint race with a concurrent request resolves on the next try (its rows are then
# visible); more tries than this means something else is wrong.
ATTEMPTS = 3
# Keeps each `message_id IN (...)` well under every backend's parameter limit.
LOOKUP_CHUNK = 500


def store(source, accepted, rejected, *, received_at, admission=None):
    """Store the new calls and the rejections (within their cap); hand the new calls to the delivery engine.

    All in one transaction: the caller answers 200 only after it commits. Messages whose
    messageId this source already sent (in an earlier request or earlier in this one) are
    skipped, so a client retry is stored and delivered once. The request's `admission` (see
    `key_limit.admit`) is counted in the same transaction. Returns the newly stored calls.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                if admission is not None:
                    admission.settle()
                calls = _insert_new_calls(source, accepted)
                services.accept(calls)
                # Last: it locks the source until the commit (see rejections).
                rejections.record(source, rejected, received_at)
            return calls
        except IntegrityError:
            if admission is not None:
                admission.rolled_back()
            if attempt == ATTEMPTS:
                raise
            logger.info("messageId race with a concurrent request; retrying (try %d)", attempt)
    raise AssertionError("unreachable")


def _insert_new_calls(source, accepted):
    unique = {}
    for message in accepted:
        # The first of two equal messageIds in one batch wins, as a retry would.
        unique.setdefault(message.message_id, message)
    seen = existing_message_ids(source, list(unique))
    calls = [_call(source, message) for message_id, message in unique.items() if message_id not in seen]
    rawsql.insert(calls)  # with their primary keys, which accept() needs
    return calls


def existing_message_ids(source, message_ids):
    """The subset of `message_ids` already stored for `source`."""
    found = set()
    for start in range(0, len(message_ids), LOOKUP_CHUNK):
        chunk = message_ids[start : start + LOOKUP_CHUNK]
        found.update(rawsql.values_in(Call, "message_id", chunk, source_id=source.pk))
    return found


def _call(source, message):
    return Call(
        source=source,
        message_id=message.message_id,
        type=message.type,
        user_id=cut(Call, "user_id", message.user_id),
        anonymous_id=cut(Call, "anonymous_id", message.anonymous_id),
        event=cut(Call, "event", message.event),
        group_id=cut(Call, "group_id", message.group_id),
        email=cut(Call, "email", message.email),
        timestamp=message.timestamp,
        original_timestamp=message.original_timestamp,
        sent_at=message.sent_at,
        received_at=message.received_at,
        payload=message.payload,
    )

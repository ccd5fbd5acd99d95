"""Storing a request's calls and rejections: one transaction, deduplicated on (source, messageId)."""

import logging

from django.db import IntegrityError, transaction

from forwarding import services
from forwarding.models import Call, RejectedMessage

logger = logging.getLogger(__name__)

# A unique-constraint race with a concurrent request resolves on the next try (its rows are then
# visible); more tries than this means something else is wrong.
ATTEMPTS = 3
# Keeps each `message_id IN (...)` well under every backend's parameter limit.
LOOKUP_CHUNK = 500


def store(source, accepted, rejected, *, received_at):
    """Store the new calls and the rejections; hand the new calls to the delivery engine.

    All in one transaction: the caller answers 200 only after it commits. Messages whose
    messageId this source already sent (in an earlier request or earlier in this one) are
    skipped, so a client retry is stored and delivered once. Returns the newly stored calls.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                calls = _insert_new_calls(source, accepted)
                _insert_rejections(source, rejected, received_at)
                services.accept(calls)
            return calls
        except IntegrityError:
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
    # bulk_create sets primary keys on SQLite (3.35+) and PostgreSQL, which accept() needs.
    Call.objects.bulk_create(calls)
    return calls


def existing_message_ids(source, message_ids):
    """The subset of `message_ids` already stored for `source`."""
    found = set()
    for start in range(0, len(message_ids), LOOKUP_CHUNK):
        chunk = message_ids[start : start + LOOKUP_CHUNK]
        found.update(Call.objects.filter(source=source, message_id__in=chunk).values_list("message_id", flat=True))
    return found


def _call(source, message):
    return Call(
        source=source,
        message_id=message.message_id,
        type=message.type,
        user_id=_cut(message.user_id, "user_id"),
        anonymous_id=_cut(message.anonymous_id, "anonymous_id"),
        event=_cut(message.event, "event"),
        group_id=_cut(message.group_id, "group_id"),
        email=_cut(message.email, "email"),
        timestamp=message.timestamp,
        original_timestamp=message.original_timestamp,
        sent_at=message.sent_at,
        received_at=message.received_at,
        payload=message.payload,
    )


def _insert_rejections(source, rejected, received_at):
    rows = [
        RejectedMessage(
            source=source,
            code=_cut(rejection.code, "code", RejectedMessage),
            reason=_cut(_storable(rejection.reason), "reason", RejectedMessage),
            message_id=_cut(_storable(rejection.message_id), "message_id", RejectedMessage),
            excerpt=_storable(rejection.excerpt),
            received_at=received_at,
        )
        for rejection in rejected
    ]
    RejectedMessage.objects.bulk_create(rows)


def _storable(text):
    """Text any backend stores: a rejected message may hold NUL (PostgreSQL refuses it) or lone surrogates."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _cut(value, field_name, model=Call):
    """The value cut to its column's max_length: an over-long id must not fail the insert.

    The payload keeps the full value.
    """
    return value[: model._meta.get_field(field_name).max_length]

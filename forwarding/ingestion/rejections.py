"""Rejected messages: one row each up to RELAY_MAX_REJECTED_PER_MINUTE per write key and minute,
then one summary row per write key and minute that counts the rest by code.

So a flood of invalid messages costs a bounded number of rows however it is sent, in one batch or
in many requests at once, while the first ones of every minute stay there to be read whole.
"""

import json
from collections import Counter
from datetime import timedelta

from django.conf import settings

from forwarding.ingestion.columns import cut, storable
from forwarding.models import RejectedMessage, Source

# The code of the summary row; its excerpt holds the counts as JSON: {"rejected": n, "by_code": {...}}.
SUMMARY_CODE = "too_many_rejections"
MINUTE = timedelta(minutes=1)


def record(source, rejected, received_at):
    """Store one request's rejections within the cap; run it inside the request's transaction."""
    if not rejected:
        return
    _lock_source(source)
    start = received_at.replace(second=0, microsecond=0)
    this_minute = RejectedMessage.objects.filter(source=source, received_at__gte=start, received_at__lt=start + MINUTE)
    room = max(0, settings.RELAY_MAX_REJECTED_PER_MINUTE - this_minute.exclude(code=SUMMARY_CODE).count())
    RejectedMessage.objects.bulk_create([_row(source, rejection, received_at) for rejection in rejected[:room]])
    if len(rejected) > room:
        _count(this_minute.filter(code=SUMMARY_CODE).first(), source, rejected[room:], received_at)


def _lock_source(source):
    # Count-then-insert must not interleave with another request of the same write key. SQLite
    # already holds its write lock from BEGIN IMMEDIATE (and ignores FOR UPDATE); PostgreSQL locks
    # the source's row. NO KEY: inserting calls that reference the source is not blocked.
    list(Source.objects.select_for_update(no_key=True).filter(pk=source.pk).values_list("pk"))


def _row(source, rejection, received_at):
    return RejectedMessage(
        source=source,
        code=cut(RejectedMessage, "code", rejection.code),
        reason=cut(RejectedMessage, "reason", storable(rejection.reason)),
        message_id=cut(RejectedMessage, "message_id", storable(rejection.message_id)),
        excerpt=storable(rejection.excerpt),
        received_at=received_at,
    )


def _count(summary, source, excess, received_at):
    by_code = summary_counts(summary) + Counter(rejection.code for rejection in excess)
    fields = {
        "reason": cut(RejectedMessage, "reason", _reason(by_code)),
        "excerpt": json.dumps({"rejected": by_code.total(), "by_code": dict(by_code.most_common())}),
    }
    if summary is None:
        RejectedMessage.objects.create(source=source, code=SUMMARY_CODE, received_at=received_at, **fields)
    else:
        RejectedMessage.objects.filter(pk=summary.pk).update(**fields)


def summary_counts(summary):
    """The rejections a summary row counts, by code (empty for None)."""
    if summary is None:
        return Counter()
    try:
        return Counter(json.loads(summary.excerpt)["by_code"])
    except (ValueError, KeyError, TypeError):
        return Counter()


def _reason(by_code):
    codes = ", ".join(f"{code} {count}" for code, count in by_code.most_common())
    return (
        f"{by_code.total()} more messages of this write key were rejected in this minute and are counted here, "
        f"not stored one by one (over RELAY_MAX_REJECTED_PER_MINUTE, {settings.RELAY_MAX_REJECTED_PER_MINUTE}): "
        f"{codes}."
    )

"""Page positions of the log and the user history: keyset pagination on (arrival time, id)."""

import re
from datetime import UTC, datetime, timedelta

from django.db.models import Q

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(moment, pk):
    """A page position: microseconds since the epoch and the id, "1772359200123456.42"."""
    return f"{(moment - EPOCH) // timedelta(microseconds=1)}.{pk}"


# microseconds.id, ASCII digits only ("²".isdigit() is true, int("²") fails); the id fits the
# database's 64-bit integer and the moment Python's datetime (else None: no such position).
CURSOR_PATTERN = re.compile(r"(-?[0-9]{1,19})\.([0-9]{1,18})")


def decode_cursor(text):
    """(datetime, pk) from encode_cursor's text, or None when it is not one."""
    match = CURSOR_PATTERN.fullmatch(text or "")
    if match is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    except OverflowError:
        return None


def cursor_problem(name, text):
    """The problem to show for a page position that is given but is none, or ""."""
    if text and decode_cursor(text) is None:
        return f"{name}: {text[:60]!r} is not a page position (the newest page is shown)"
    return ""


def positioned(queryset, moment, cursor, newer):
    """(queryset, order, position, newer) of the page at `cursor`: the rows past its position in
    the order to read them (newest first unless `newer`). No cursor, or text that is none: the
    newest page (position None, newer False)."""
    position = decode_cursor(cursor)
    if position is None:
        return queryset, (f"-{moment}", "-pk"), None, False
    order = (moment, "pk") if newer else (f"-{moment}", "-pk")
    return after(queryset, moment, position, newer), order, position, newer


def after(queryset, moment, position, newer=False):
    """Keyset pagination on (arrival time, id): the rows older (or newer) than `position`, in the
    order to read them. The plain bound first lets the index range do the work."""
    at, pk = position
    if newer:
        return queryset.filter(Q(**{f"{moment}__gt": at}) | Q(**{moment: at, "pk__gt": pk}), **{f"{moment}__gte": at})
    return queryset.filter(Q(**{f"{moment}__lt": at}) | Q(**{moment: at, "pk__lt": pk}), **{f"{moment}__lte": at})

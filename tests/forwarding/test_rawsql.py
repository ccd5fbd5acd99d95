"""`rawsql.insert`, the ORM's bulk_create for the rows every request stores: the same values
back, primary keys set in order, and statements split under SQLite's parameter limit."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forwarding import rawsql
from forwarding.models import Call, Delivery, State

pytestmark = pytest.mark.django_db


def call(source, n, **fields):
    when = datetime(2026, 3, 1, 12, 0, n % 60, 123456, tzinfo=UTC)
    values = {
        "source": source,
        "message_id": f"raw-{n}",
        "type": "track",
        "user_id": f"user-{n}",
        "event": "Signed Up",
        "timestamp": when,
        "received_at": when,
        "payload": {"event": "Signed Up", "properties": {"plan": "pro", "naïve": ["ü", 1, None, 2.5]}},
    }
    return Call(**{**values, **fields})


def test_rows_come_back_as_the_orm_would_have_stored_them(source):
    inserted = rawsql.insert([call(source[0], 1), call(source[0], 2, anonymous_id="anon-2", sent_at=None)])
    by_orm = Call.objects.bulk_create([call(source[0], 1, message_id="orm-1")])[0]

    assert [c.pk for c in inserted] == sorted(c.pk for c in inserted)
    for made in inserted:
        stored = Call.objects.get(pk=made.pk)
        assert not made._state.adding  # a later save() updates this row, it does not insert another
        for field in Call._meta.concrete_fields:
            assert getattr(stored, field.attname) == getattr(made, field.attname), field.name
    orm_row, raw_row = Call.objects.get(pk=by_orm.pk), Call.objects.get(pk=inserted[0].pk)
    assert raw_row.payload == orm_row.payload
    assert (raw_row.received_at, raw_row.timestamp) == (orm_row.received_at, orm_row.timestamp)
    assert Call.objects.get(pk=inserted[1].pk).anonymous_id == "anon-2"


def test_many_rows_are_split_under_the_parameter_limit_and_keep_their_order(source):
    per_statement = rawsql.MAX_PARAMS // len(rawsql._insert_fields(Delivery))
    count = 2 * per_statement + 5
    calls = rawsql.insert([call(source[0], n) for n in range(count)])
    deliveries = [
        Delivery(call=calls[n], user_id=f"user-{n}", created_at=calls[n].received_at, state=State.PENDING)
        for n in range(count)
    ]
    with CaptureQueriesContext(connection) as statements:
        rawsql.insert(deliveries)
    inserts = [q for q in statements if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    assert len({d.pk for d in deliveries}) == count
    stored = dict(Delivery.objects.values_list("pk", "user_id"))
    assert [stored[d.pk] for d in deliveries] == [f"user-{n}" for n in range(count)]

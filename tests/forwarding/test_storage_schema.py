"""How a call is stored: its payload as the JSON text the client sent (PostgreSQL's json, not
jsonb), and no index the unique (source, messageId) already gives."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from forwarding.models import Attempt, Call
from tests.forwarding.ingest import post_batch

PAYLOAD_AS_JSON = ("forwarding", "0014_payload_as_json")
BEFORE = ("forwarding", "0013_compact_payload")


def raw_payload(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM forwarding_call WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return value if isinstance(value, str) else None


@pytest.mark.django_db
def test_a_payload_keeps_the_keys_in_the_order_the_client_sent_them(client, source):
    _, key = source
    message = {"userId": "u-1", "type": "track", "event": "Order Completed", "properties": {"zeta": 1, "a": 2}}
    post_batch(client, key, [{**message, "messageId": "m-1"}])
    call = Call.objects.get()
    with connection.cursor() as cursor:
        cast = "payload::text" if connection.vendor == "postgresql" else "payload"
        cursor.execute(f"SELECT {cast} FROM forwarding_call WHERE id = %s", [call.pk])  # noqa: S608
        (text,) = cursor.fetchone()
    # jsonb sorted the keys (shortest first) and spaced them out; the text is kept as written.
    assert text.startswith('{"userId":"u-1","type":"track","event":"Order Completed","properties":{"zeta":1,"a":2}')
    assert call.payload["properties"] == {"zeta": 1, "a": 2}


def plan_of(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return " ".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return " ".join(row[0] for row in cursor.fetchall())


def own_index(table, column):
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, table)
    return [name for name, index in indexes.items() if index["index"] and index["columns"] == [column]]


@pytest.mark.django_db
def test_foreign_keys_are_found_through_the_composite_index_that_leads_with_them(source, make_call):
    call = make_call()
    Attempt.objects.create(delivery=call.delivery, outcome="delivered", status=202)
    assert own_index("forwarding_call", "source_id") == [] and own_index("forwarding_attempt", "delivery_id") == []
    unique = "sqlite_autoindex_forwarding_call" if connection.vendor == "sqlite" else "call_unique_message"
    assert unique in plan_of(Call.objects.filter(source=source[0]).values("pk"))
    assert "attempt_delivery" in plan_of(Attempt.objects.filter(delivery_id=call.pk).values("pk"))


@pytest.mark.django_db(transaction=True)
def test_payloads_stored_before_the_change_read_the_same_after_it_and_back(source):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps.get_model("forwarding", "Call")
    payload = {"type": "identify", "userId": "u-9", "traits": {"email": "ada@example.com", "logins": 3}}
    try:
        made = old.objects.create(
            source_id=source[0].pk, message_id="m-9", type="identify", timestamp="2026-12-01T10:00:00Z", payload=payload
        )
        executor = MigrationExecutor(connection)
        executor.migrate([PAYLOAD_AS_JSON])
        assert Call.objects.get(pk=made.pk).payload == payload
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("forwarding"))
    assert Call.objects.get(pk=made.pk).payload == payload

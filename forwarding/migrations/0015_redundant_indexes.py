from django.db import migrations, models

# (table, column): a foreign key's own index, which a composite index leading with it makes redundant.
REDUNDANT = [("forwarding_call", "source_id"), ("forwarding_attempt", "delivery_id")]


def drop_indexes(apps, schema_editor):
    for table, column in REDUNDANT:
        name = schema_editor._create_index_name(table, [column], suffix="")
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_indexes(apps, schema_editor):
    for table, column in REDUNDANT:
        name = schema_editor._create_index_name(table, [column], suffix="")
        schema_editor.execute(f"CREATE INDEX {schema_editor.quote_name(name)} ON {table} ({column})")


class Migration(migrations.Migration):
    """Two foreign keys lose their own index: the calls' source (the unique (source, message_id)
    leads with it) and the attempts' delivery (attempt_delivery leads with it). Each was some 20
    bytes of every call. Plain DROP INDEX: Django would rebuild SQLite's tables for the fields."""

    dependencies = [
        ("forwarding", "0014_payload_as_json"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="call",
                    name="source",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.PROTECT,
                        related_name="calls",
                        to="forwarding.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="attempt",
                    name="delivery",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="attempts",
                        to="forwarding.delivery",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]

import forwarding.models.calls
from django.db import migrations


def to_json(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE forwarding_call ALTER COLUMN payload TYPE json USING payload::json")


def to_jsonb(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE forwarding_call ALTER COLUMN payload TYPE jsonb USING payload::jsonb")


class Migration(migrations.Migration):
    """Payloads as PostgreSQL's `json` (the text as written) rather than `jsonb` (see PayloadField).
    PostgreSQL rewrites the calls' table once; SQLite keeps text and changes nothing (Django would
    rebuild its table for the new field class: state only there)."""

    dependencies = [
        ("forwarding", "0013_compact_payload"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="call",
                    name="payload",
                    field=forwarding.models.calls.PayloadField(
                        encoder=forwarding.models.calls.CompactJSONEncoder, null=True
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(to_json, to_jsonb)],
        ),
    ]
